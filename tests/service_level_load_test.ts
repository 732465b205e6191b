/**
 * `service_level` in a runbook file: loaded into the model, refused with positions (FILE:LINE:COL)
 * when wrong, its expressions checked at load time and resolved when the run starts (quoted for
 * the shell in a `run` probe).
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseRunbook } from "../engine/runbook/load.ts";
import { Resolver } from "../engine/runbook/resolve.ts";
import { resolveTarget } from "../engine/live/service_level.ts";
import { jsonSchema } from "../engine/runbook/schema.ts";

const BASE = `runbook: 1
name: shop
vars:
  port: "8080"
  q: "lamp; rm -rf /"
steps:
  - id: start-shop
    run: ./shop
    milestone: service
`;

function errors(text: string): string {
  try {
    parseRunbook(text, "shop.yaml");
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("loaded without an error");
}

Deno.test("parseRunbook() reads service_level into the model, units parsed", () => {
  const rb = parseRunbook(
    BASE + `service_level:
  - name: catalog-search
    after: start-shop
    http: http://127.0.0.1:\${{ vars.port }}/search
    every: 250ms
    normal: 15s
    objective: { p95: 300ms, success: 99%, degradation: 20% }
  - name: rate
    run: echo 5
    higher: worse
`,
    "shop.yaml",
  );
  assert.equal(rb.serviceLevel.length, 2);
  const [search, rate] = rb.serviceLevel;
  assert.deepEqual(search, {
    name: "catalog-search",
    kind: "http",
    target: "http://127.0.0.1:${{ vars.port }}/search",
    after: "start-shop",
    every: 0.25,
    timeout: 0.2,
    normal: 15,
    higherIsBetter: false,
    objective: { p95: 0.3, success: 0.99, degradation: 0.2 },
  });
  assert.equal(rate!.after, undefined);
  assert.equal(rate!.higherIsBetter, false);
  assert.equal(parseRunbook(BASE, "shop.yaml").serviceLevel.length, 0);
});

Deno.test("parseRunbook() refuses a wrong service_level with positions and advice", () => {
  const text = BASE + `service_level:
  - name: api
    after: start-shp
    http: http://127.0.0.1:\${{ vars.prot }}/
    every: 10ms
  - name: api
    run: echo 1
    objective: { p95: 1s }
`;
  const message = errors(text);
  assert.match(
    message,
    /shop\.yaml:12:12: unknown step "start-shp" in after \(did you mean "start-shop"\?\)/,
  );
  assert.match(message, /shop\.yaml:13:28: unknown var "prot" \(did you mean "port"\?\)/);
  assert.match(message, /shop\.yaml:14:12: .*at least 50ms between samples/);
  assert.match(message, /shop\.yaml:15:11: duplicate probe name "api"/);
  assert.match(message, /shop\.yaml:17:23: .*a run probe's objective is its mean/);
  const units = errors(BASE + "service_level:\n  - { name: a, run: echo 1, normal: 15 }\n");
  assert.match(
    units,
    /shop\.yaml:11:37: normal: invalid duration "15" \(a unit is required: "15s"\?\)/,
  );
});

Deno.test("resolveTarget() quotes a run probe's values for the shell, and leaves a URL plain", () => {
  const rb = parseRunbook(
    BASE + `service_level:
  - name: q
    run: curl -s "http://127.0.0.1:\${{ vars.port }}/s?q=\${{ vars.q }}" --run \${{ run.id }}
  - name: u
    http: http://127.0.0.1:\${{ vars.port }}/\${{ run.id }}
`,
    "/srv/shop.yaml",
    { dir: "/srv" },
  );
  const resolver = new Resolver(rb, "01RUN", {});
  const [q, u] = rb.serviceLevel;
  assert.equal(
    resolveTarget({ resolver }, q!),
    `curl -s "http://127.0.0.1:8080/s?q=lamp; rm -rf /" --run '01RUN'`,
  );
  assert.equal(resolveTarget({ resolver }, u!), "http://127.0.0.1:8080/01RUN");
});

Deno.test("jsonSchema() describes service_level, as editors see it", () => {
  const props = (jsonSchema() as { properties: Record<string, { description?: string }> })
    .properties;
  assert.match(props.service_level!.description ?? "", /Probes sampled while data still arrives/);
});
