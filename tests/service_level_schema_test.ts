// The `service_level` key (engine/service_level/schema.ts): the contract's example parses into the
// model; mistakes are refused with advice, through the runbook's own message maker.
import assert from "node:assert/strict";
import { z } from "zod";
import {
  checkServiceLevel,
  parsePercent,
  serviceLevelModel,
  serviceLevelSchema,
} from "../engine/service_level/schema.ts";
import { problemsFromIssues } from "../engine/runbook/validate.ts";

// The contract's example (revision 4), as its YAML reads.
const CONTRACT = [
  {
    name: "catalog-search",
    after: "start-shop",
    http: "http://127.0.0.1:8080/search?q=lamp",
    every: "250ms",
    normal: "15s",
    objective: { p95: "300ms", success: "99%", degradation: "20%" },
  },
  {
    name: "stream-rate",
    after: "start-vod",
    run: "curl -s -o /dev/null -w '%{speed_download}' http://127.0.0.1:8000/v/42.mp4",
    higher: "better",
    every: "1s",
    normal: "20s",
  },
];

/** The messages the runbook's validator would print for `service_level: input`. */
function problems(input: unknown): string[] {
  const doc = { service_level: input };
  const r = z.strictObject({ service_level: serviceLevelSchema }).safeParse(doc);
  if (r.success) return [];
  return problemsFromIssues(doc, r.error.issues).map((p) => `${p.path.join(".")}: ${p.message}`);
}

Deno.test("serviceLevelModel() reads the contract's example, units parsed", () => {
  const parsed = serviceLevelSchema.parse(CONTRACT);
  const [search, rate] = serviceLevelModel(parsed);
  assert.deepEqual(search, {
    name: "catalog-search",
    kind: "http",
    target: "http://127.0.0.1:8080/search?q=lamp",
    after: "start-shop",
    every: 0.25,
    timeout: 0.2,
    normal: 15,
    higherIsBetter: false,
    objective: { p95: 0.3, success: 0.99, degradation: 0.2 },
  });
  assert.equal(rate!.kind, "run");
  assert.equal(rate!.higherIsBetter, true);
  assert.equal(rate!.every, 1);
  assert.deepEqual(rate!.objective, {});
});

Deno.test("serviceLevelModel() applies defaults, and reads higher as better/worse or true/false", () => {
  const parsed = serviceLevelSchema.parse([
    { name: "a", tcp: "127.0.0.1:5432" },
    { name: "b", run: "echo 1", higher: false },
    { name: "c", run: "echo 1", higher: "worse" },
    { name: "d", run: "echo 1", higher: true },
  ]);
  const [a, b, c, d] = serviceLevelModel(parsed);
  assert.equal(a!.after, undefined);
  assert.equal(a!.every, 1);
  assert.equal(a!.timeout, 0.8);
  assert.equal(a!.normal, 0);
  assert.equal(b!.higherIsBetter, false);
  assert.equal(c!.higherIsBetter, false);
  assert.equal(d!.higherIsBetter, true);
});

Deno.test("serviceLevelSchema refuses a probe with no kind or two, with advice", () => {
  assert.deepEqual(problems([{ name: "x" }]), [
    "service_level.0: service_level[0]: a probe needs one of http: URL, tcp: HOST:PORT or run: COMMAND",
  ]);
  const two = problems([{ name: "x", http: "http://a/", tcp: "a:1" }]);
  assert.deepEqual(two, [
    "service_level.0.tcp: tcp: a probe has one of http, tcp or run, not http and tcp",
  ]);
});

Deno.test("serviceLevelSchema refuses bad units and percentages, saying what to write", () => {
  const found = problems([{
    name: "x",
    http: "http://127.0.0.1:1/",
    normal: "15",
    objective: { p95: "300", success: "99", degradation: "20%" },
  }]);
  assert(found.some((m) => m.startsWith('service_level.0.normal: normal: invalid duration "15"')));
  assert(found.some((m) => /objective\.p95: p95: invalid duration "300"/.test(m)));
  assert(found.includes(
    'service_level.0.objective.success: success: invalid percentage "99": write it with a % sign ("99%"?)',
  ));
  assert.equal(found.length, 3, found.join("\n"));
});

Deno.test("serviceLevelSchema refuses samples closer than 50ms", () => {
  assert.deepEqual(problems([{ name: "x", tcp: "127.0.0.1:1", every: "10ms" }]), [
    "service_level.0.every: every: at least 50ms between samples, got 10ms",
  ]);
});

Deno.test("serviceLevelSchema refuses objectives and keys that do not fit the probe", () => {
  const found = problems([
    { name: "a", http: "http://127.0.0.1:1/", higher: "better", objective: { mean: 3 } },
    { name: "b", run: "echo 1", objective: { p95: "1s", success: "101%" } },
    { name: "c", run: "echo 1", objective: { degradation: "20%" } },
    { name: "d", http: "http://127.0.0.1:1/", evry: "1s" },
  ]);
  found.sort();
  assert.deepEqual(
    found.slice(0, 5),
    [
      "service_level.0.higher: higher: only for run probes (an http or tcp probe measures latency: lower is better)",
      "service_level.0.objective.mean: mean: a run probe's objective; an http or tcp probe has p95: DURATION",
      "service_level.1.objective.p95: p95: a latency objective; a run probe's objective is its mean (mean: NUMBER)",
      "service_level.1.objective.success: success: at most 100%",
      "service_level.2.objective.degradation: degradation: compared with the normal level, which needs " +
      "normal: DURATION (how long to keep sampling after BTN, e.g. normal: 15s)",
    ],
  );
  // "did you mean" comes once the key is in the runbook schema (keysAt): not checked here.
  assert.match(found[5]!, /^service_level\.3\.evry: unknown key "evry"/);
});

Deno.test("checkServiceLevel() finds duplicate names, unknown steps and a missing start", () => {
  const steps = [{ id: "start-shop" }, { id: "fetch-db" }];
  const found = checkServiceLevel({
    service_level: [
      { name: "a", after: "start-shp" },
      { name: "a", after: "fetch-db" },
      { name: "b" },
    ],
    steps,
  });
  assert.deepEqual(found.map((p) => [p.path.join("."), p.message]), [
    ["service_level.0.after", 'unknown step "start-shp" in after (did you mean "start-shop"?)'],
    ["service_level.1.name", 'duplicate probe name "a" (also service_level[0])'],
    [
      "service_level.2",
      'probe "b": say from which step to sample (after: STEP_ID); without it a probe starts at ' +
      "the first milestone, and no step has one",
    ],
  ]);
  // With a milestone, a probe may go without `after`.
  const withMilestone = [...steps, { id: "up", milestone: "service" }];
  assert.deepEqual(checkServiceLevel({ service_level: [{ name: "b" }], steps: withMilestone }), []);
});

Deno.test("parsePercent() reads percentages and refuses bare numbers", () => {
  assert.equal(parsePercent("99.5%"), 0.995);
  assert.equal(parsePercent("250 %"), 2.5);
  assert.throws(() => parsePercent("abc"), /expected e\.g\. 99% or 20%/);
  assert.throws(() => parsePercent("200000%"), /at most 100000%/);
});

Deno.test("serviceLevelSchema merges into a strict object and gives a JSON Schema", () => {
  const top = z.strictObject({ service_level: serviceLevelSchema.optional() });
  const json = z.toJSONSchema(top, { io: "input", unrepresentable: "any" }) as unknown as {
    properties: { service_level: { items: { properties: Record<string, unknown> } } };
  };
  assert.deepEqual(Object.keys(json.properties.service_level.items.properties), [
    "name",
    "after",
    "http",
    "tcp",
    "run",
    "every",
    "normal",
    "higher",
    "objective",
  ]);
  // The runbook's "did you mean" walks objects by their shape: the probe is still one.
  assert(serviceLevelSchema.element instanceof z.ZodObject);
});
