/**
 * The rate estimator: how fast each fetch's source can deliver on its own, judged from what the
 * link saw of it, for the scheduler to share the link by (`Scheduler.setRate`).
 *
 * Pure: no clock, no I/O. The live engine feeds it an observation of each fetch about once a
 * second (cumulative bytes through the link, cumulative time spent waiting for the link, the share
 * it has now, stamped with the time); it answers with the rate to tell the scheduler, or nothing.
 *
 * The rules, each a lesson from a stall:
 * - **Not slow before its first byte.** A source that has sent nothing yet (a `run:` command
 *   loading an index, a server that answers after seconds) keeps the rate the plan assumed: the
 *   time to its first byte says nothing about how fast it will then deliver. The window in which
 *   the first byte arrives is not judged slow either (it began in silence).
 * - **Slow**: over a window in which the fetch hardly waited for the link (under 5 % of it) yet
 *   moved clearly less than its share (under 80 %), the source is the limit: its rate is what it
 *   achieved, plus 10 %, so the rest of the link goes to other fetches.
 * - **Fast**: over a window in which the fetch waited for the link for more than 30 % of it, the
 *   link held it back: its rate becomes at least twice its share, or what it moved per second
 *   while not waiting, whichever is more (the scheduler caps it at what is left of the link).
 * - **A floor**: a rate is never below {@linkcode RateEstimator.floor} (1 % of the link), so a
 *   fetch whose source paused is never starved for good, and no pacing wait is ever absurd.
 * - **Waiting is not slowness.** A window in which the fetch was paused (share 0), unpaced, or
 *   at the start of which it had just been let go again says nothing about its source and is not
 *   judged; time waiting for approval comes before {@linkcode RateEstimator.begin}; time waiting
 *   for the link is subtracted from the time the fetch was moving ({@linkcode RateEstimator.end}),
 *   which is what history learns a source's rate over.
 *
 * @example A source silent for 3 s is not slow; one that then trickles is, down to the floor
 * ```ts
 * import assert from "node:assert/strict";
 * import { RateEstimator } from "./rate.ts";
 * const rates = new RateEstimator(10e6); // a 10 MB/s link
 * rates.begin(0, 0);
 * for (let t = 1; t <= 3; t++) {
 *   assert.equal(rates.observe(0, { at: t, bytes: 0, waited: 0, share: 10e6 }), undefined);
 * }
 * rates.observe(0, { at: 4, bytes: 1000, waited: 0, share: 10e6 }); // the first byte: not judged
 * assert.equal(rates.observe(0, { at: 5, bytes: 2000, waited: 0, share: 10e6 }), rates.floor);
 * assert.equal(rates.floor, 100e3);
 * ```
 *
 * @module
 */

/** What the link saw of one fetch, cumulative since it was first observed. */
export interface LinkObservation {
  /** Seconds, on any clock, the same for every call. */
  readonly at: number;
  /** Bytes the fetch has moved through the link so far. */
  readonly bytes: number;
  /** Seconds the fetch has spent waiting for the link so far (paced or paused). */
  readonly waited: number;
  /** Its share of the link now, bytes per second (0: paused; Infinity: not paced). */
  readonly share: number;
}

/** Below this fraction of a window spent waiting, the source, not the link, set the pace. */
const SOURCE_LIMITED = 0.05;
/** Above this fraction of a window spent waiting, the link held the fetch back. */
const LINK_LIMITED = 0.3;
/** A fetch moving less than this fraction of its share, unhindered, has a slow source. */
const SLOW = 0.8;
/** Headroom over what a slow source achieved. */
const HEADROOM = 1.1;
/** The floor, as a fraction of the link. */
const FLOOR_FRACTION = 0.01;
/** The floor on an unlimited link, or a tiny one, bytes per second. */
const MIN_FLOOR = 1024;

interface Track {
  /** When the fetch began moving (seconds), NaN until {@link RateEstimator.begin}. */
  begun: number;
  /** Waited seconds at `begun`. */
  waitedAtBegin: number;
  /** The last observation, NaN `at` before the first. */
  at: number;
  bytes: number;
  waited: number;
  share: number;
  /** The rate the scheduler has for the fetch: the last one told, else the plan's. */
  told: number;
}

/**
 * Estimates the rates of the sources of the fetches of one run, by fetch index.
 *
 * @example A fetch held back by the link is raised; one paused by the scheduler is left alone
 * ```ts
 * import assert from "node:assert/strict";
 * import { RateEstimator } from "./rate.ts";
 * const rates = new RateEstimator(10e6, [1e6]); // the plan says the source does 1 MB/s
 * rates.begin(0, 0);
 * rates.observe(0, { at: 0, bytes: 0, waited: 0, share: 1e6 });
 * // It moved its 1 MB/s but waited 0.75 s of the second for the link: its source can do more.
 * assert.equal(rates.observe(0, { at: 1, bytes: 1e6, waited: 0.75, share: 1e6 }), 4e6);
 * // Paused (share 0): nothing moves, and nothing is concluded.
 * assert.equal(rates.observe(0, { at: 2, bytes: 1e6, waited: 1.75, share: 0 }), undefined);
 * ```
 */
export class RateEstimator {
  /** The lowest rate ever told, bytes per second: 1 % of the link (1 KiB/s at least). */
  readonly floor: number;
  readonly #bandwidth: number;
  readonly #prior: ArrayLike<number>;
  readonly #tracks = new Map<number, Track>();

  /**
   * An estimator for fetches sharing a link of `bandwidth` bytes per second (Infinity: no limit,
   * where there is nothing to share and it never tells a rate); `prior[i]` is the rate the
   * scheduler starts from for fetch `i` (Infinity or missing: as fast as the link).
   */
  constructor(bandwidth: number, prior: ArrayLike<number> = []) {
    this.#bandwidth = bandwidth;
    this.#prior = prior;
    this.floor = Number.isFinite(bandwidth)
      ? Math.max(MIN_FLOOR, bandwidth * FLOOR_FRACTION)
      : MIN_FLOOR;
  }

  #track(i: number): Track {
    let t = this.#tracks.get(i);
    if (!t) {
      t = {
        begun: NaN,
        waitedAtBegin: 0,
        at: NaN,
        bytes: 0,
        waited: 0,
        share: 0,
        told: this.#prior[i] ?? Infinity,
      };
      this.#tracks.set(i, t);
    }
    return t;
  }

  /**
   * Fetch `i` begins moving at `at` seconds (its source is asked now: after any approval), having
   * waited `waited` seconds for the link so far (0 for a fresh link).
   */
  begin(i: number, at: number, waited = 0): void {
    const t = this.#track(i);
    t.begun = at;
    t.waitedAtBegin = waited;
  }

  /** Observes fetch `i`; returns the rate to tell the scheduler (bytes per second), or undefined. */
  observe(i: number, o: LinkObservation): number | undefined {
    const t = this.#track(i);
    const first = Number.isNaN(t.at);
    const dt = o.at - t.at;
    const moved = o.bytes - t.bytes;
    const waited = Math.min(Math.max(0, o.waited - t.waited), Math.max(0, dt));
    const hadBytes = t.bytes > 0, hadShare = t.share;
    t.at = o.at;
    t.bytes = o.bytes;
    t.waited = o.waited;
    t.share = o.share;
    if (first || !(dt > 0) || !Number.isFinite(this.#bandwidth)) return undefined;
    // Paused, unpaced, or let go only during this window: the window says nothing of the source.
    const share = o.share;
    if (!(share > 0) || !Number.isFinite(share) || !(hadShare > 0)) return undefined;
    let rate: number | undefined;
    if (waited > LINK_LIMITED * dt) {
      const perActiveSecond = moved / Math.max(dt - waited, SOURCE_LIMITED * dt);
      rate = Math.max(2 * share, perActiveSecond);
      if (rate <= t.told) return undefined; // only ever raised here
    } else if (waited < SOURCE_LIMITED * dt && hadBytes) {
      const achieved = moved / dt;
      if (achieved >= SLOW * Math.min(share, hadShare)) return undefined;
      rate = achieved * HEADROOM;
    } else return undefined;
    rate = Math.max(this.floor, rate);
    if (rate === t.told) return undefined;
    t.told = rate;
    return rate;
  }

  /**
   * Fetch `i` ended at `at`, having waited `waited` seconds for the link in all (the same clock
   * as {@link observe}); forgets it. Returns the seconds it was moving: from
   * {@link begin} to `at`, less the time it waited for the link (NaN if it never began).
   */
  end(i: number, at: number, waited: number): number {
    const t = this.#tracks.get(i);
    this.#tracks.delete(i);
    if (!t || Number.isNaN(t.begun)) return NaN;
    return Math.max(0, at - t.begun - Math.max(0, waited - t.waitedAtBegin));
  }
}
