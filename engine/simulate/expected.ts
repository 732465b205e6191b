/**
 * What a live run's report compares itself with (its `prediction`): what the simulation predicted
 * before the run, and what a serial restore would have taken with the durations and sizes the run
 * measured. The live engine computes both, so every report of a live run carries them, whoever
 * started it (the CLI, a test, another program).
 *
 * @module
 */
import { buildGraph, type Estimates, fillGaps } from "../plan/graph.ts";
import type { Runbook, Strategy } from "../runbook/model.ts";
import type { Report } from "../schedule/report.ts";
import { simulate, untimed } from "./simulate.ts";

/** TTR and BTN, seconds. */
export interface Measures {
  readonly ttr_s: number | null;
  readonly btn_s: number | null;
}

/**
 * The simulated TTR and BTN of `runbook` before its run, with `estimates` (null when a step has
 * neither an estimate nor history).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunbook } from "../runbook/load.ts";
 * import { predictBefore } from "./expected.ts";
 * const rb = parseRunbook(`runbook: 1
 * name: x
 * steps:
 *   - { id: a, run: "true", estimate: 2s }
 *   - { id: b, run: "true" }
 * `, "x.yaml");
 * assert.equal(predictBefore(rb, "aggressive"), null); // b has no estimate
 * assert.deepEqual(predictBefore(rb, "aggressive", { duration: new Map([["b", 3]]) }), {
 *   ttr_s: 3,
 *   btn_s: 3,
 * });
 * ```
 */
export function predictBefore(
  runbook: Runbook,
  strategy: Strategy,
  estimates: Estimates = {},
): Measures | null {
  // A step without a time: no prediction, known without locating each such step in the text.
  if (untimed(runbook, buildGraph(runbook, estimates)).length) return null;
  try {
    const r = simulate(runbook, { strategy, estimates });
    return { ttr_s: r.ttr_s, btn_s: r.btn_s };
  } catch {
    return null; // no prediction without estimates
  }
}

/**
 * What a serial restore of `runbook` would have taken, with what its run `measured` (null when
 * the run failed or was cancelled, or a step cannot be timed).
 */
export function serialAfter(
  runbook: Runbook,
  report: Report,
  measured: Estimates,
): Measures | null {
  if (report.outcome === "failed" || report.outcome === "cancelled") return null;
  try {
    const r = simulate(runbook, { strategy: "serial", estimates: fillGaps(runbook, measured) });
    return { ttr_s: r.ttr_s, btn_s: r.btn_s };
  } catch {
    return null;
  }
}
