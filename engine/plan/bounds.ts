/**
 * Lower bounds of TTR and BTN (contract revision 2): the times no schedule can beat, from the
 * graph alone. `analyse` in `graph.ts` reports them; the property tests check them against the
 * contract read literally and against every strategy.
 *
 * @module
 */
import { FETCH, type Graph } from "./graph_types.ts";

/**
 * Whether lazy fetch `i` must be home for `target` to be done: always for BTN; for TTR (`ttr`),
 * only when it carries a milestone itself (otherwise the milestones need it attached only).
 */
function homeCounts(g: Graph, i: number, ttr: boolean): boolean {
  return !ttr || g.milestone[i]! >= 0;
}

/**
 * For every step of `target`, the time from its start to the end of the target along its longest
 * chain (0 outside the target), with the durations `duration` (the graph's by default). A lazy
 * fetch (revision 5) lets its dependents start at once (its attach time counts as 0 here, so the
 * bound stays true): its chain is the longer of its own duration (when it must be home for the
 * target, see `ttr`) and its dependents' chains.
 */
export function bottomLevels(
  g: Graph,
  target: Uint8Array,
  duration: ArrayLike<number> = g.duration,
  ttr = false,
): Float64Array {
  const { n, order, depStart, depList } = g;
  const bl = new Float64Array(n);
  for (let o = n - 1; o >= 0; o--) {
    const i = order[o]!;
    if (!target[i]) continue;
    let after = 0;
    for (let k = depStart[i]!; k < depStart[i + 1]!; k++) {
      const d = depList[k]!;
      if (target[d]) after = Math.max(after, bl[d]!);
    }
    bl[i] = g.lazy?.[i]
      ? Math.max(after, homeCounts(g, i, ttr) ? duration[i]! : 0)
      : duration[i]! + after;
  }
  return bl;
}

/**
 * The time no schedule can finish `target` before (contract revision 2): the larger of
 *
 * - (a) its critical path, every fetch alone on the link, and
 * - (b) for every threshold `t`: the run steps `s` of the target whose longest chain to its end,
 *   from the start of `s` (`tail(s)`), is at least `t` cannot start before every byte they
 *   transitively need has crossed the link, so the target ends no sooner than those bytes over
 *   the bandwidth plus `t`; and, the target being done only when all its data is home, all its
 *   bytes over the bandwidth.
 *
 * Fetches marked `local` cross no link: they count in (a) at their own rate, not in (b). `home`
 * gives the bytes of each fetch already home (a resumed run): they count as crossed.
 * O(steps + needs) but for one sort of the target's run steps.
 */
export function lowerBound(
  g: Graph,
  target: Uint8Array,
  home?: ArrayLike<number>,
  ttr = false,
): number {
  const cross = crossing(g, home);
  if (!home) return boundOf(g, target, cross, bottomLevels(g, target, g.duration, ttr), ttr);
  const duration = Float64Array.from(g.duration);
  for (let i = 0; i < g.n; i++) {
    if (g.kind[i] === FETCH && g.size[i]! > 0) {
      duration[i] = g.duration[i]! * Math.max(0, g.size[i]! - (home[i] ?? 0)) / g.size[i]!;
    }
  }
  return boundOf(g, target, cross, bottomLevels(g, target, duration, ttr), ttr);
}

/** Bytes each fetch must still move over the link (0 for local fetches and run steps). */
export function crossing(g: Graph, home?: ArrayLike<number>): Float64Array {
  const cross = new Float64Array(g.n);
  for (let i = 0; i < g.n; i++) {
    if (g.kind[i] === FETCH && !g.local[i]) {
      cross[i] = Math.max(0, g.size[i]! - (home?.[i] ?? 0));
    }
  }
  return cross;
}

/**
 * {@link lowerBound} of `target`, given the bytes to cross and the tails of its steps. A lazy
 * fetch's bytes never hold back the steps that need it (they read on demand); they count in
 * all the target's bytes when it must be home (BTN; TTR when it carries a milestone: `ttr`).
 */
export function boundOf(
  g: Graph,
  target: Uint8Array,
  cross: Float64Array,
  tail: Float64Array,
  ttr = false,
): number {
  const { n, kind, needStart, needList } = g;
  let bound = 0, all = 0, count = 0;
  const runs = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (!target[i]) continue;
    bound = Math.max(bound, tail[i]!); // (a): the longest chain starts somewhere
    if (kind[i] !== FETCH) runs[count++] = i;
    else if (!g.lazy?.[i] || homeCounts(g, i, ttr)) all += cross[i]!;
  }
  bound = Math.max(bound, all / g.bandwidth);
  // (b), thresholds from the largest tail down: the set of bytes needed only grows, so each step
  // is walked once.
  const byTail = runs.subarray(0, count).sort((a, b) => tail[b]! - tail[a]!);
  const seen = new Uint8Array(n);
  const stack: number[] = [];
  let bytes = 0;
  for (const s of byTail) {
    if (!seen[s]) {
      seen[s] = 1;
      stack.push(s);
      while (stack.length) {
        const j = stack.pop()!;
        for (let k = needStart[j]!; k < needStart[j + 1]!; k++) {
          const a = needList[k]!;
          if (seen[a]) continue;
          seen[a] = 1;
          if (!g.lazy?.[a]) bytes += cross[a]!;
          stack.push(a);
        }
      }
    }
    bound = Math.max(bound, bytes / g.bandwidth + tail[s]!);
  }
  return bound;
}
