/**
 * The graph's edges in their compressed form (`needStart`/`needList`, `depStart`/`depList`):
 * building them from the steps' `needs`, reversing them, and ordering the steps so that each
 * comes after what it needs. Used by `buildGraph` (`graph.ts`).
 *
 * @module
 */

/**
 * The needs of every step (`needs[i]`: the ids step `i` needs) as edges: step `i` needs
 * `needList[needStart[i] .. needStart[i + 1])`; `depCount[j]`: how many steps need step `j`.
 */
export function needEdges(
  needs: readonly (readonly string[])[],
  index: ReadonlyMap<string, number>,
): { needStart: Int32Array; needList: Int32Array; depCount: Int32Array } {
  const n = needs.length;
  const needStart = new Int32Array(n + 1);
  let edges = 0;
  for (let i = 0; i < n; i++) {
    needStart[i] = edges;
    edges += needs[i]!.length;
  }
  needStart[n] = edges;
  const needList = new Int32Array(edges);
  const depCount = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    let k = needStart[i]!;
    for (const need of needs[i]!) {
      const j = index.get(need)!;
      needList[k++] = j;
      depCount[j]!++;
    }
  }
  return { needStart, needList, depCount };
}

/**
 * The edges the other way: for each step, the steps that need it (`depCount[j]`: how many need
 * step `j`), in the same compressed form as the needs.
 */
export function dependents(
  needStart: Int32Array,
  needList: Int32Array,
  depCount: Int32Array,
): { depStart: Int32Array; depList: Int32Array } {
  const n = needStart.length - 1;
  const depStart = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) depStart[i + 1] = depStart[i]! + depCount[i]!;
  const fill = depStart.slice(0, n);
  const depList = new Int32Array(needList.length);
  for (let i = 0; i < n; i++) {
    for (let k = needStart[i]!; k < needStart[i + 1]!; k++) depList[fill[needList[k]!]!++] = i;
  }
  return { depStart, depList };
}

/** Kahn's algorithm, smallest index first among equals (stable, readable plans). */
export function topologicalOrder(
  needStart: Int32Array,
  depStart: Int32Array,
  depList: Int32Array,
): Int32Array {
  const n = needStart.length - 1;
  const indeg = new Int32Array(n);
  for (let i = 0; i < n; i++) indeg[i] = needStart[i + 1]! - needStart[i]!;
  const order = new Int32Array(n);
  let head = 0, tail = 0;
  for (let i = 0; i < n; i++) if (indeg[i] === 0) order[tail++] = i;
  while (head < tail) {
    const i = order[head++]!;
    for (let k = depStart[i]!; k < depStart[i + 1]!; k++) {
      const d = depList[k]!;
      if (--indeg[d]! === 0) order[tail++] = d;
    }
  }
  return order;
}
