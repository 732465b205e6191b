/**
 * `hosts:` and `on:` in the runbook format (revision 3): the typed model, the JSON Schema, the
 * checks that need the whole runbook, and what a step on a host resolves to (its environment, its
 * directory, a fetch's destination on the host). The broken runbooks with their exact messages
 * are `testdata/invalid/hosts-*.yaml` (run by `invalid_test.ts`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { jsonSchema, keysAt } from "../engine/runbook/schema.ts";
import { parseRunbook, RunbookErrors } from "../mod.ts";
import { Resolver } from "../engine/runbook/resolve.ts";
import type { FetchSpec, RunSpec } from "../steps/types.ts";

const TWO_HOSTS = `runbook: 1
name: two-hosts
bandwidth: 100Mbit/s
env: { TZ: UTC }
hosts:
  db1:  { ssh: postgres@10.0.0.5, port: 2222, identity: ~/.ssh/dr_key }
  web1: { ssh: deploy@web1.dr.example, bandwidth: 1Gbit/s }
steps:
  - id: fetch-db
    on: db1
    user: postgres
    fetch: { from: http://127.0.0.1:8089/db.dump, to: /srv/restore/db.dump, size: 40MiB }
  - id: restore-db
    on: db1
    needs: [fetch-db]
    env: { PGDATABASE: shop }
    run: pg_restore -d shop \${{ steps.fetch-db.to }}
    ready: { run: pg_isready, timeout: 30s }
  - id: notify
    needs: [restore-db]
    run: echo done
`;

Deno.test("parseRunbook() models hosts and on:, when a runbook names two hosts", () => {
  const rb = parseRunbook(TWO_HOSTS, "/srv/rb/two.yaml", { dir: "/srv/rb" });
  assert.deepEqual(rb.hosts, {
    db1: { ssh: "postgres@10.0.0.5", port: 2222, identity: "~/.ssh/dr_key" },
    web1: { ssh: "deploy@web1.dr.example", bandwidth: 125_000_000 },
  });
  assert.deepEqual(rb.steps.map((s) => s.on), ["db1", "db1", undefined]);
  assert.equal(Object.hasOwn(rb.steps[2]!, "on"), false);
});

Deno.test("parseRunbook() has no hosts, when the runbook names none", () => {
  const rb = parseRunbook("runbook: 1\nname: x\nsteps:\n  - { id: a, run: 'true' }\n", "x.yaml");
  assert.deepEqual(rb.hosts, {});
});

Deno.test("jsonSchema() holds hosts and on, when generated", () => {
  const schema = jsonSchema() as {
    properties: Record<string, { additionalProperties?: { properties?: object } }>;
  };
  const hosts = schema.properties.hosts!;
  assert.deepEqual(
    Object.keys(hosts.additionalProperties?.properties ?? {}).sort(),
    ["bandwidth", "identity", "port", "ssh"],
  );
  const text = JSON.stringify(schema);
  assert.match(text, /"on":\{"description":"Run the step on this host/);
  const shipped = JSON.parse(
    Deno.readTextFileSync(new URL("../runbooks/runbook.schema.json", import.meta.url)),
  );
  assert.deepEqual(shipped, JSON.parse(JSON.stringify(schema)), "run `deno task schema`");
});

Deno.test("keysAt() gives a host's keys, when asked for did-you-mean inside hosts", () => {
  assert.deepEqual(keysAt(["hosts", "db1"]).sort(), ["bandwidth", "identity", "port", "ssh"]);
  assert(keysAt(["steps", 0]).includes("on"));
});

Deno.test("parseRunbook() refuses an unknown host in on:, with a did-you-mean and the hosts", () => {
  const text = TWO_HOSTS.replace("    on: db1\n    needs", "    on: db2\n    needs");
  assert.throws(() => parseRunbook(text, "two.yaml"), (e: unknown) => {
    assert(e instanceof RunbookErrors);
    assert.equal(
      e.message,
      'two.yaml:14:9: unknown host "db2" in on (did you mean "db1"?); hosts: db1, web1',
    );
    return true;
  });
});

Deno.test("Resolver gives a step on a host the runbook's env only and no directory, when resolved", () => {
  const rb = parseRunbook(TWO_HOSTS, "/srv/rb/two.yaml", { dir: "/srv/rb" });
  const resolver = new Resolver(rb, "r1", { PATH: "/opt/thaw/bin:/usr/bin", HOME: "/root" });
  const [fetch, restore, notify] = rb.steps;
  assert.deepEqual(resolver.env(restore!), {
    TZ: "UTC",
    PGDATABASE: "shop",
    THAW_RUN_ID: "r1",
    THAW_STEP: "restore-db",
  });
  assert.equal(resolver.cwd(restore!), undefined);
  assert.equal(resolver.cwd(notify!), "/srv/rb");
  assert.equal(resolver.env(notify!).HOME, "/root");
  const spec = resolver.spec(fetch!) as FetchSpec;
  assert.equal(spec.to, "/srv/restore/db.dump");
  assert.equal(spec.tmp, "/srv/restore/.db.dump.thaw-r1.part");
  assert.equal(spec.user, "postgres");
  const run = resolver.spec(restore!) as RunSpec;
  assert.equal(run.command, "pg_restore -d shop '/srv/restore/db.dump'");
  assert.equal(run.ready?.kind, "run");
});

Deno.test("Resolver keeps a relative destination on a host as written, when it comes from a var", () => {
  const text = `runbook: 1
name: rel
vars: { root: restore }
hosts: { db1: { ssh: db1 } }
steps:
  - { id: f, on: db1, fetch: { from: "http://127.0.0.1:1/x", to: "\${{ vars.root }}/x" } }
`;
  const rb = parseRunbook(text, "/srv/rb/rel.yaml", { dir: "/srv/rb" });
  const spec = new Resolver(rb, "r1", {}).spec(rb.steps[0]!) as FetchSpec;
  assert.equal(spec.to, "restore/x"); // the fetch fails: an absolute path is needed on a host
  assert.equal(spec.tmp, "restore/.x.thaw-r1.part");
});
