/**
 * The predicted TTR and BTN of a live run under way: the simulator runs the rest of the run from
 * where it stands, with the same scheduler and the same priorities as the live engine.
 *
 * How it takes over: the steps done are fed to the scheduler in the order they finished (as the
 * live engine fed them), so it freezes and demands what it did; run steps that are running keep
 * their run slots with what is left of their estimates; each fetch keeps the bytes it has.
 *
 * Where it may differ from a simulation of the whole run, even with perfect estimates:
 * - steps that finished at the same instant are replayed in the runbook's topological order,
 *   which may differ from the order the engine saw them in; under `aggressive` this can change
 *   what a step briefly frozen between them demanded (and so the link's order);
 * - the live engine corrects the rates of sources it measures (`setRate`); the prediction uses
 *   the runbook's and `estimates`' rates, so link shares are recomputed from those.
 *
 * @module
 */
import { analyse, buildGraph, type Estimates, FETCH } from "../plan/graph.ts";
import { fillGaps } from "../plan/graph.ts";
import type { Runbook, Strategy } from "../runbook/model.ts";
import { sec } from "../schedule/report.ts";
import { checkTimes, simulateGraph } from "./simulate.ts";
import type { StepStateName } from "../store/types.ts";
import { stepKind } from "../../steps/kind.ts";

/** Where a live run stands, as the store knows it. */
export interface Standing {
  /** Seconds since the start of the run. */
  readonly elapsed: number;
  /** By step id; a step missing here is pending. */
  readonly steps: ReadonlyMap<string, StepStanding>;
}

/** Where one step stands. */
export interface StepStanding {
  readonly state: StepStateName;
  /** When it last went to running, seconds from the start (null if never). */
  readonly startS: number | null;
  /** When it ended (done etc.), seconds from the start. */
  readonly endS: number | null;
  /** Fetches: bytes so far. */
  readonly bytes?: number;
  /** Fetches: total size when the source told it (HTTP Content-Length), else null/undefined. */
  readonly total?: number | null;
  /**
   * A `running` step that waits for a person (its approval, or it was interrupted): it has not
   * started its work. It is taken to be approved now (approvals are given at once), so its whole
   * estimate is left.
   */
  readonly waiting?: boolean;
}

/** Predicted measures, seconds from the start of the run. */
export interface Prediction {
  readonly ttr_s: number | null;
  readonly btn_s: number | null;
}

/**
 * Predicts the TTR and BTN of a live run from where it stands, by simulating the rest of it.
 *
 * - Steps in state `done` are done at their `endS` (drill-skipped steps are stored as done).
 * - A fetch not done has `(total ?? estimated size) - bytes` left (at least 0).
 * - A `running` run step with a `startS` has `estimate - (elapsed - startS)` left (at least 0)
 *   and keeps its run slot (its whole estimate when it waits for a person: approved now); any
 *   other step not done is simulated as not started.
 * - If a step is `failed`, `skipped` or `cancelled`, the run will not get back to normal: both
 *   are null, except TTR when every milestone step is already done (then the actual TTR).
 *
 * Steps are ordered by the analysis of the whole runbook with the engine's estimates
 * (`fillGaps`), as the live engine does. Times are rounded to the millisecond.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunbook } from "../../mod.ts";
 * import { predictRest } from "./predict.ts";
 * const rb = parseRunbook(`runbook: 1
 * name: x
 * bandwidth: 100MB/s
 * steps:
 *   - { id: f, fetch: { from: /b/f, to: ./f, size: 200MB } }
 *   - { id: s, needs: [f], run: "true", estimate: 10s, milestone: up }
 *   - { id: g, fetch: { from: /b/g, to: ./g, size: 600MB } }
 * `, "x.yaml");
 * // At 5 s: f landed at 2 s, s has run for 3 s of its 10, g has 300MB of 600MB.
 * const p = predictRest(rb, {
 *   elapsed: 5,
 *   steps: new Map([
 *     ["f", { state: "done", startS: 0, endS: 2, bytes: 200e6 }],
 *     ["s", { state: "running", startS: 2, endS: null }],
 *     ["g", { state: "running", startS: 2, endS: null, bytes: 300e6 }],
 *   ]),
 * });
 * assert.deepEqual(p, { ttr_s: 12, btn_s: 12 });
 * ```
 * @throws {SimulationError} when a step not yet done has no estimate / size / rate to time it
 * (same messages as simulate()).
 */
export function predictRest(
  runbook: Runbook,
  standing: Standing,
  options: { strategy?: Strategy; estimates?: Estimates } = {},
): Prediction {
  const { elapsed } = standing;
  const steps = runbook.steps;
  const n = steps.length;
  const at = steps.map((s) => standing.steps.get(s.id));
  const isDone = (i: number) => at[i]?.state === "done";
  const end = (i: number) => at[i]?.endS ?? 0;
  const all = Array.from({ length: n }, (_, i) => i);
  const milestones = all.filter((i) => steps[i]!.milestone !== undefined);
  const reached = (list: readonly number[]) => list.every(isDone);
  const latest = (list: readonly number[], when: (i: number) => number) =>
    sec(list.reduce((t, i) => Math.max(t, when(i)), 0));

  const broken = at.some((s) =>
    s?.state === "failed" || s?.state === "skipped" || s?.state === "cancelled"
  );
  if (broken) {
    const ttr = milestones.length && reached(milestones) ? latest(milestones, end) : null;
    return { ttr_s: ttr, btn_s: null };
  }

  // The sizes sources told override the estimated ones.
  const size = new Map(options.estimates?.size);
  steps.forEach((s, i) => {
    const total = at[i]?.total;
    const moves = stepKind(s.kind).figures(s).type === "data";
    if (moves && total !== null && total !== undefined) size.set(s.id, total);
  });
  const graph = buildGraph(runbook, { ...options.estimates, size });
  checkTimes(runbook, graph, isDone);
  const { rank } = analyse(buildGraph(runbook, fillGaps(runbook, options.estimates)));

  const done: number[] = [];
  const running = new Map<number, number>(), bytesLeft = new Map<number, number>();
  for (const i of graph.order) {
    const s = at[i];
    if (isDone(i)) done.push(i);
    else if (graph.kind[i] === FETCH) {
      bytesLeft.set(i, Math.max(0, graph.size[i]! - (s?.bytes ?? 0)));
    } else if (s?.state === "running" && s.startS !== null) {
      const ran = s.waiting ? 0 : elapsed - s.startS;
      running.set(i, Math.max(0, graph.duration[i]! - ran));
    }
  }
  // In the order they finished (a stable sort keeps ties in topological order).
  done.sort((a, b) => end(a) - end(b));

  const strategy = options.strategy ?? runbook.strategy;
  const sim = simulateGraph(graph, { rank }, strategy, runbook.parallelism, {
    done,
    running,
    bytesLeft,
  });
  const when = (i: number) => (isDone(i) ? end(i) : elapsed + sim.recorder.end[i]!);
  const btn = latest(all, when);
  return { ttr_s: milestones.length ? latest(milestones, when) : btn, btn_s: btn };
}
