/**
 * What happened to each step and when: the measures of a run, whichever world drove it.
 *
 * The simulator and the live engine both feed the scheduler's decisions and the completions they
 * observe into a {@link Recorder}, stamped with their own clock; the report is built from it.
 *
 * @module
 */
import type { Graph } from "../plan/graph.ts";
import type { Decision } from "./scheduler.ts";

/**
 * Start, end, time frozen and bytes of every step of a run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Recorder } from "./recorder.ts";
 * import type { Graph } from "../plan/graph.ts";
 * const r = new Recorder({ n: 1, size: new Float64Array([0]) } as unknown as Graph);
 * r.record([{ type: "freeze", step: 0 }], 0, () => 0);
 * r.record([{ type: "thaw", step: 0 }, { type: "start", step: 0 }], 2, () => 0);
 * r.complete(0, 5);
 * assert.equal(r.frozen[0], 2);
 * assert.equal(r.end[0], 5);
 * ```
 */
export class Recorder {
  readonly start: Float64Array;
  readonly end: Float64Array;
  readonly frozen: Float64Array;
  readonly #frozenSince: Float64Array;
  /** 1 when the fetch was demanded by a frozen step. */
  readonly demanded: Uint8Array;
  /** Bytes a fetch had already brought home when it was demanded (or at its end, if never). */
  readonly prefetched: Float64Array;
  /** Bytes a fetch brought home. */
  readonly bytes: Float64Array;
  /**
   * Live runs: seconds a fetch was moving (from asking its source, after any approval, to its end,
   * less the time the link held it back: paced or paused), NaN when unknown.
   */
  readonly moving: Float64Array;
  /** Live runs: bytes a fetch moved over the link in this engine (NaN when unknown). */
  readonly crossed: Float64Array;
  /** Lazy fetches (revision 5): when attached (NaN: not yet, or not lazy). */
  readonly attached: Float64Array;
  /**
   * Lazy fetches: bytes fetched for reads of parts not yet home (the rest of `bytes` streamed),
   * as the executor measured them (see {@link Recorder.demandBytes}); 0 in simulation.
   */
  readonly onDemand: Float64Array;

  /** A recorder for a run of `graph`, before anything happened. */
  constructor(graph: Graph) {
    const n = graph.n;
    this.start = new Float64Array(n).fill(NaN);
    this.end = new Float64Array(n).fill(NaN);
    this.frozen = new Float64Array(n);
    this.#frozenSince = new Float64Array(n).fill(NaN);
    this.demanded = new Uint8Array(n);
    this.prefetched = new Float64Array(n);
    this.bytes = new Float64Array(n);
    this.moving = new Float64Array(n).fill(NaN);
    this.crossed = new Float64Array(n).fill(NaN);
    this.attached = new Float64Array(n).fill(NaN);
    this.onDemand = new Float64Array(n);
  }

  /** Lazy fetch `i` has fetched `bytes` on demand so far (never less than reported before). */
  demandBytes(i: number, bytes: number): void {
    if (bytes > this.onDemand[i]!) this.onDemand[i] = bytes;
  }

  /**
   * Records `decisions` taken at `now`; `bytesDone(f)` tells how much fetch `f` has moved (0 for a
   * run step).
   */
  record(decisions: readonly Decision[], now: number, bytesDone: (f: number) => number): void {
    for (const d of decisions) {
      const i = d.step;
      switch (d.type) {
        case "start":
        case "wait": // reached, waiting for a person: its time counts from here
          if (Number.isNaN(this.start[i]!)) this.start[i] = now;
          break;
        case "freeze":
          this.#frozenSince[i] = now;
          break;
        case "attached":
          if (Number.isNaN(this.attached[i]!)) this.attached[i] = now;
          break;
        case "thaw":
          this.#thaw(i, now);
          break;
        case "demand":
          // Demanded once, demanded for good (a resumed run is demanded again by its own
          // scheduler): the bytes that came before the first demand stay the prefetched ones.
          if (this.demanded[i]) break;
          this.demanded[i] = 1;
          this.prefetched[i] = bytesDone(i);
          break;
        case "skip":
          this.#thaw(i, now);
          if (!Number.isNaN(this.start[i]!)) this.end[i] = now;
          break;
        case "cancel":
          this.#thaw(i, now);
          if (Number.isNaN(this.start[i]!)) break;
          // A cancelled fetch moved bytes all the same: the report counts them.
          this.end[i] = now;
          this.bytes[i] = Math.max(this.bytes[i]!, bytesDone(i));
          if (!this.demanded[i]) this.prefetched[i] = this.bytes[i]!;
          break;
      }
    }
  }

  /** Step `i` finished at `now` (with `bytes` brought home, for a fetch). */
  complete(i: number, now: number, bytes = 0): void {
    this.#thaw(i, now);
    this.end[i] = now;
    this.bytes[i] = bytes;
    if (!this.demanded[i]) this.prefetched[i] = bytes;
  }

  #thaw(i: number, now: number): void {
    const since = this.#frozenSince[i]!;
    if (!Number.isNaN(since)) {
      this.frozen[i] = this.frozen[i]! + now - since;
      this.#frozenSince[i] = NaN;
    }
  }
}
