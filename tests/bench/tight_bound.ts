/**
 * A TTR lower bound tighter than the spec's, for judging the scheduler only.
 *
 * The spec's bound (b) adds *all* bytes the milestones need to the *shortest* run-step chain
 * after any fetch, so it can sit far below what any schedule reaches: when one long milestone
 * step needs nearly all the data, no schedule starts it before those bytes are home, yet (b)
 * adds the short tail of some other fetch. This bound adds, for every run step TTR waits for,
 * the bytes of the fetches it transitively needs (all must cross the link before it starts) to
 * its own longest chain to a milestone. It is a valid lower bound, so the property test checks
 * that no strategy beats it; reports keep the spec's bound, as the contract defines it.
 *
 * @module
 */
import { bottomLevels, FETCH, type Graph, RUN } from "../../engine/graph.ts";
import type { Analysis } from "../../engine/graph.ts";

/**
 * The larger of the spec's TTR lower bound and the per-step bytes bound described above.
 *
 * @example
 * ```ts
 * import { parseRunbook } from "../../engine/load.ts";
 * import { planGraph } from "../../engine/simulate.ts";
 * import { tightTtrBound } from "./tight_bound.ts";
 * const { graph, analysis } = planGraph(parseRunbook(`runbook: 1
 * name: x
 * bandwidth: 100MB/s
 * steps:
 *   - { id: a, fetch: { from: /b/a, to: ./a, size: 1000MB } }
 *   - { id: b, fetch: { from: /b/b, to: ./b, size: 1000MB } }
 *   - { id: c, fetch: { from: /b/c, to: ./c, size: 1MB } }
 *   - { id: s, needs: [a, b], run: "true", estimate: 100s, milestone: up }
 *   - { id: t, needs: [c], run: "true", estimate: 1s, milestone: up }
 * `, "x.yaml"));
 * // The spec: max(10 + 100, 20.01 + 1) = 110. But s cannot start before a and b are both home.
 * console.assert(analysis.lowerBound.ttr === 110);
 * console.assert(tightTtrBound(graph, analysis) === 120);
 * ```
 */
export function tightTtrBound(g: Graph, analysis: Analysis): number {
  const { n, order, needStart, needList } = g;
  const target = analysis.ttrTarget;
  const words = Math.ceil(n / 32);
  const anc: Uint32Array[] = [];
  for (const i of order) {
    const set = new Uint32Array(words);
    for (let k = needStart[i]!; k < needStart[i + 1]!; k++) {
      const j = needList[k]!;
      set[j >>> 5]! |= 1 << (j & 31);
      for (let w = 0; w < words; w++) set[w]! |= anc[j]![w]!;
    }
    anc[i] = set;
  }
  // bl[i]: from the start of i to the last milestone after it, along its longest chain.
  const bl = bottomLevels(g, target);
  let bound = analysis.lowerBound.ttr;
  for (let i = 0; i < n; i++) {
    if (!target[i] || g.kind[i] !== RUN) continue;
    let bytes = 0;
    for (let j = 0; j < n; j++) {
      if (g.kind[j] === FETCH && (anc[i]![j >>> 5]! >>> (j & 31)) & 1) bytes += g.size[j]!;
    }
    bound = Math.max(bound, bytes / g.bandwidth + bl[i]!);
  }
  return bound;
}
