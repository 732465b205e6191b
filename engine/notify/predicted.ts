/**
 * The TTR and BTN predicted for a live run from its report so far, for "objective predicted to be
 * missed": the simulator runs the rest of the run from where the report says it stands
 * (`engine/simulate/predict.ts`, as `GET /runs/ID` does from the store).
 *
 * @module
 */
import type { Estimates } from "../plan/graph.ts";
import { SimulationError } from "../runbook/errors.ts";
import type { Runbook, Strategy } from "../runbook/model.ts";
import type { Report } from "../schedule/report.ts";
import { predictRest, type Standing, type StepStanding } from "../simulate/predict.ts";
import type { Predicted } from "./happenings.ts";

/**
 * Where the run stands, from its report at `elapsed` seconds. A drill-skipped step (`skipped` in
 * the report, as people see it) stands as the engine keeps it: done once it ended, else running.
 */
export function standingOf(runbook: Runbook, report: Report, elapsed: number): Standing {
  const steps = new Map<string, StepStanding>();
  report.steps.forEach((s, i) => {
    const skip = runbook.steps[i]?.skip === true && s.state === "skipped";
    steps.set(s.id, {
      state: skip ? (s.end_s === null ? "running" : "done") : s.state,
      startS: s.start_s,
      endS: s.end_s,
      ...(s.bytes === undefined ? {} : { bytes: s.bytes }),
    });
  });
  return { elapsed, steps };
}

/**
 * The predicted TTR and BTN of the run whose report so far is `report`, or null when it cannot
 * be predicted (a step not done has no estimate and no history).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunbook } from "../runbook/load.ts";
 * import { predictObjectives } from "./predicted.ts";
 * const rb = parseRunbook(
 *   "runbook: 1\nname: x\nsteps:\n  - { id: s, run: 'true', estimate: 10s, milestone: up }\n",
 *   "x.yaml",
 * );
 * const report = {
 *   steps: [{ id: "s", kind: "run", state: "running", start_s: 0, end_s: null, frozen_s: 0 }],
 * } as unknown as Parameters<typeof predictObjectives>[1];
 * assert.deepEqual(predictObjectives(rb, report, 4), { ttr_s: 10, btn_s: 10 });
 * ```
 */
export function predictObjectives(
  runbook: Runbook,
  report: Report,
  elapsed: number,
  options: { strategy?: Strategy; estimates?: Estimates } = {},
): Predicted | null {
  try {
    return predictRest(runbook, standingOf(runbook, report, elapsed), options);
  } catch (e) {
    if (e instanceof SimulationError) return null;
    throw e;
  }
}
