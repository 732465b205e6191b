/**
 * The demand of a lazy fetch (contract revision 5), from what its executor can measure each
 * second: the bytes fetched from the backup in all, and the stream's progress. What was fetched
 * beyond the stream was read on demand. Pure: the caller gives the time, so a live loop feeds
 * it the real clock and a test a fake one. Its figures go to `Scheduler.setDemandRate` (the
 * stream yields to demand) and `Recorder.demandBytes` (the report).
 *
 * @module
 */

/** What one sample tells. */
export interface DemandSample {
  /** Bytes read on demand so far (never decreasing). */
  readonly onDemand: number;
  /** Bytes streamed so far. */
  readonly streamed: number;
  /**
   * Demanded reads, bytes per second: the last interval's rate when it is higher, else decaying
   * towards it over about {@link DEMAND_WINDOW_S}.
   */
  readonly rate: number;
}

/**
 * Seconds over which the demand rate decays once reads slow down: a burst of reads holds the
 * stream back for a few seconds after it, not only for the second it was seen in.
 */
export const DEMAND_WINDOW_S = 2;

/**
 * Turns the executor's counters into demand, sample by sample.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DemandMeter } from "./lazy_meter.ts";
 * const m = new DemandMeter();
 * m.sample(0, 0, 0);
 * const s = m.sample(1, 3_000_000, 1_000_000); // 2 MB fetched beyond the stream in 1 s
 * assert.equal(s.onDemand, 2_000_000);
 * assert.ok(s.rate > 0);
 * ```
 */
export class DemandMeter {
  /** The time of the last sample that moved the clock on, and the demand then. */
  #t = NaN;
  #base = 0;
  #onDemand = 0;
  #rate = 0;

  /**
   * At `t` seconds, the fetcher had fetched `fetched` bytes in all and the stream had moved
   * `streamed`: the demand so far, and its rate. A sample at a time not after the last one
   * updates the bytes, not the rate.
   */
  sample(t: number, fetched: number, streamed: number): DemandSample {
    this.#onDemand = Math.max(this.#onDemand, fetched - streamed);
    if (Number.isNaN(this.#t)) {
      this.#t = t;
      this.#base = this.#onDemand;
    } else if (t > this.#t) {
      const dt = t - this.#t;
      const now = (this.#onDemand - this.#base) / dt;
      // Up at once (the stream yields within a sample of the reads starting: smoothing the rise
      // too left a 2 s burst of reads at 0.6 of its rate, and the stream in their way); down
      // with a time constant of DEMAND_WINDOW_S, whatever the interval.
      const keep = Math.exp(-dt / DEMAND_WINDOW_S);
      this.#rate = Math.max(now, keep * this.#rate + (1 - keep) * now);
      if (this.#rate < 1) this.#rate = 0; // below a byte per second: none
      this.#t = t;
      this.#base = this.#onDemand;
    }
    return { onDemand: this.#onDemand, streamed: Math.max(0, streamed), rate: this.#rate };
  }
}
