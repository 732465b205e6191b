/**
 * The simulator: drives the scheduler with a virtual clock, the plan's estimates and a fluid
 * model of the shared link, in well under a second for large runbooks.
 *
 * @module
 */
import { SimulationError } from "../runbook/errors.ts";
import {
  analyse,
  type Analysis,
  buildGraph,
  type Estimates,
  FETCH,
  type Graph,
} from "../plan/graph.ts";
import { IndexedHeap } from "../plan/heap.ts";
import { locateProblems } from "../runbook/load.ts";
import type { Runbook, Strategy } from "../runbook/model.ts";
import { Recorder } from "../schedule/recorder.ts";
import { buildReport, type Report } from "../schedule/report.ts";
import { type Decision, Scheduler } from "../schedule/scheduler.ts";
import type { Problem } from "../runbook/validate.ts";

/** How to simulate. */
export interface SimulateOptions {
  /** Overrides the runbook's strategy. */
  strategy?: Strategy;
  /** Estimates that fill in or override the runbook's. */
  estimates?: Estimates;
  /** The run id to report (a new one by default). */
  run?: string;
}

/** The outcome of one simulated run, before it becomes a report. */
export interface Simulation {
  readonly graph: Graph;
  readonly scheduler: Scheduler;
  readonly recorder: Recorder;
}

/**
 * Simulates `runbook` and returns its report.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunbook, simulate } from "../../mod.ts";
 * const rb = parseRunbook(`runbook: 1
 * name: x
 * bandwidth: 100MB/s
 * steps:
 *   - { id: f, fetch: { from: /b/f, to: ./f, size: 200MB } }
 *   - { id: s, needs: [f], run: "true", estimate: 10s, milestone: up }
 * `, "x.yaml");
 * const report = simulate(rb);
 * assert.deepEqual([report.ttr_s, report.mode], [12, "simulated"]);
 * ```
 * @throws {SimulationError} when a step lacks what the simulation needs (an estimate, a size).
 */
export function simulate(runbook: Runbook, options: SimulateOptions = {}): Report {
  const { graph, analysis } = planGraph(runbook, options.estimates);
  const strategy = options.strategy ?? runbook.strategy;
  const sim = simulateGraph(graph, analysis, strategy, runbook.parallelism);
  return simulatedReport(runbook, analysis, sim, options.run);
}

/** The report of a finished simulation of `runbook`. */
export function simulatedReport(
  runbook: Runbook,
  analysis: Analysis,
  sim: Simulation,
  run?: string,
): Report {
  return buildReport({
    runbook,
    graph: sim.graph,
    lowerBound: analysis.lowerBound,
    recorder: sim.recorder,
    state: (i) => sim.scheduler.state(i),
    mode: "simulated",
    strategy: sim.scheduler.strategy,
    run,
  });
}

/**
 * Builds and analyses the graph of `runbook`, checking that every duration is known.
 *
 * @throws {SimulationError} listing each step whose duration cannot be predicted.
 */
export function planGraph(
  runbook: Runbook,
  estimates?: Estimates,
): { graph: Graph; analysis: Analysis } {
  const graph = buildGraph(runbook, estimates);
  checkTimes(runbook, graph);
  return { graph, analysis: analyse(graph) };
}

/**
 * Checks that the duration of every step of `graph` (but those `except` names) can be predicted.
 *
 * @throws {SimulationError} listing each step whose duration cannot be predicted.
 */
export function checkTimes(
  runbook: Runbook,
  graph: Graph,
  except?: (i: number) => boolean,
): void {
  const problems: Problem[] = [];
  runbook.steps.forEach((s, i) => {
    if (except?.(i)) return;
    if (graph.kind[i] === FETCH) {
      if (Number.isNaN(graph.size[i]!)) {
        problems.push({
          path: ["steps", i, "fetch"],
          at: "key",
          message:
            `fetch "${s.id}" has no size, so its time cannot be predicted (add "size: 2GiB")`,
        });
      } else if (!Number.isFinite(graph.duration[i]!) && graph.size[i]! > 0) {
        problems.push({
          path: ["steps", i, "fetch"],
          at: "key",
          message: `fetch "${s.id}" has no rate and the runbook sets no bandwidth, ` +
            `so its time cannot be predicted (add "rate: 100MB/s" or a top-level "bandwidth")`,
        });
      }
    } else if (Number.isNaN(graph.duration[i]!)) {
      problems.push({
        path: ["steps", i, "id"],
        at: "value",
        message: `run step "${s.id}" has no estimate, so the simulation cannot time it ` +
          `(add "estimate: 30s")`,
      });
    }
  });
  if (problems.length) throw new SimulationError(locateProblems(runbook, problems));
}

/**
 * Where a simulation takes over a run already under way (see `predict.ts`); its clock starts at
 * 0 there, and its recorder holds only what happens from then on.
 */
export interface SimulationStart {
  /** Steps already done, in the order they finished: the scheduler sees them finish so. */
  readonly done: readonly number[];
  /** Run steps already running, with the seconds they have left: they keep their run slots. */
  readonly running: ReadonlyMap<number, number>;
  /** Bytes left of fetches not done (by index; a fetch not here has all of its size left). */
  readonly bytesLeft: ReadonlyMap<number, number>;
}

/**
 * Runs the scheduler over `graph` in virtual time. Fetches follow a fluid model: each moves at
 * the share of the link the scheduler gives it, and shares change only at events.
 *
 * Only `analysis.rank` is used. With `from`, the simulation runs the rest of a run from where
 * it stands instead of the whole of it.
 */
export function simulateGraph(
  graph: Graph,
  analysis: Pick<Analysis, "rank">,
  strategy: Strategy,
  parallelism: number,
  from?: SimulationStart,
): Simulation {
  const n = graph.n;
  let rank = analysis.rank;
  if (from?.running.size) {
    // Running steps hold their slots: they start before any step still waiting for one.
    rank = Float64Array.from(rank);
    for (const i of from.running.keys()) rank[i] = rank[i]! - n;
  }
  const scheduler = new Scheduler(graph, { strategy, parallelism, rank });
  const recorder = new Recorder(graph);
  const left = Float64Array.from(graph.size, (s) => (Number.isNaN(s) ? 0 : s));
  const rate = new Float64Array(n), since = new Float64Array(n);
  const events = new IndexedHeap(n);
  let now = 0;
  // A fetch with an unlimited share (a local copy, an unlimited link) moves nothing in no time.
  const moved = (f: number) => (now > since[f]! ? rate[f]! * (now - since[f]!) : 0);
  const bytesDone = (f: number) => graph.size[f]! - Math.max(0, left[f]! - moved(f));
  const apply = (decisions: Decision[]) => {
    recorder.record(decisions, now, bytesDone);
    for (const d of decisions) {
      const i = d.step;
      if (d.type === "start" && graph.kind[i] !== FETCH) {
        events.push(i, now + (from?.running.get(i) ?? graph.duration[i]!));
      } else if (d.type === "share") {
        left[i] = Math.max(0, left[i]! - moved(i));
        since[i] = now;
        rate[i] = d.rate;
        if (d.rate > 0) events.push(i, now + Math.max(0, left[i]!) / d.rate);
        else events.remove(i);
      }
    }
  };
  if (from) {
    for (const [f, bytes] of from.bytesLeft) left[f] = bytes;
    for (const i of from.done) scheduler.complete(i);
  }
  apply(scheduler.decide());
  while (events.size > 0) {
    now = events.peekKey();
    const horizon = now + Math.abs(now) * 1e-12 + 1e-12;
    while (events.size > 0 && events.peekKey() <= horizon) {
      const i = events.pop();
      if (graph.kind[i] === FETCH) {
        left[i] = 0;
        rate[i] = 0;
        since[i] = now;
      }
      scheduler.complete(i);
      recorder.complete(i, now, graph.kind[i] === FETCH ? graph.size[i]! : 0);
    }
    apply(scheduler.decide());
  }
  if (!scheduler.finished) {
    throw new Error(`simulation stalled with ${scheduler.unfinished} steps unfinished`);
  }
  return { graph, scheduler, recorder };
}
