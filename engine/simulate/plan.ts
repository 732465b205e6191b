/**
 * `thaw plan`: the graph by levels, the critical paths, the lower bounds and the simulated TTR
 * and BTN of every strategy side by side.
 *
 * @module
 */
import type { Estimates } from "../plan/graph.ts";
import type { Runbook, Strategy } from "../runbook/model.ts";
import { type Report, sec } from "../schedule/report.ts";
import { STRATEGIES } from "../runbook/schema.ts";
import { planGraph, simulatedReport, simulateGraph } from "./simulate.ts";
import { type Measures, withoutLazy } from "./without_lazy.ts";

/** The plan of a runbook. */
export interface Plan {
  readonly runbook: string;
  /** Step ids by level (level 0 needs nothing). */
  readonly levels: string[][];
  readonly critical_path: { readonly ttr: string[]; readonly btn: string[] };
  readonly lower_bound: { readonly ttr_s: number; readonly btn_s: number };
  /** The runbook's own strategy (the one `thaw run` would use). */
  readonly strategy: Strategy;
  /** A simulated report for each strategy. */
  readonly simulated: Record<Strategy, Report>;
  /**
   * With lazy fetches (revision 5): each strategy's simulated TTR and BTN had they been
   * ordinary fetches, to compare.
   */
  readonly without_lazy?: Record<Strategy, Measures>;
}

/**
 * Plans `runbook`: analyses its graph and simulates it under each strategy.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunbook, plan } from "../../mod.ts";
 * const rb = parseRunbook(`runbook: 1
 * name: x
 * bandwidth: 100MB/s
 * steps:
 *   - { id: f1, fetch: { from: /b/1, to: ./1, size: 200MB } }
 *   - { id: s1, needs: [f1], run: "true", estimate: 10s, milestone: up }
 *   - { id: f2, fetch: { from: /b/2, to: ./2, size: 600MB } }
 *   - { id: s2, needs: [f2, s1], run: "true", estimate: 20s }
 * `, "x.yaml");
 * const p = plan(rb);
 * assert.deepEqual([p.simulated.serial.ttr_s, p.simulated.aggressive.btn_s], [18, 32]);
 * assert.deepEqual(p.critical_path.btn, ["f1", "s1", "s2"]);
 * ```
 */
export function plan(runbook: Runbook, estimates?: Estimates): Plan {
  const { graph, analysis } = planGraph(runbook, estimates);
  const simulated = {} as Record<Strategy, Report>;
  for (const strategy of STRATEGIES) {
    const sim = simulateGraph(graph, analysis, strategy, runbook.parallelism);
    simulated[strategy] = simulatedReport(runbook, analysis, sim);
  }
  const ids = (list: number[]) => list.map((i) => graph.ids[i]!);
  return {
    runbook: runbook.name,
    levels: analysis.levels.map(ids),
    critical_path: { ttr: ids(analysis.criticalPath.ttr), btn: ids(analysis.criticalPath.btn) },
    lower_bound: {
      ttr_s: sec(analysis.lowerBound.ttr),
      btn_s: sec(analysis.lowerBound.btn),
    },
    strategy: runbook.strategy,
    simulated,
    ...(graph.lazy ? { without_lazy: withoutLazy(runbook, graph) } : {}),
  };
}
