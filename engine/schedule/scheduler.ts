/**
 * The frozen-step scheduler: a pure state machine, the same in simulation and in live runs.
 *
 * Events go in ({@link Scheduler.complete}, {@link Scheduler.fail}, {@link Scheduler.cancel},
 * {@link Scheduler.setRate}, a person's {@link Scheduler.approve} and
 * {@link Scheduler.doneByHand}; for lazy fetches {@link Scheduler.attached},
 * {@link Scheduler.setDemandRate} and {@link Scheduler.home}); {@link Scheduler.decide} returns the decisions they lead to
 * (start a step, hold one for a person, freeze or thaw one, demand a fetch, give a fetch its
 * share of the link). The scheduler
 * holds no clock: its decisions depend only on the order of events, which is why a simulated
 * drill decides exactly what the live engine will.
 *
 * @module
 */
import { type Graph, RUN } from "../plan/graph.ts";
import type { WaitReason } from "./approvals.ts";
import { type Decision, type SchedulerOptions, STATES, type StepState } from "./decision.ts";
import { evaluate } from "./freeze_demand.ts";
import { markAttached, setDemandRate } from "./lazy.ts";
import { admit, demandChanged, eligible, setRate, shareLink } from "./link_share.ts";
import { DONE, FAILED, RUNNING, RunState } from "./run_state.ts";
import { cancel, failed, finish } from "./step_end.ts";
import type { Strategy } from "../runbook/schema.ts";

export { type Decision, type SchedulerOptions, STATES, type StepState } from "./decision.ts";

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
  /** The run's state; its parts: `run_state.ts`, `link_share.ts`, `freeze_demand.ts`, `step_end.ts`. */
  readonly #s: RunState;

  /** A scheduler at the start of a run of `graph`. */
  constructor(graph: Graph, options: SchedulerOptions) {
    this.graph = graph;
    this.strategy = options.strategy;
    const s = this.#s = new RunState(graph, options);
    for (let i = 0; i < graph.n; i++) evaluate(s, i);
  }

  /** The state of step `i`. */
  state(i: number): StepState {
    return STATES[this.#s.state[i]!]!;
  }

  /** Whether fetch `i` has been demanded by a frozen step. */
  demanded(i: number): boolean {
    return this.#s.demanded[i] === 1;
  }

  /** The share of the link fetch `i` has now, bytes per second. */
  share(i: number): number {
    return this.#s.share[i]!;
  }

  /** True when no step can start or finish any more. */
  get finished(): boolean {
    return this.#s.unfinished === 0;
  }

  /** How many steps are not yet done, failed, skipped or cancelled. */
  get unfinished(): number {
    return this.#s.unfinished;
  }

  /**
   * Step `i` is done (a run step exited 0 and passed `ready`; a fetch landed and checked; a lazy
   * fetch is home: every byte local).
   */
  complete(i: number): void {
    const s = this.#s;
    if (s.ended(i)) return;
    finish(s, i, DONE);
    if (s.attached[i] !== 1) this.#needsMet(i); // a lazy fetch let them go when attached
  }

  /** Lazy fetch `i` is home (revision 5): {@link complete}, named for the live loop's event. */
  home(i: number): void {
    this.complete(i);
  }

  /**
   * Lazy fetch `i` is attached (revision 5): its file can be opened, so the steps that need it
   * may start (an `attached` decision follows). Ignored for any other step, or a second time.
   */
  attached(i: number): void {
    const s = this.#s;
    if (!markAttached(s, i)) return;
    if (eligible(s, i)) admit(s, i); // its stream queues for the link
    this.#needsMet(i);
  }

  /**
   * The service reads lazy fetch `i`'s missing parts at `bytesPerSecond` (measured by its
   * executor: bytes fetched less the stream's progress, per second). These reads come before
   * every fetch on the link; the stream yields to them (see `lazy.ts`). 0: no demand.
   */
  setDemandRate(i: number, bytesPerSecond: number): void {
    if (setDemandRate(this.#s, i, bytesPerSecond)) demandChanged(this.#s, i);
  }

  /** Bytes per second lazy fetch `i`'s demanded reads move, as last reported. */
  demandRate(i: number): number {
    return this.#s.demandRate[i] ?? 0;
  }

  /** Whether lazy fetch `i` is attached. */
  isAttached(i: number): boolean {
    return this.#s.attached[i] === 1;
  }

  /** Step `i` no longer holds back the steps that need it: each is examined again. */
  #needsMet(i: number): void {
    const s = this.#s, g = this.graph;
    for (let k = g.depStart[i]!; k < g.depStart[i + 1]!; k++) {
      const d = g.depList[k]!;
      if (g.kind[i] === RUN) s.runNeedsLeft[d]!--;
      else s.fetchNeedsLeft[d]!--;
      evaluate(s, d);
    }
  }

  /** Step `i` failed for good (after its retries). */
  fail(i: number): void {
    if (this.#s.ended(i)) return;
    finish(this.#s, i, FAILED);
    failed(this.#s, i);
  }

  /**
   * Step `i`, done, is lost after all (its background service exited): it is failed from now on,
   * with what {@link fail} does to the steps that need it and, unless it isolates, to the run.
   */
  lost(i: number): void {
    if (this.#s.state[i] !== DONE) return;
    this.#s.state[i] = FAILED;
    failed(this.#s, i);
  }

  /**
   * Step `i` was running when its engine died and is not idempotent (resume): when it is reached
   * again it waits for a person, lending its run slot meanwhile.
   */
  interrupted(i: number): void {
    if (this.graph.kind[i] === RUN) this.#s.gates.interrupt(i);
  }

  /** Why step `i` waits for a person now, if it does. */
  waiting(i: number): WaitReason | undefined {
    return this.#s.gates.waiting(i);
  }

  /**
   * A person approves step `i`. A waiting step starts at the next {@link decide} (taking a run
   * slot again, even beyond `parallelism` for a while, since a person said go): true. Given
   * before the step is reached, the approval counts when it is: false.
   */
  approve(i: number): boolean {
    const s = this.#s;
    if (!s.gates.approve(i)) return false;
    if (s.state[i] !== RUNNING) return false;
    if (this.graph.kind[i] === RUN) s.running++;
    s.out.push({ type: "start", step: i });
    return true;
  }

  /**
   * A person did the work of waiting step `i` (`thaw done`): it is done, as {@link complete}
   * makes it. False (and nothing changes) when the step does not wait for a person.
   */
  doneByHand(i: number): boolean {
    if (this.#s.gates.waiting(i) === undefined || this.#s.state[i] !== RUNNING) return false;
    this.complete(i);
    return true;
  }

  /** Cancels the run: nothing more starts, running steps are to be stopped. */
  cancel(): void {
    cancel(this.#s);
  }

  /** The source of fetch `i` was measured to deliver `bytesPerSecond` on its own. */
  setRate(i: number, bytesPerSecond: number): void {
    setRate(this.#s, i, bytesPerSecond);
  }

  /** The decisions the events so far lead to; call after each batch of events. */
  decide(): Decision[] {
    const s = this.#s;
    if (!s.aborted) {
      while (s.running < s.parallelism && s.runQueue.size > 0) {
        const i = s.runQueue.pop();
        s.state[i] = RUNNING;
        const reason = s.gates.reach(i);
        if (reason) s.out.push({ type: "wait", step: i, reason }); // lends its slot
        else {
          s.running++;
          s.out.push({ type: "start", step: i });
        }
      }
    }
    if (s.linkDirty) shareLink(s);
    const out = s.out;
    s.out = [];
    return out;
  }
}
