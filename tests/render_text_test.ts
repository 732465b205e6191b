/**
 * Human output reads right: singulars for one of a thing, and never `NaN` or `Infinity`, even
 * when a figure is not finite.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseRunbook } from "../engine/runbook/load.ts";
import { plan } from "../engine/simulate/plan.ts";
import { renderPlan, renderReport, renderSummary } from "../engine/cli/render.ts";
import type { Report } from "../engine/schedule/report.ts";
import { simulate } from "../engine/simulate/simulate.ts";

const ONE_FETCH = `runbook: 1
name: one
bandwidth: 10MB/s
steps:
  - { id: pull, fetch: { from: /b/x, to: ./x, size: 10MB } }
  - { id: serve, needs: [pull], run: "true", estimate: 1s, milestone: up }
`;

Deno.test("renderPlan() says 1 fetch and 1 step, not 1 fetches, when a runbook has one", () => {
  const text = renderPlan(plan(parseRunbook(ONE_FETCH, "one.yaml")));
  assert.match(text, /^one: 2 steps \(1 fetch, 1 run\)$/m);
  const single = renderPlan(
    plan(
      parseRunbook(
        "runbook: 1\nname: s\nsteps:\n  - {id: a, run: 'true', estimate: 1s}\n",
        "s.yaml",
      ),
    ),
  );
  assert.match(single, /^s: 1 step \(0 fetches, 1 run\)$/m);
});

Deno.test("renderPlan() prints no NaN or Infinity, when simulated figures are not finite", () => {
  const p = plan(parseRunbook(ONE_FETCH, "one.yaml"));
  for (const bad of [Infinity, NaN]) {
    const broken = structuredClone(p);
    for (const r of Object.values(broken.simulated)) {
      r.ttr_s = bad;
      r.btn_s = bad;
    }
    (broken.lower_bound as { ttr_s: number }).ttr_s = bad;
    const text = renderPlan(broken);
    assert.doesNotMatch(text, /NaN|Infinity/, text);
    assert.match(text, /^\* the runbook's strategy$/m);
  }
  // One finite, one not: still no ratio.
  const half = structuredClone(p);
  half.simulated.serial.ttr_s = Infinity;
  assert.doesNotMatch(renderPlan(half), /NaN|Infinity|sooner/);
});

Deno.test("renderReport() and renderSummary() print no NaN or Infinity, when figures are not finite", () => {
  const report: Report = simulate(parseRunbook(ONE_FETCH, "one.yaml"));
  const broken = structuredClone(report);
  broken.ttr_s = NaN;
  broken.btn_s = Infinity;
  broken.bytes = { total: NaN, on_demand: Infinity, prefetched: NaN };
  broken.steps[0]!.bytes = Infinity;
  broken.steps[0]!.end_s = NaN;
  const text = renderReport(broken) + "\n" + renderSummary([{ file: "one.yaml", report: broken }]);
  assert.doesNotMatch(text, /NaN|Infinity/, text);
});
