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
  LAZY_ATTACH_S,
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
  /**
   * Seconds a person takes to approve a step with an `approval` gate once it is reached (it
   * lends its run slot meanwhile, as in a live run). Default: approvals are given beforehand, so
   * a gate never holds a step (runbooks/FORMAT.md: "approvals are given at once").
   */
  approvalWait?: number;
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
  const sim = simulateGraph(graph, analysis, strategy, runbook.parallelism, undefined, {
    approvalWait: options.approvalWait,
  });
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
  const problems = untimed(runbook, graph, except);
  if (problems.length) throw new SimulationError(locateProblems(runbook, problems));
}

/**
 * What {@linkcode checkTimes} would report, not yet located in the runbook's text (locating a
 * problem of each of 1,000 steps parses the text again: tens of ms).
 */
export function untimed(
  runbook: Runbook,
  graph: Graph,
  except?: (i: number) => boolean,
): Problem[] {
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
  return problems;
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
 * it stands instead of the whole of it. Approval gates hold a step `approvalWait` seconds once it
 * is reached (see {@link SimulateOptions.approvalWait}); by default they are approved beforehand.
 */
export function simulateGraph(
  graph: Graph,
  analysis: Pick<Analysis, "rank">,
  strategy: Strategy,
  parallelism: number,
  from?: SimulationStart,
  options: { readonly approvalWait?: number | undefined } = {},
): Simulation {
  let rank = analysis.rank;
  if (from?.running.size) {
    // Running steps hold their slots: they start before any step still waiting for one.
    rank = Float64Array.from(rank);
    for (const i of from.running.keys()) rank[i] = rank[i]! - graph.n;
  }
  const scheduler = new Scheduler(graph, { strategy, parallelism, rank });
  // By default a person approved every gate beforehand: none holds its step.
  if (options.approvalWait === undefined) {
    for (let i = 0; i < graph.n; i++) if (graph.gated?.[i]) scheduler.approve(i);
  }
  const recorder = new FluidRun(graph, scheduler, from, options.approvalWait).run();
  return { graph, scheduler, recorder };
}

/** One simulated run: the scheduler's decisions carried out on a virtual clock and fluid link. */
class FluidRun {
  readonly #graph: Graph;
  readonly #scheduler: Scheduler;
  readonly #from: SimulationStart | undefined;
  readonly #wait: number | undefined;
  readonly #recorder: Recorder;
  /** Bytes each fetch has left as of `#since`, moving at `#rate` since then. */
  readonly #left: Float64Array;
  readonly #rate: Float64Array;
  readonly #since: Float64Array;
  /** The next event of each step: its end, or (while it waits for a person) its approval. */
  readonly #events: IndexedHeap;
  /** 1 while a step waits for its approval. */
  readonly #approving: Uint8Array;
  /** 1 while a lazy fetch is being attached (its stream does not move yet). */
  readonly #attaching: Uint8Array;
  #now = 0;

  constructor(graph: Graph, scheduler: Scheduler, from?: SimulationStart, wait?: number) {
    const n = graph.n;
    this.#graph = graph;
    this.#scheduler = scheduler;
    this.#from = from;
    this.#wait = wait;
    this.#recorder = new Recorder(graph);
    this.#left = Float64Array.from(graph.size, (s) => (Number.isNaN(s) ? 0 : s));
    this.#rate = new Float64Array(n);
    this.#since = new Float64Array(n);
    this.#events = new IndexedHeap(n);
    this.#approving = new Uint8Array(n);
    this.#attaching = new Uint8Array(graph.lazy ? n : 0);
  }

  /** Runs to the end; the recorder of what happened. */
  run(): Recorder {
    const scheduler = this.#scheduler, events = this.#events;
    if (this.#from) {
      for (const [f, bytes] of this.#from.bytesLeft) this.#left[f] = bytes;
      for (const i of this.#from.done) scheduler.complete(i);
    }
    this.#apply(scheduler.decide());
    while (events.size > 0) {
      const now = this.#now = events.peekKey();
      const horizon = now + Math.abs(now) * 1e-12 + 1e-12;
      while (events.size > 0 && events.peekKey() <= horizon) this.#event(events.pop());
      this.#apply(scheduler.decide());
    }
    if (!scheduler.finished) {
      throw new Error(`simulation stalled with ${scheduler.unfinished} steps unfinished`);
    }
    return this.#recorder;
  }

  /** Step `i`'s event came: its approval, or its end. */
  #event(i: number): void {
    const g = this.#graph, scheduler = this.#scheduler;
    if (this.#approving[i]) {
      this.#approving[i] = 0;
      scheduler.approve(i);
      if (g.kind[i] === FETCH) this.#move(i, scheduler.share(i));
      return;
    }
    if (this.#attaching[i]) {
      // Attached: the steps that need it may start; its stream moves from now.
      this.#attaching[i] = 0;
      scheduler.attached(i);
      this.#since[i] = this.#now;
      this.#move(i, scheduler.share(i));
      return;
    }
    if (g.kind[i] === FETCH) {
      this.#left[i] = 0;
      this.#rate[i] = 0;
      this.#since[i] = this.#now;
    }
    scheduler.complete(i);
    this.#recorder.complete(i, this.#now, g.kind[i] === FETCH ? g.size[i]! : 0);
  }

  /** Bytes fetch `f` moved since its rate last changed (none in no time, whatever its rate). */
  #moved(f: number): number {
    const since = this.#since[f]!;
    return this.#now > since ? this.#rate[f]! * (this.#now - since) : 0;
  }

  #apply(decisions: Decision[]): void {
    const g = this.#graph, now = this.#now;
    const bytesDone = (f: number) => g.size[f]! - Math.max(0, this.#left[f]! - this.#moved(f));
    this.#recorder.record(decisions, now, bytesDone);
    for (const d of decisions) {
      const i = d.step;
      if (d.type === "wait") {
        this.#approving[i] = 1;
        this.#events.push(i, now + this.#wait!);
      } else if (d.type === "start" && g.kind[i] !== FETCH) {
        this.#events.push(i, now + (this.#from?.running.get(i) ?? g.duration[i]!));
      } else if (d.type === "start" && g.lazy?.[i]) {
        // A lazy fetch is attached LAZY_ATTACH_S after it starts; its stream waits till then.
        this.#left[i] = Math.max(0, this.#left[i]! - this.#moved(i));
        this.#since[i] = now;
        this.#rate[i] = 0;
        this.#attaching[i] = 1;
        this.#events.push(i, now + LAZY_ATTACH_S);
      } else if (d.type === "share") {
        this.#left[i] = Math.max(0, this.#left[i]! - this.#moved(i));
        this.#since[i] = now;
        this.#move(i, d.rate);
      }
    }
  }

  /** Fetch `f` moves at `share` from now (not while it waits for its approval: it keeps it). */
  #move(f: number, share: number): void {
    const waits = this.#approving[f] === 1 || this.#attaching[f] === 1;
    this.#rate[f] = waits ? 0 : share;
    if (waits) return;
    if (share > 0) this.#events.push(f, this.#now + Math.max(0, this.#left[f]!) / share);
    else this.#events.remove(f);
  }
}
