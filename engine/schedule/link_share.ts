/**
 * The scheduler's link decisions: which fetches may move, in what order they queue for the link,
 * and what share of it each one gets (`share` decisions; a fetch's first share starts it).
 *
 * @module
 */
import { FETCH } from "../plan/graph.ts";
import { isLazy, reserveDemand, startLazy, streamRate } from "./lazy.ts";
import { DONE, PENDING, RUNNING, type RunState } from "./run_state.ts";

/** Whether fetch `f` may move now (lazy: only once demanded, or once every run step ended). */
export function eligible(s: RunState, f: number): boolean {
  if (s.state[f] === DONE || s.aborted && s.state[f] !== RUNNING) return false;
  return s.strategy !== "lazy" || s.demanded[f] === 1 || s.runLeft === 0;
}

/**
 * Lets fetch `f` move. On a limited link it queues in four tiers, service first (revision 2):
 * fetches a milestone needs, demanded then not, then other fetches, demanded then not; by rank
 * within a tier. A fetch that crosses no link (`local`) or an unlimited link is not queued.
 * A lazy fetch starts (is attached) at once; once attached, its stream queues as a prefetch
 * nobody waits for.
 */
export function admit(s: RunState, f: number): void {
  const lazy = isLazy(s, f);
  if (lazy) {
    startLazy(s, f);
    if (!s.attached[f]) return; // its stream moves once attached (`Scheduler.attached`)
  }
  if (unqueued(s, f)) {
    // Every such fetch goes as fast as its source.
    apply(s, f, streamRate(s, f));
    return;
  }
  const tier = lazy ? 3 : (s.serves[f] ? 0 : 2) + (s.demanded[f] ? 0 : 1);
  s.linkQueue.push(f, tier * s.graph.n + s.rank[f]!);
  s.linkDirty = true;
}

/** Admits every ready fetch that may move (lazy, once the last run step ended). */
export function admitAllFetches(s: RunState): void {
  for (let f = 0; f < s.graph.n; f++) {
    if (s.graph.kind[f] === FETCH && s.ready[f] && eligible(s, f)) admit(s, f);
  }
}

/** The source of fetch `f` was measured to deliver `bytesPerSecond` on its own. */
export function setRate(s: RunState, f: number, bytesPerSecond: number): void {
  if (s.rate[f] === bytesPerSecond) return;
  s.rate[f] = bytesPerSecond;
  if (unqueued(s, f)) {
    if (s.state[f] === RUNNING && (!isLazy(s, f) || s.attached[f])) apply(s, f, streamRate(s, f));
  } else if (s.linkQueue.has(f) || isLazy(s, f)) s.linkDirty = true;
}

/** Lazy fetch `f`'s demanded reads changed (see `lazy.ts`): its stream and the link follow. */
export function demandChanged(s: RunState, f: number): void {
  if (unqueued(s, f)) apply(s, f, streamRate(s, f));
  else s.linkDirty = true;
}

/**
 * Shares the link: fetches in queue order each take what their source can deliver, until the
 * link is full (work-conserving, service first).
 */
export function shareLink(s: RunState): void {
  s.linkDirty = false;
  const q = s.linkQueue;
  const bandwidth = s.graph.bandwidth;
  const next: number[] = [];
  // A host's own bandwidth (revision 3) is shared by the fetches landing there, the same way.
  const { host, hostBandwidth } = s.graph;
  const hostLeft = hostBandwidth && Float64Array.from(hostBandwidth);
  // Reads a service waits on (lazy fetches' demand) come before every fetch.
  let left = reserveDemand(s, bandwidth, hostLeft);
  while (q.size > 0 && (left === Infinity || left > bandwidth * 1e-12)) {
    const f = q.pop();
    next.push(f);
    const h = host?.[f] ?? -1;
    const r = Math.min(streamRate(s, f), left, h >= 0 ? hostLeft![h]! : Infinity);
    left -= r;
    if (h >= 0) hostLeft![h]! -= r;
    apply(s, f, r);
  }
  // Fetches that had a share and no longer do are paused.
  for (const f of s.shared) {
    if (s.state[f] !== RUNNING) s.share[f] = 0;
    else if (q.has(f)) apply(s, f, 0);
  }
  for (const f of next) admit(s, f);
  s.shared = next.filter((f) => s.share[f]! > 0);
}

/** A fetch that takes no place in the link's queue: `local`, or no link and no host cap. */
function unqueued(s: RunState, f: number): boolean {
  const g = s.graph;
  return g.local[f] === 1 || (g.bandwidth === Infinity && (g.host?.[f] ?? -1) < 0);
}

/** Gives fetch `f` the share `rate` (a decision when it changes); a pending fetch starts. */
function apply(s: RunState, f: number, rate: number): void {
  if (s.share[f] === rate) return;
  if (s.state[f] === PENDING && rate > 0) {
    s.state[f] = RUNNING;
    // A gated fetch waits for its approval with its share kept (a slow start, not a slow source).
    const reason = s.gates.reach(f);
    s.out.push(reason ? { type: "wait", step: f, reason } : { type: "start", step: f });
  }
  s.share[f] = rate;
  s.out.push({ type: "share", step: f, rate });
}
