/**
 * The frozen-step scheduler: a pure state machine, the same in simulation and in live runs.
 *
 * Events go in ({@link Scheduler.complete}, {@link Scheduler.fail}, {@link Scheduler.cancel},
 * {@link Scheduler.setRate}, a person's {@link Scheduler.approve} and
 * {@link Scheduler.doneByHand}); {@link Scheduler.decide} returns the decisions they lead to
 * (start a step, hold one for a person, freeze or thaw one, demand a fetch, give a fetch its
 * share of the link). The scheduler
 * holds no clock: its decisions depend only on the order of events, which is why a simulated
 * drill decides exactly what the live engine will.
 *
 * @module
 */
import { FETCH, type Graph, milestoneTarget, RUN } from "../plan/graph.ts";
import { IndexedHeap } from "../plan/heap.ts";
import { PersonGates, type WaitReason } from "./approvals.ts";
import { type Decision, type SchedulerOptions, STATES, type StepState } from "./decision.ts";
import type { Strategy } from "../runbook/schema.ts";

export { type Decision, type SchedulerOptions, STATES, type StepState } from "./decision.ts";

const PENDING = 0, FROZEN = 1, RUNNING = 2, DONE = 3, FAILED = 4, SKIPPED = 5, CANCELLED = 6;

/**
 * Schedules one run of a graph.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunbook, buildGraph, analyse, Scheduler } from "../../mod.ts";
 * const rb = parseRunbook(`runbook: 1
 * name: x
 * bandwidth: 100MB/s
 * steps:
 *   - { id: f, fetch: { from: /b/f, to: ./f, size: 100MB } }
 *   - { id: s, needs: [f], run: "true", estimate: 1s }
 * `, "x.yaml");
 * const g = buildGraph(rb);
 * const s = new Scheduler(g, { strategy: "aggressive", parallelism: 8, rank: analyse(g).rank });
 * const first = s.decide().map((d) => d.type);
 * assert.deepEqual(first, ["freeze", "demand", "start", "share"]);
 * ```
 */
export class Scheduler {
  readonly graph: Graph;
  readonly strategy: Strategy;
  readonly #parallelism: number;
  readonly #rank: Float64Array;
  readonly #state: Uint8Array;
  readonly #runNeedsLeft: Int32Array;
  readonly #fetchNeedsLeft: Int32Array;
  readonly #demanded: Uint8Array;
  readonly #ready: Uint8Array;
  /** Run steps downstream of a frozen step (aggressive demands their data early). */
  readonly #blocked: Uint8Array;
  readonly #rate: Float64Array;
  readonly #share: Float64Array;
  /** Run steps ready to start, by rank. */
  readonly #runQueue: IndexedHeap;
  /** Fetches allowed on the link, in four tiers, service first (see `#admit`). */
  readonly #linkQueue: IndexedHeap;
  /** 1 for the steps a milestone needs, directly or not (every step, with no milestone). */
  readonly #serves: Uint8Array;
  #shared: number[] = [];
  #running = 0;
  #runLeft = 0;
  #serialLeft = 0;
  /** Serial: 1 for run steps that wait for every fetch. */
  #serialGate: Uint8Array;
  /** Serial: run steps ready but waiting for the last fetch. */
  #held: number[] = [];
  #unfinished: number;
  #linkDirty = true;
  #aborted = false;
  #out: Decision[] = [];
  /** Approval gates and interrupted steps: what holds a step for a person. */
  readonly #gates: PersonGates;

  /** A scheduler at the start of a run of `graph`. */
  constructor(graph: Graph, options: SchedulerOptions) {
    const n = graph.n;
    this.graph = graph;
    this.strategy = options.strategy;
    this.#parallelism = options.parallelism;
    this.#rank = options.rank;
    this.#state = new Uint8Array(n);
    this.#runNeedsLeft = new Int32Array(n);
    this.#fetchNeedsLeft = new Int32Array(n);
    this.#demanded = new Uint8Array(n);
    this.#ready = new Uint8Array(n);
    this.#blocked = new Uint8Array(n);
    this.#rate = Float64Array.from(graph.rate);
    this.#share = new Float64Array(n);
    this.#runQueue = new IndexedHeap(n);
    this.#linkQueue = new IndexedHeap(n);
    this.#serves = milestoneTarget(graph);
    this.#unfinished = n;
    this.#gates = new PersonGates(n, graph.gated);
    this.#serialGate = serialGate(graph);
    for (let i = 0; i < n; i++) {
      if (graph.kind[i] === FETCH) this.#serialLeft++;
      else this.#runLeft++;
      for (let k = graph.needStart[i]!; k < graph.needStart[i + 1]!; k++) {
        if (graph.kind[graph.needList[k]!] === RUN) this.#runNeedsLeft[i]!++;
        else this.#fetchNeedsLeft[i]!++;
      }
    }
    for (let i = 0; i < n; i++) this.#evaluate(i);
  }

  /** The state of step `i`. */
  state(i: number): StepState {
    return STATES[this.#state[i]!]!;
  }

  /** Whether fetch `i` has been demanded by a frozen step. */
  demanded(i: number): boolean {
    return this.#demanded[i] === 1;
  }

  /** The share of the link fetch `i` has now, bytes per second. */
  share(i: number): number {
    return this.#share[i]!;
  }

  /** True when no step can start or finish any more. */
  get finished(): boolean {
    return this.#unfinished === 0;
  }

  /** How many steps are not yet done, failed, skipped or cancelled. */
  get unfinished(): number {
    return this.#unfinished;
  }

  /** Step `i` is done (a run step exited 0 and passed `ready`; a fetch landed and checked). */
  complete(i: number): void {
    const s = this.#state[i]!;
    if (s === DONE || s === FAILED || s === SKIPPED || s === CANCELLED) return;
    this.#finish(i, DONE);
    const g = this.graph;
    for (let k = g.depStart[i]!; k < g.depStart[i + 1]!; k++) {
      const d = g.depList[k]!;
      if (g.kind[i] === RUN) this.#runNeedsLeft[d]!--;
      else this.#fetchNeedsLeft[d]!--;
      this.#evaluate(d);
    }
  }

  /** Step `i` failed for good (after its retries). */
  fail(i: number): void {
    const s = this.#state[i]!;
    if (s === DONE || s === FAILED || s === SKIPPED || s === CANCELLED) return;
    this.#finish(i, FAILED);
    this.#failed(i);
  }

  /**
   * Step `i`, done, is lost after all (its background service exited): it is failed from now on,
   * with what {@link fail} does to the steps that need it and, unless it isolates, to the run.
   */
  lost(i: number): void {
    if (this.#state[i] !== DONE) return;
    this.#state[i] = FAILED;
    this.#failed(i);
  }

  /** What a failure of step `i` does: whatever needs it can never run; the run stops unless it isolates. */
  #failed(i: number): void {
    if (!this.graph.isolate[i]) this.#aborted = true;
    const g = this.graph;
    const stack = [i];
    while (stack.length) {
      const j = stack.pop()!;
      for (let k = g.depStart[j]!; k < g.depStart[j + 1]!; k++) {
        const d = g.depList[k]!;
        const ds = this.#state[d]!;
        if (ds === PENDING || ds === FROZEN) {
          this.#finish(d, SKIPPED);
          this.#out.push({ type: "skip", step: d });
          stack.push(d);
        }
      }
    }
    if (this.#aborted) this.#stopPending(SKIPPED);
  }

  /**
   * Step `i` was running when its engine died and is not idempotent (resume): when it is reached
   * again it waits for a person, lending its run slot meanwhile.
   */
  interrupted(i: number): void {
    if (this.graph.kind[i] === RUN) this.#gates.interrupt(i);
  }

  /** Why step `i` waits for a person now, if it does. */
  waiting(i: number): WaitReason | undefined {
    return this.#gates.waiting(i);
  }

  /**
   * A person approves step `i`. A waiting step starts at the next {@link decide} (taking a run
   * slot again, even beyond `parallelism` for a while, since a person said go): true. Given
   * before the step is reached, the approval counts when it is: false.
   */
  approve(i: number): boolean {
    if (!this.#gates.approve(i)) return false;
    if (this.#state[i] !== RUNNING) return false;
    if (this.graph.kind[i] === RUN) this.#running++;
    this.#out.push({ type: "start", step: i });
    return true;
  }

  /**
   * A person did the work of waiting step `i` (`thaw done`): it is done, as {@link complete}
   * makes it. False (and nothing changes) when the step does not wait for a person.
   */
  doneByHand(i: number): boolean {
    if (this.#gates.waiting(i) === undefined || this.#state[i] !== RUNNING) return false;
    this.complete(i);
    return true;
  }

  /** Cancels the run: nothing more starts, running steps are to be stopped. */
  cancel(): void {
    this.#aborted = true;
    for (let i = 0; i < this.graph.n; i++) {
      if (this.#state[i] === RUNNING) {
        this.#finish(i, CANCELLED);
        this.#out.push({ type: "cancel", step: i });
      }
    }
    this.#stopPending(CANCELLED);
  }

  /** The source of fetch `i` was measured to deliver `bytesPerSecond` on its own. */
  setRate(i: number, bytesPerSecond: number): void {
    if (this.#rate[i] === bytesPerSecond) return;
    this.#rate[i] = bytesPerSecond;
    if (this.#unqueued(i)) {
      if (this.#state[i] === RUNNING) this.#apply(i, bytesPerSecond);
    } else if (this.#linkQueue.has(i)) this.#linkDirty = true;
  }

  /** The decisions the events so far lead to; call after each batch of events. */
  decide(): Decision[] {
    if (!this.#aborted) {
      while (this.#running < this.#parallelism && this.#runQueue.size > 0) {
        const i = this.#runQueue.pop();
        this.#state[i] = RUNNING;
        const reason = this.#gates.reach(i);
        if (reason) this.#out.push({ type: "wait", step: i, reason }); // lends its slot
        else {
          this.#running++;
          this.#out.push({ type: "start", step: i });
        }
      }
    }
    if (this.#linkDirty) this.#shareLink();
    const out = this.#out;
    this.#out = [];
    return out;
  }

  #finish(i: number, to: number): void {
    const from = this.#state[i]!;
    this.#state[i] = to;
    this.#unfinished--;
    const g = this.graph;
    const waited = this.#gates.release(i); // a step waiting for a person holds no run slot
    if (g.kind[i] === RUN) {
      this.#runLeft--;
      if (from === RUNNING && !waited) this.#running--;
      this.#runQueue.remove(i);
      if (this.#runLeft === 0 && this.strategy === "lazy") this.#admitAllFetches();
    } else {
      if (this.#linkQueue.has(i) || this.#share[i]! > 0) {
        this.#linkQueue.remove(i);
        this.#linkDirty = true;
      }
      // Serial: the last fetch to finish, however it finished, lets the held run steps go.
      if (--this.#serialLeft === 0) {
        for (const r of this.#held) {
          if (this.#state[r] === PENDING) this.#runQueue.push(r, this.#rank[r]!);
        }
        this.#held = [];
      }
    }
  }

  #stopPending(to: number): void {
    for (let i = 0; i < this.graph.n; i++) {
      const s = this.#state[i]!;
      if (s === PENDING || s === FROZEN) {
        this.#finish(i, to);
        this.#out.push({ type: to === CANCELLED ? "cancel" : "skip", step: i });
      }
    }
  }

  /** Re-examines step `i` after one of its needs finished. */
  #evaluate(i: number): void {
    const s = this.#state[i]!;
    if (s !== PENDING && s !== FROZEN) return;
    const g = this.graph;
    if (this.#runNeedsLeft[i] !== 0) return;
    if (this.#fetchNeedsLeft[i] !== 0) {
      if (g.kind[i] === RUN && s === PENDING) {
        this.#state[i] = FROZEN;
        this.#out.push({ type: "freeze", step: i });
        this.#demandNeeds(i);
        if (this.strategy === "aggressive") this.#demandDownstream(i);
      }
      return;
    }
    if (s === FROZEN) {
      this.#state[i] = PENDING;
      this.#out.push({ type: "thaw", step: i });
    }
    this.#ready[i] = 1;
    if (g.kind[i] === RUN) {
      if (this.strategy === "serial" && this.#serialGate[i] && this.#serialLeft > 0) {
        this.#held.push(i);
      } else this.#runQueue.push(i, this.#rank[i]!);
    } else if (this.#eligible(i)) this.#admit(i);
  }

  /** Demands every unfinished fetch `i` waits on, and the fetches those wait on. */
  #demandNeeds(i: number): void {
    const g = this.graph;
    const stack = [i];
    while (stack.length) {
      const j = stack.pop()!;
      for (let k = g.needStart[j]!; k < g.needStart[j + 1]!; k++) {
        const f = g.needList[k]!;
        if (g.kind[f] !== FETCH || this.#demanded[f] || this.#state[f] === DONE) continue;
        this.#demanded[f] = 1;
        this.#out.push({ type: "demand", step: f });
        if (this.#ready[f] && this.#eligible(f)) this.#admit(f);
        stack.push(f);
      }
    }
  }

  /**
   * Aggressive: freezing spreads, so the run steps downstream of frozen step `i` are held by the
   * same missing data; what they will wait on too is demanded now rather than when they freeze.
   */
  #demandDownstream(i: number): void {
    const g = this.graph;
    const blocked = this.#blocked;
    const stack = [i];
    while (stack.length) {
      const j = stack.pop()!;
      for (let k = g.depStart[j]!; k < g.depStart[j + 1]!; k++) {
        const d = g.depList[k]!;
        if (g.kind[d] !== RUN || blocked[d]) continue;
        blocked[d] = 1;
        this.#demandNeeds(d);
        stack.push(d);
      }
    }
  }

  #eligible(f: number): boolean {
    if (this.#state[f] === DONE || this.#aborted && this.#state[f] !== RUNNING) return false;
    return this.strategy !== "lazy" || this.#demanded[f] === 1 || this.#runLeft === 0;
  }

  /**
   * Lets fetch `f` move. On a limited link it queues in four tiers, service first (revision 2):
   * fetches a milestone needs, demanded then not, then other fetches, demanded then not; by rank
   * within a tier. A fetch that crosses no link (`local`) or an unlimited link is not queued.
   */
  #admit(f: number): void {
    const g = this.graph;
    if (this.#unqueued(f)) {
      // Every such fetch goes as fast as its source.
      this.#apply(f, this.#rate[f]!);
      return;
    }
    const tier = (this.#serves[f] ? 0 : 2) + (this.#demanded[f] ? 0 : 1);
    this.#linkQueue.push(f, tier * g.n + this.#rank[f]!);
    this.#linkDirty = true;
  }

  #admitAllFetches(): void {
    for (let f = 0; f < this.graph.n; f++) {
      if (this.graph.kind[f] === FETCH && this.#ready[f] && this.#eligible(f)) this.#admit(f);
    }
  }

  /**
   * Shares the link: fetches in queue order each take what their source can deliver, until the
   * link is full (work-conserving, service first).
   */
  #shareLink(): void {
    this.#linkDirty = false;
    const q = this.#linkQueue;
    const bandwidth = this.graph.bandwidth;
    const next: number[] = [];
    let left = bandwidth;
    // A host's own bandwidth (revision 3) is shared by the fetches landing there, the same way.
    const { host, hostBandwidth } = this.graph;
    const hostLeft = hostBandwidth && Float64Array.from(hostBandwidth);
    while (q.size > 0 && (left === Infinity || left > bandwidth * 1e-12)) {
      const f = q.pop();
      next.push(f);
      const h = host?.[f] ?? -1;
      const r = Math.min(this.#rate[f]!, left, h >= 0 ? hostLeft![h]! : Infinity);
      left -= r;
      if (h >= 0) hostLeft![h]! -= r;
      this.#apply(f, r);
    }
    // Fetches that had a share and no longer do are paused.
    for (const f of this.#shared) {
      if (this.#state[f] !== RUNNING) this.#share[f] = 0;
      else if (q.has(f)) this.#apply(f, 0);
    }
    for (const f of next) this.#admit(f);
    this.#shared = next.filter((f) => this.#share[f]! > 0);
  }

  /** A fetch that takes no place in the link's queue: `local`, or no link and no host cap. */
  #unqueued(f: number): boolean {
    const g = this.graph;
    return g.local[f] === 1 || (g.bandwidth === Infinity && (g.host?.[f] ?? -1) < 0);
  }

  #apply(f: number, rate: number): void {
    if (this.#share[f] === rate) return;
    if (this.#state[f] === PENDING && rate > 0) {
      this.#state[f] = RUNNING;
      // A gated fetch waits for its approval with its share kept (a slow start, not a slow source).
      const reason = this.#gates.reach(f);
      this.#out.push(reason ? { type: "wait", step: f, reason } : { type: "start", step: f });
    }
    this.#share[f] = rate;
    this.#out.push({ type: "share", step: f, rate });
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
