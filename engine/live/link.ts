/**
 * The shared link, for real: each fetch is paced to the share of the bandwidth the scheduler gave
 * it, so the sum never exceeds the runbook's `bandwidth`.
 *
 * The scheduler decides shares ("share" decisions, bytes per second; 0 pauses a fetch); the
 * {@link LinkShaper} enforces them. A fetch calls {@link Link.take} after each chunk it reads: the
 * call returns at once while the fetch is within its share and otherwise waits, which stops the
 * reads and so, for HTTP, lets TCP push back on the sender. A change of share wakes a waiting
 * fetch at once, so a fetch that is demanded gets the link as soon as the scheduler says so.
 *
 * Accounting is strict, so that no fetch ever runs ahead of its share: a fetch starts with no
 * credit, a debt (bytes that crossed before the link allowed them: a chunk already read, what a
 * `run:` command wrote) is waited out and never forgiven when the share changes, and credit
 * saved while the source was slower than its share is capped at a short burst. So the bytes of
 * all fetches by any time never exceed the bandwidth times that time, and no report shows a fetch
 * (or a TTR or BTN) beating the link's lower bound. A wait is re-checked at least every
 * {@linkcode MAX_WAIT_MS} ms, whatever the debt (no timer beyond Node's limit).
 *
 * The shaper also measures what each fetch achieves and how long it waited for the link; the
 * engine's rate estimator (`rate.ts`) turns that into what it tells the scheduler (`setRate`).
 * A fetch that crosses no link (`local: true`) takes an unlimited link: counted, never paced.
 *
 * @module
 */
import type { Clock, Link } from "../../steps/types.ts";

/** Bytes a fetch may send at once after being idle, at most (keeps bursts short). */
const BURST_SECONDS = 0.05;
const MIN_BURST = 64 * 1024;
/** The longest single wait before a fetch checks its credit again, milliseconds. */
export const MAX_WAIT_MS = 1000;

interface Pacer {
  rate: number;
  /** Bytes that may go now; negative = debt to wait out. */
  tokens: number;
  refilledAt: number;
  /** Wakes the waiting `take`, if any, when the share changes. */
  wake: (() => void) | null;
  /** Bytes through `take` since the window began, and time spent waiting in it. */
  windowBytes: number;
  windowWait: number;
  total: number;
  /** Milliseconds spent waiting in all, not counting the wait under way. */
  waited: number;
  /** When the wait under way began (clock ms), or NaN. */
  waitingSince: number;
  /** Never paced (a fetch that crosses no link). */
  unlimited: boolean;
}

/** What the shaper saw of a fetch over the last window. */
export interface LinkSample {
  /** Bytes per second achieved. */
  readonly achieved: number;
  /** Share it had, bytes per second. */
  readonly share: number;
  /** Fraction of the window spent waiting for the link (0: the source was the limit). */
  readonly waited: number;
  /** Bytes through the link in total. */
  readonly total: number;
  /** Seconds spent waiting for the link in total, including a wait under way. */
  readonly waitedTotal: number;
}

/**
 * Paces fetches to their shares of the link.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LinkShaper } from "./link.ts";
 * import { realClock } from "../../steps/types.ts";
 * const shaper = new LinkShaper(realClock);
 * shaper.setShare(0, 10e6); // fetch 0 may move 10 MB/s
 * const link = shaper.link(0);
 * const started = performance.now();
 * await link.take(100_000, new AbortController().signal); // 100 kB at 10 MB/s: 10 ms
 * assert.equal(shaper.total(0), 100_000);
 * assert.ok(performance.now() - started >= 9);
 * ```
 */
export class LinkShaper {
  readonly #clock: Clock;
  readonly #pacers = new Map<number, Pacer>();
  #windowStart: number;

  /** A shaper using `clock` for pacing. */
  constructor(clock: Clock) {
    this.#clock = clock;
    this.#windowStart = clock.now();
  }

  #pacer(i: number): Pacer {
    let p = this.#pacers.get(i);
    if (!p) {
      p = {
        rate: 0,
        tokens: 0,
        refilledAt: this.#clock.now(),
        wake: null,
        windowBytes: 0,
        windowWait: 0,
        total: 0,
        waited: 0,
        waitingSince: NaN,
        unlimited: false,
      };
      this.#pacers.set(i, p);
    }
    return p;
  }

  /** Sets the share of fetch `i`, bytes per second (Infinity: no pacing; 0: paused). */
  setShare(i: number, rate: number): void {
    const p = this.#pacer(i);
    if (p.unlimited) return;
    this.#refill(p);
    p.rate = rate;
    p.wake?.();
  }

  /** The share of fetch `i` now. */
  share(i: number): number {
    return this.#pacers.get(i)?.rate ?? 0;
  }

  /** Bytes fetch `i` moved through the link so far. */
  total(i: number): number {
    return this.#pacers.get(i)?.total ?? 0;
  }

  /** Forgets fetch `i` (it finished or stopped). */
  release(i: number): void {
    const p = this.#pacers.get(i);
    if (p) {
      p.rate = Infinity;
      p.wake?.();
      this.#pacers.delete(i);
    }
  }

  /** Seconds fetch `i` spent waiting for the link so far, including a wait under way. */
  waited(i: number): number {
    const p = this.#pacers.get(i);
    return p ? this.#waitedMs(p, this.#clock.now()) / 1000 : 0;
  }

  /**
   * The link of fetch `i`, to hand to the fetch step; `unlimited` (a fetch that crosses no link):
   * its bytes are counted, it is never paced, whatever share it is given.
   */
  link(i: number, unlimited = false): Link {
    const p = this.#pacer(i);
    if (unlimited) {
      p.unlimited = true;
      p.rate = Infinity;
      p.wake?.();
    }
    return { take: (bytes, signal) => this.#take(this.#pacer(i), bytes, signal) };
  }

  /** What each fetch achieved since the last call; starts a new window. */
  sample(): Map<number, LinkSample> {
    const now = this.#clock.now();
    const seconds = Math.max(1e-3, (now - this.#windowStart) / 1000);
    this.#windowStart = now;
    const out = new Map<number, LinkSample>();
    for (const [i, p] of this.#pacers) {
      const ongoing = Number.isNaN(p.waitingSince) ? 0 : now - p.waitingSince;
      out.set(i, {
        achieved: p.windowBytes / seconds,
        share: p.rate,
        waited: Math.min(1, (p.windowWait + ongoing) / 1000 / seconds),
        total: p.total,
        waitedTotal: this.#waitedMs(p, now) / 1000,
      });
      p.windowBytes = 0;
      p.windowWait = -ongoing; // the wait under way is counted in this window already
    }
    return out;
  }

  #waitedMs(p: Pacer, now: number): number {
    return p.waited + (Number.isNaN(p.waitingSince) ? 0 : now - p.waitingSince);
  }

  #refill(p: Pacer): void {
    const now = this.#clock.now();
    if (p.rate > 0 && Number.isFinite(p.rate)) {
      const burst = Math.max(MIN_BURST, p.rate * BURST_SECONDS);
      p.tokens = Math.min(burst, p.tokens + (p.rate * (now - p.refilledAt)) / 1000);
    }
    p.refilledAt = now;
  }

  async #take(p: Pacer, bytes: number, signal: AbortSignal): Promise<void> {
    p.total += bytes;
    p.windowBytes += bytes;
    if (p.rate === Infinity) return;
    this.#refill(p);
    p.tokens -= bytes;
    if (p.rate !== 0 && p.tokens >= 0) return signal.throwIfAborted();
    const began = this.#clock.now();
    p.waitingSince = began;
    try {
      while (p.rate !== Infinity && (p.rate === 0 || p.tokens < 0)) {
        signal.throwIfAborted();
        const changed = new Promise<void>((resolve) => (p.wake = resolve));
        if (p.rate === 0) {
          await abortable(changed, signal);
        } else {
          // Clamped: a debt at a tiny share would otherwise ask for a timer beyond Node's limit.
          const ms = Math.min(MAX_WAIT_MS, Math.max(1, (-p.tokens / p.rate) * 1000));
          const ac = new AbortController();
          const onAbort = () => ac.abort(signal.reason);
          signal.addEventListener("abort", onAbort, { once: true });
          try {
            await Promise.race([changed, this.#clock.sleep(ms, ac.signal).catch(() => {})]);
          } finally {
            signal.removeEventListener("abort", onAbort);
            ac.abort();
          }
        }
        p.wake = null;
        this.#refill(p);
      }
      signal.throwIfAborted();
    } finally {
      const waited = this.#clock.now() - began;
      p.windowWait += waited;
      p.waited += waited;
      p.waitingSince = NaN;
    }
  }
}

function abortable(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}
