/**
 * The scheduler's state of one run, as plain fields: what the `Scheduler`'s parts
 * (`link_share.ts`, `freeze_demand.ts`, `step_end.ts`) read and change. Internal to
 * `engine/schedule/`: the library exposes it only through the `Scheduler`'s methods.
 *
 * @module
 */
import { FETCH, type Graph, milestoneTarget, RUN } from "../plan/graph.ts";
import { IndexedHeap } from "../plan/heap.ts";
import type { Strategy } from "../runbook/schema.ts";
import { PersonGates } from "./approvals.ts";
import type { Decision, SchedulerOptions } from "./decision.ts";

/** A step's state, as an index into `STATES` (`decision.ts`). */
export const PENDING = 0, FROZEN = 1, RUNNING = 2, DONE = 3, FAILED = 4, SKIPPED = 5;
/** See {@link PENDING}. */
export const CANCELLED = 6;

/** Everything the scheduler knows of one run, by step index. */
export class RunState {
  readonly graph: Graph;
  readonly strategy: Strategy;
  readonly parallelism: number;
  readonly rank: Float64Array;
  readonly state: Uint8Array;
  readonly runNeedsLeft: Int32Array;
  readonly fetchNeedsLeft: Int32Array;
  readonly demanded: Uint8Array;
  readonly ready: Uint8Array;
  /** Run steps downstream of a frozen step (aggressive demands their data early). */
  readonly blocked: Uint8Array;
  readonly rate: Float64Array;
  readonly share: Float64Array;
  /** Run steps ready to start, by rank. */
  readonly runQueue: IndexedHeap;
  /** Fetches allowed on the link, in four tiers, service first (see `admit`). */
  readonly linkQueue: IndexedHeap;
  /** 1 for the steps a milestone needs, directly or not (every step, with no milestone). */
  readonly serves: Uint8Array;
  /** Lazy fetches (revision 5, `lazy.ts`): their indexes; 1 once attached; demanded reads, B/s. */
  readonly lazyList: readonly number[];
  readonly attached: Uint8Array;
  readonly demandRate: Float64Array;
  /** The fetches that had a share of the link at its last sharing. */
  shared: number[] = [];
  running = 0;
  runLeft = 0;
  serialLeft = 0;
  /** Serial: 1 for run steps that wait for every fetch. */
  readonly serialGate: Uint8Array;
  /** Serial: run steps ready but waiting for the last fetch. */
  held: number[] = [];
  unfinished: number;
  linkDirty = true;
  aborted = false;
  /** The decisions not yet returned by `decide()`. */
  out: Decision[] = [];
  /** Approval gates and interrupted steps: what holds a step for a person. */
  readonly gates: PersonGates;

  /** The state at the start of a run of `graph`: every step pending, its needs counted. */
  constructor(graph: Graph, options: SchedulerOptions) {
    const n = graph.n;
    this.graph = graph;
    this.strategy = options.strategy;
    this.parallelism = options.parallelism;
    this.rank = options.rank;
    this.state = new Uint8Array(n);
    this.runNeedsLeft = new Int32Array(n);
    this.fetchNeedsLeft = new Int32Array(n);
    this.demanded = new Uint8Array(n);
    this.ready = new Uint8Array(n);
    this.blocked = new Uint8Array(n);
    this.rate = Float64Array.from(graph.rate);
    this.share = new Float64Array(n);
    this.runQueue = new IndexedHeap(n);
    this.linkQueue = new IndexedHeap(n);
    this.serves = milestoneTarget(graph);
    this.unfinished = n;
    this.gates = new PersonGates(n, graph.gated);
    this.serialGate = serialGate(graph);
    this.attached = new Uint8Array(graph.lazy ? n : 0);
    this.demandRate = new Float64Array(graph.lazy ? n : 0);
    const lazy = graph.lazy;
    this.lazyList = lazy ? Array.from({ length: n }, (_, i) => i).filter((i) => lazy[i]) : [];
    for (let i = 0; i < n; i++) {
      if (graph.kind[i] === FETCH) this.serialLeft++;
      else this.runLeft++;
      for (let k = graph.needStart[i]!; k < graph.needStart[i + 1]!; k++) {
        if (graph.kind[graph.needList[k]!] === RUN) this.runNeedsLeft[i]!++;
        else this.fetchNeedsLeft[i]!++;
      }
    }
  }

  /** Whether step `i` has ended: done, failed, skipped or cancelled. */
  ended(i: number): boolean {
    const s = this.state[i]!;
    return s === DONE || s === FAILED || s === SKIPPED || s === CANCELLED;
  }
}

/**
 * Serial: 1 for the run steps that wait for every fetch, that is all of them but those some fetch
 * waits for (a step that brings the backup site up must run before the data can come).
 */
function serialGate(graph: Graph): Uint8Array {
  const gate = new Uint8Array(graph.n), leadsToFetch = new Uint8Array(graph.n);
  for (let o = graph.n - 1; o >= 0; o--) {
    const i = graph.order[o]!;
    for (let k = graph.depStart[i]!; k < graph.depStart[i + 1]!; k++) {
      const d = graph.depList[k]!;
      if (graph.kind[d] === FETCH || leadsToFetch[d]) leadsToFetch[i] = 1;
    }
    if (graph.kind[i] !== FETCH) gate[i] = leadsToFetch[i] ? 0 : 1;
  }
  return gate;
}
