/**
 * Lazy fetches in the scheduler (contract revision 5). A lazy fetch has two moments: it is
 * **attached** (its file can be opened: the steps that need it may start) and **home** (every
 * byte is local: it is done, and BTN waits for it).
 *
 * - It starts (a `start` decision: attach it) as soon as it may move, without waiting for a
 *   share of the link: attaching moves next to nothing. Its stream has no share until attached.
 * - Once attached, its background stream queues for the link as a prefetch: below every fetch a
 *   milestone or a frozen step still waits for, since nothing waits for the stream but BTN. Its
 *   `share` is the stream's speed (0: paused).
 * - Reads of parts not yet home (demand, measured by the executor and reported with
 *   `Scheduler.setDemandRate`) come first: before any fetch is given a share, the link (and the
 *   fetch's host and source) is reserved for {@link DEMAND_HEADROOM} times the demand, so the
 *   stream plus the demand stay within `bandwidth` and reads never queue behind the stream.
 *   While demand is high the stream yields: its share drops, to 0 (paused) when the reservation
 *   takes all it could have.
 *
 * What a live loop does with it (`steps/fetch/lazy/execute.ts` through the hooks of
 * `engine/live/lazy_volumes.ts`): on a lazy fetch's `start`, attach it (the daemons, the stream paused); when `to` can be
 * opened, `Scheduler.attached(i)`; on each `share`, set the stream's speed (0: pause it); each
 * second, feed the fetcher's counters to a `DemandMeter` (`lazy_meter.ts`), its rate to
 * `Scheduler.setDemandRate(i, …)` and its bytes to `Recorder.demandBytes(i, …)`; once the
 * stream completed without error and nothing is left on the backup (`sha256` checked),
 * `Scheduler.home(i)` and `Recorder.complete(i, now, size)`.
 *
 * @module
 */
import { PENDING, RUNNING, type RunState } from "./run_state.ts";

/**
 * How much of the link a lazy fetch's demanded reads hold, as a multiple of their measured rate:
 * the headroom that keeps them from waiting behind the stream (the prototype measured point
 * reads 5-16 ms at p90 with headroom, 25-76 ms with the stream filling the link).
 */
export const DEMAND_HEADROOM = 2;

/** Whether step `f` is a lazy fetch. */
export function isLazy(s: RunState, f: number): boolean {
  return s.graph.lazy?.[f] === 1;
}

/**
 * Starts lazy fetch `f` if it has not started: a `start` decision (attach it), or a `wait` when
 * it has an approval gate. Its stream waits for a share of the link.
 */
export function startLazy(s: RunState, f: number): void {
  if (s.state[f] !== PENDING) return;
  s.state[f] = RUNNING;
  const reason = s.gates.reach(f);
  s.out.push(reason ? { type: "wait", step: f, reason } : { type: "start", step: f });
}

/** The link (bytes per second) lazy fetch `f`'s demanded reads hold now (0 for other steps). */
export function reservedFor(s: RunState, f: number): number {
  if (s.state[f] !== RUNNING) return 0;
  return Math.min(s.rate[f]!, DEMAND_HEADROOM * (s.demandRate[f] ?? 0));
}

/** How fast fetch `f`'s source can still deliver for the stream, after its demanded reads. */
export function streamRate(s: RunState, f: number): number {
  return Math.max(0, s.rate[f]! - reservedFor(s, f));
}

/**
 * Takes the demanded reads of every running lazy fetch off the link before it is shared: off
 * `left` (returned less them) and off the fetch's host in `hostLeft`, when capped.
 */
export function reserveDemand(s: RunState, left: number, hostLeft?: Float64Array): number {
  const host = s.graph.host;
  for (const f of s.lazyList) {
    const r = reservedFor(s, f);
    if (r === 0) continue;
    left = Math.max(0, left - r);
    const h = host?.[f] ?? -1;
    if (h >= 0 && hostLeft) hostLeft[h] = Math.max(0, hostLeft[h]! - r);
  }
  return left;
}

/**
 * Lazy fetch `f`'s demanded reads now move `bytesPerSecond`; false (nothing changes) for a step
 * that is not a running lazy fetch.
 */
export function setDemandRate(s: RunState, f: number, bytesPerSecond: number): boolean {
  if (!isLazy(s, f) || s.state[f] !== RUNNING || !s.attached[f]) return false;
  const rate = Number.isFinite(bytesPerSecond) && bytesPerSecond > 0 ? bytesPerSecond : 0;
  if (s.demandRate[f] === rate) return false;
  s.demandRate[f] = rate;
  return true;
}

/**
 * Lazy fetch `f` is attached: true the first time (the steps that need it may start), false for
 * any other step, a second time, or before it started (waiting for its approval).
 */
export function markAttached(s: RunState, f: number): boolean {
  if (!isLazy(s, f) || s.attached[f] || s.state[f] !== RUNNING) return false;
  if (s.gates.waiting(f) !== undefined) return false; // not started: waits for a person
  s.attached[f] = 1;
  s.out.push({ type: "attached", step: f });
  return true;
}
