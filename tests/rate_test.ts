/**
 * The rate estimator (engine/schedule/rate.ts) on a fake clock: observations stamped with chosen times, as
 * the live engine makes them about once a second, and the link shaper (engine/live/link.ts) on a fake
 * clock whose timers fire as virtual time advances.
 *
 * @module
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { RateEstimator } from "../engine/schedule/rate.ts";
import { LinkShaper, MAX_WAIT_MS } from "../engine/live/link.ts";
import type { Clock } from "../steps/types.ts";

const MB = 1e6;

/** Feeds `rates` one observation a second for fetch 0; returns what it told, by second. */
function feed(
  rates: RateEstimator,
  seconds: readonly { bytes: number; waited: number; share: number }[],
): (number | undefined)[] {
  return seconds.map((o, t) => rates.observe(0, { at: t, ...o }));
}

Deno.test("RateEstimator.observe() tells nothing, when the source has not sent its first byte", () => {
  const rates = new RateEstimator(10 * MB);
  rates.begin(0, 0);
  const silent = Array.from({ length: 30 }, () => ({ bytes: 0, waited: 0, share: 10 * MB }));
  deepEqual(feed(rates, silent), silent.map(() => undefined));
});

Deno.test("RateEstimator.observe() does not judge the window of the first byte, when it came late", () => {
  const rates = new RateEstimator(10 * MB);
  rates.begin(0, 0);
  const told = feed(rates, [
    { bytes: 0, waited: 0, share: 10 * MB },
    { bytes: 0, waited: 0, share: 10 * MB },
    { bytes: 1 * MB, waited: 0, share: 10 * MB }, // first bytes late in the window: not slow
    { bytes: 11 * MB, waited: 0, share: 10 * MB }, // then at its share
  ]);
  deepEqual(told, [undefined, undefined, undefined, undefined]);
});

Deno.test("RateEstimator.observe() lowers a slow source to what it achieves, never below the floor", () => {
  const rates = new RateEstimator(10 * MB);
  equal(rates.floor, 0.1 * MB);
  const told = feed(rates, [
    { bytes: 0, waited: 0, share: 10 * MB },
    { bytes: 1 * MB, waited: 0, share: 10 * MB },
    { bytes: 3 * MB, waited: 0, share: 10 * MB }, // 2 MB/s, unhindered: the source is the limit
    { bytes: 3 * MB + 10, waited: 0, share: 2.2 * MB }, // a stall: ~0, but the floor holds
    { bytes: 3 * MB + 20, waited: 0, share: 0.1 * MB }, // still ~0: already at the floor
  ]);
  equal(told[2], 2.2 * MB);
  equal(told[3], 0.1 * MB);
  equal(told[4], undefined);
  for (const r of told) ok(r === undefined || r >= rates.floor);
});

Deno.test("RateEstimator.observe() raises a fetch quickly, when the link holds back a source that sped up", () => {
  const rates = new RateEstimator(10 * MB, [0.1 * MB]); // it was found slow before
  const told = feed(rates, [
    { bytes: 0, waited: 0, share: 0.1 * MB },
    { bytes: 0.1 * MB, waited: 0.9, share: 0.1 * MB }, // moved 0.1 MB in 0.1 s of not waiting
    { bytes: 1.1 * MB, waited: 1.8, share: 1 * MB },
  ]);
  equal(Math.round(told[1]!), 1 * MB); // what it moved per second while not waiting
  equal(Math.round(told[2]!), 10 * MB);
});

Deno.test("RateEstimator.observe() leaves a fetch alone, when it waited: paused, just let go, or held", () => {
  const rates = new RateEstimator(10 * MB);
  const told = feed(rates, [
    { bytes: 0, waited: 0, share: 5 * MB },
    { bytes: 5 * MB, waited: 0, share: 5 * MB },
    { bytes: 5 * MB, waited: 1, share: 0 }, // paused by the scheduler: nothing moved, not slow
    { bytes: 5 * MB, waited: 1.5, share: 0 },
    { bytes: 5.5 * MB, waited: 1.5, share: 5 * MB }, // let go during the window: not judged
    { bytes: 10.5 * MB, waited: 1.5, share: 5 * MB },
    // Held back by the link half the time: not slow (and the plan's rate, unlimited, is higher).
    { bytes: 13 * MB, waited: 2, share: 5 * MB },
  ]);
  deepEqual(told, told.map(() => undefined));
});

Deno.test("RateEstimator.observe() tells nothing, when the link has no limit or the fetch no pacing", () => {
  const unlimited = new RateEstimator(Infinity);
  deepEqual(
    feed(unlimited, [
      { bytes: 0, waited: 0, share: Infinity },
      { bytes: 10, waited: 0, share: Infinity },
      { bytes: 20, waited: 0, share: Infinity },
    ]),
    [undefined, undefined, undefined],
  );
  const local = new RateEstimator(10 * MB);
  deepEqual(
    feed(local, [
      { bytes: 0, waited: 0, share: Infinity },
      { bytes: 10, waited: 0, share: Infinity },
      { bytes: 20, waited: 0, share: Infinity },
    ]),
    [undefined, undefined, undefined],
  );
});

Deno.test("RateEstimator.end() counts the seconds moving, when the fetch waited for approval and the link", () => {
  const rates = new RateEstimator(10 * MB);
  rates.begin(0, 30, 0.5); // approved at 30 s; it had waited 0.5 s on the link before
  equal(rates.end(0, 50, 8.5), 12); // 20 s from its start, 8 of them waiting for the link
  equal(rates.end(0, 60, 9), NaN); // forgotten
  equal(rates.end(1, 60, 0), NaN); // never began
});

/** A clock whose time moves only when told, firing the timers that fall due. */
class FakeClock implements Clock {
  #now = 0;
  #timers: { at: number; fire: () => void }[] = [];
  /** The longest sleep ever asked for, milliseconds. */
  longest = 0;
  now(): number {
    return this.#now;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.longest = Math.max(this.longest, ms);
    return new Promise((resolve, reject) => {
      const timer = { at: this.#now + ms, fire: resolve };
      this.#timers.push(timer);
      signal?.addEventListener("abort", () => {
        this.#timers = this.#timers.filter((t) => t !== timer);
        reject(signal.reason);
      }, { once: true });
    });
  }
  /** Advances by `ms` in 1 ms steps, letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    for (let k = 0; k < ms; k++) {
      this.#now += 1;
      const due = this.#timers.filter((t) => t.at <= this.#now);
      this.#timers = this.#timers.filter((t) => t.at > this.#now);
      for (const t of due) t.fire();
      for (let m = 0; m < 5; m++) await Promise.resolve();
    }
  }
}

Deno.test("LinkShaper waits in steps of at most a second, when a debt at a tiny share is huge", async () => {
  const clock = new FakeClock();
  const shaper = new LinkShaper(clock);
  shaper.setShare(0, 1); // 1 byte per second
  let done = false;
  const taking = shaper.link(0).take(20 * MB, new AbortController().signal).then(() => done = true);
  await clock.advance(3000);
  equal(done, false);
  ok(clock.longest <= MAX_WAIT_MS, `a sleep of ${clock.longest} ms`);
  equal(shaper.waited(0), 3); // the wait under way counts
  shaper.setShare(0, 10 * MB); // the debt is paid at the new share: 2 s
  await clock.advance(2100);
  equal(done, true);
  await taking;
});

Deno.test("LinkShaper never lets a fetch run ahead of its share, when shares change", async () => {
  const clock = new FakeClock();
  const shaper = new LinkShaper(clock);
  const signal = new AbortController().signal;
  shaper.setShare(0, 1 * MB);
  const link = shaper.link(0);
  let moved = 0;
  let pausedMs = 0;
  const pump = (async () => {
    while (moved < 3 * MB) {
      await link.take(256 * 1024, signal);
      moved += 256 * 1024;
      // What the link let through is never more than its share allowed while it had one.
      const shared = clock.now() - pausedMs;
      ok(moved <= 1 * MB * (shared / 1000) + 1, `${moved} bytes at ${clock.now()} ms`);
    }
  })();
  await clock.advance(500);
  shaper.setShare(0, 0); // paused: nothing moves, no debt is forgiven on resuming
  const paused = moved;
  await clock.advance(500);
  equal(moved, paused);
  pausedMs = 500;
  shaper.setShare(0, 1 * MB);
  await clock.advance(5000);
  await pump;
  ok(moved >= 3 * MB);
});
