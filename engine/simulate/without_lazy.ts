/**
 * What lazy fetches (contract revision 5) gain: the simulated TTR and BTN of every strategy with
 * each lazy fetch made an ordinary one, for `thaw plan` to show beside the real figures
 * ("TTR 2s (without lazy: 3m25s)").
 *
 * @module
 */
import { analyse, type Graph } from "../plan/graph.ts";
import type { Runbook, Strategy } from "../runbook/model.ts";
import { STRATEGIES } from "../runbook/schema.ts";
import { simulatedReport, simulateGraph } from "./simulate.ts";

/** TTR and BTN of one simulated run, seconds (null: not reached). */
export interface Measures {
  readonly ttr_s: number | null;
  readonly btn_s: number | null;
}

/**
 * The simulated measures of every strategy had no fetch of `graph` been lazy; undefined when
 * none is (nothing to compare).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildGraph, parseRunbook } from "../../mod.ts";
 * import { withoutLazy } from "./without_lazy.ts";
 * const rb = parseRunbook(`runbook: 1
 * name: x
 * bandwidth: 10MB/s
 * steps:
 *   - { id: v, fetch: { from: http://b/v.img, to: ./v.img, size: 100MB, lazy: true } }
 *   - { id: s, needs: [v], run: "true", estimate: 1s, milestone: up }
 * `, "x.yaml");
 * assert.deepEqual(withoutLazy(rb, buildGraph(rb))?.aggressive, { ttr_s: 11, btn_s: 11 });
 * ```
 */
export function withoutLazy(
  runbook: Runbook,
  graph: Graph,
): Record<Strategy, Measures> | undefined {
  if (!graph.lazy?.includes(1)) return undefined;
  const { lazy: _lazy, ...plain } = graph;
  const analysis = analyse(plain);
  const out = {} as Record<Strategy, Measures>;
  for (const strategy of STRATEGIES) {
    const sim = simulateGraph(plain, analysis, strategy, runbook.parallelism);
    const { ttr_s, btn_s } = simulatedReport(runbook, analysis, sim, "without-lazy");
    out[strategy] = { ttr_s, btn_s };
  }
  return out;
}
