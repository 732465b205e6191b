import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { parseRunbook, RunbookErrors, UsageError } from "../mod.ts";
import { renderTemplate } from "../engine/runbook/expressions.ts";

const VALID = `runbook: 1
name: demo
objectives: { rto: 10m, btn: 2h, milestones: { db: 5m } }
bandwidth: 100Mbit/s
parallelism: 3
vars: { root: ./restore, port: 8080 }
env: { TZ: UTC }
drill: { vars: { root: ./.thaw/drill }, skip: [cutover] }
steps:
  - id: fetch-db
    fetch:
      from: [/mnt/b/db.dump, "http://127.0.0.1:8089/db.dump"]
      to: \${{ vars.root }}/db.dump
      size: 40MiB
      rate: 10MB/s
  - id: restore-db
    needs: fetch-db
    run: pg_restore "\${{ steps.fetch-db.to }}"
    estimate: 2m
    timeout: 10m
    retries: 2
    milestone: db
    on-failure: isolate
  - id: serve
    needs: [restore-db]
    run: ./serve --port \${{ vars.port }}
    background: true
    ready: { http: "http://127.0.0.1:\${{ vars.port }}/healthz", timeout: 2m }
  - id: cutover
    needs: [serve]
    run: ./cutover.sh
    approval: Take production traffic?
`;

Deno.test("parseRunbook() builds the typed model, when the runbook is valid", () => {
  const rb = parseRunbook(VALID, "demo.yaml");
  equal(rb.name, "demo");
  deepEqual(rb.objectives, { rto: 600, btn: 7200, milestones: { db: 300 } });
  equal(rb.bandwidth, 12.5e6);
  equal(rb.parallelism, 3);
  equal(rb.strategy, "aggressive");
  deepEqual(rb.vars, { root: "./restore", port: "8080" });
  const [fetch, restore, serve, cutover] = rb.steps;
  ok(fetch?.kind === "fetch" && restore?.kind === "run" && serve?.kind === "run");
  equal(fetch.size, 41943040);
  equal(fetch.rate, 10e6);
  equal(fetch.from.length, 2);
  deepEqual(restore.needs, ["fetch-db"]);
  deepEqual([restore.estimate, restore.timeout, restore.retries], [120, 600, 2]);
  deepEqual([restore.onFailure, restore.milestone, restore.shell], ["isolate", "db", "bash"]);
  deepEqual([serve.background, serve.ready?.kind, serve.ready?.timeout], [true, "http", 120]);
  equal(cutover?.skip, false);
  const to = renderTemplate(fetch.to, (r) => rb.vars[r.name] ?? "");
  equal(to, "./restore/db.dump");
});

Deno.test("parseRunbook() applies drill overrides and --var, when asked", () => {
  const rb = parseRunbook(VALID, "demo.yaml", { drill: true, vars: { port: "9090" } });
  deepEqual(rb.vars, { root: "./.thaw/drill", port: "9090" });
  equal(rb.steps.find((s) => s.id === "cutover")?.skip, true);
  throws(
    () => parseRunbook(VALID, "demo.yaml", { vars: { prot: "1" } }),
    (e) => e instanceof UsageError && /no var "prot" \(did you mean "port"\?\)/.test(e.message),
  );
});

Deno.test("parseRunbook() reports every problem with its position, when several are wrong", () => {
  const text = VALID
    .replace("size: 40MiB", "size: 40mib")
    .replace("needs: fetch-db", "needs: fetch-dbb")
    .replace("estimate: 2m", "estimat: 2m")
    .replace("${{ vars.port }}/healthz", "${{ vars.prot }}/healthz");
  const e = (() => {
    try {
      parseRunbook(text, "runbooks/demo.yaml");
      return undefined;
    } catch (e) {
      return e;
    }
  })();
  ok(e instanceof RunbookErrors && e instanceof AggregateError);
  deepEqual(e.message.split("\n"), [
    'runbooks/demo.yaml:14:13: size: invalid size "40mib": unknown unit "mib" (did you mean "40MiB"?)',
    'runbooks/demo.yaml:17:12: unknown step "fetch-dbb" in needs (did you mean "fetch-db"?)',
    'runbooks/demo.yaml:19:5: unknown key "estimat" in step "restore-db" (did you mean "estimate"?)',
    'runbooks/demo.yaml:28:38: unknown var "prot" (did you mean "port"?)',
  ]);
  deepEqual(e.errors.map((x) => [x.line, x.column]), [[14, 13], [17, 12], [19, 5], [28, 38]]);
  ok(e.errors.every((x) => x instanceof SyntaxError && x.file === "runbooks/demo.yaml"));
});
