/**
 * The recovery graph in index form, and what the plan derives from it: topological order,
 * levels, critical paths, lower bounds of TTR and BTN, and the priorities the scheduler uses.
 *
 * Durations here are the plan's: a run step takes its estimate, a fetch takes its size over
 * `min(rate, bandwidth)` as if it were alone on the link.
 *
 * @module
 */
import type { Runbook } from "./model.ts";

/** Step kinds as the scheduler sees them. */
export const FETCH = 0;
/** A step that takes a run slot: a run step, or a drill-skipped step standing in for itself. */
export const RUN = 1;

/** The recovery graph, by step index. */
export interface Graph {
  readonly n: number;
  readonly ids: readonly string[];
  /** {@link FETCH} (crosses the link) or {@link RUN} (takes a run slot). */
  readonly kind: Uint8Array;
  /** 1 for steps skipped in a drill: they take their estimate and move no data. */
  readonly skipped: Uint8Array;
  /** `needs` as CSR: the needs of `i` are `needList[needStart[i] .. needStart[i+1]]`. */
  readonly needStart: Int32Array;
  readonly needList: Int32Array;
  /** Dependents as CSR, the reverse of `needs`. */
  readonly depStart: Int32Array;
  readonly depList: Int32Array;
  /** A topological order (needs before dependents). */
  readonly order: Int32Array;
  /** Run steps: the estimate, seconds (NaN when unknown). Fetches: alone on the link. */
  readonly duration: Float64Array;
  /** Fetches: bytes (NaN when unknown). */
  readonly size: Float64Array;
  /** Fetches: how fast the source delivers on its own (Infinity: as fast as the link). */
  readonly rate: Float64Array;
  /** Capacity of the shared link in bytes per second (Infinity: not limited). */
  readonly bandwidth: number;
  /** 1 when the step fails with `on-failure: isolate`. */
  readonly isolate: Uint8Array;
  /** Index into `milestones`, or -1. */
  readonly milestone: Int32Array;
  readonly milestones: readonly string[];
}

/** Estimates that override or fill in the runbook's (from history, or measured in a live run). */
export interface Estimates {
  /** Bytes of a fetch, by id. */
  readonly size?: ReadonlyMap<string, number>;
  /** Seconds a run step takes, by id. */
  readonly duration?: ReadonlyMap<string, number>;
  /** Bytes per second a fetch's source delivers, by id. */
  readonly rate?: ReadonlyMap<string, number>;
}

/**
 * Compiles a loaded runbook into its graph.
 *
 * @example
 * ```ts
 * import { parseRunbook } from "./load.ts";
 * import { buildGraph } from "./graph.ts";
 * const rb = parseRunbook("runbook: 1\nname: x\nsteps:\n  - {id: a, run: 'true', estimate: 1s}\n  - {id: b, needs: [a], run: 'true', estimate: 2s}\n", "x.yaml");
 * console.assert(buildGraph(rb).order.join() === "0,1");
 * ```
 */
export function buildGraph(runbook: Runbook, estimates: Estimates = {}): Graph {
  const steps = runbook.steps;
  const n = steps.length;
  const index = new Map<string, number>();
  steps.forEach((s, i) => index.set(s.id, i));
  const kind = new Uint8Array(n), skipped = new Uint8Array(n), isolate = new Uint8Array(n);
  const duration = new Float64Array(n), size = new Float64Array(n).fill(NaN);
  const rate = new Float64Array(n).fill(Infinity), milestone = new Int32Array(n).fill(-1);
  const milestones: string[] = [];
  const needStart = new Int32Array(n + 1);
  let edges = 0;
  for (let i = 0; i < n; i++) {
    needStart[i] = edges;
    edges += steps[i]!.needs.length;
  }
  needStart[n] = edges;
  const needList = new Int32Array(edges);
  const depCount = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    const s = steps[i]!;
    let k = needStart[i]!;
    for (const need of s.needs) {
      const j = index.get(need)!;
      needList[k++] = j;
      depCount[j]!++;
    }
    const est = estimates.duration?.get(s.id) ?? s.estimate ?? NaN;
    if (s.kind === "fetch" && !s.skip) {
      kind[i] = FETCH;
      size[i] = estimates.size?.get(s.id) ?? s.size ?? NaN;
      const r = estimates.rate?.get(s.id) ?? s.rate ??
        (Number.isFinite(est) && est > 0 ? size[i]! / est : Infinity);
      rate[i] = r;
      duration[i] = size[i]! / Math.min(r, runbook.bandwidth);
    } else {
      kind[i] = RUN;
      duration[i] = s.skip ? (s.estimate ?? 0) : est;
    }
    skipped[i] = s.skip ? 1 : 0;
    isolate[i] = s.onFailure === "isolate" ? 1 : 0;
    if (s.milestone !== undefined) {
      let m = milestones.indexOf(s.milestone);
      if (m < 0) m = milestones.push(s.milestone) - 1;
      milestone[i] = m;
    }
  }
  const depStart = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) depStart[i + 1] = depStart[i]! + depCount[i]!;
  const fill = depStart.slice(0, n);
  const depList = new Int32Array(edges);
  for (let i = 0; i < n; i++) {
    for (let k = needStart[i]!; k < needStart[i + 1]!; k++) depList[fill[needList[k]!]!++] = i;
  }
  // Kahn's algorithm, smallest index first among equals (stable, readable plans).
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
  return {
    n,
    ids: steps.map((s) => s.id),
    kind,
    skipped,
    needStart,
    needList,
    depStart,
    depList,
    order,
    duration,
    size,
    rate,
    bandwidth: runbook.bandwidth,
    isolate,
    milestone,
    milestones,
  };
}

/** What the plan knows before anything runs. */
export interface Analysis {
  /** Steps by level: level 0 needs nothing, level k needs something of level k-1. */
  readonly levels: number[][];
  /** 1 for the steps TTR waits for: milestone steps and what they need (all, with none). */
  readonly ttrTarget: Uint8Array;
  /** Critical paths (step indexes) to TTR and to BTN, every fetch alone on the link. */
  readonly criticalPath: { readonly ttr: number[]; readonly btn: number[] };
  /** TTR and BTN that no schedule can beat. */
  readonly lowerBound: { readonly ttr: number; readonly btn: number };
  /** Scheduler priority of each step: lower goes first (see the README's policy). */
  readonly rank: Float64Array;
}

/**
 * Analyses a graph whose durations are all known.
 *
 * The lower bound of a target (TTR: the milestone steps; BTN: every step) is the larger of
 * (a) its critical path with every fetch alone on the link and (b) all bytes the target needs
 * over the link plus the shortest run-step chain that must follow the last fetch to land.
 */
export function analyse(g: Graph): Analysis {
  const { n, order, needStart, needList, duration, kind } = g;
  const level = new Int32Array(n);
  const eft = new Float64Array(n);
  const via = new Int32Array(n).fill(-1);
  for (const i of order) {
    let start = 0, lv = 0;
    for (let k = needStart[i]!; k < needStart[i + 1]!; k++) {
      const j = needList[k]!;
      if (via[i]! < 0 || eft[j]! > start) {
        via[i] = j;
        start = eft[j]!;
      }
      lv = Math.max(lv, level[j]! + 1);
    }
    level[i] = lv;
    eft[i] = start + duration[i]!;
  }
  const levels: number[][] = [];
  for (let i = 0; i < n; i++) (levels[level[i]!] ??= []).push(i);

  const hasMilestones = g.milestone.some((m) => m >= 0);
  const ttrTarget = new Uint8Array(n);
  if (!hasMilestones) ttrTarget.fill(1);
  else {
    for (let o = n - 1; o >= 0; o--) {
      const i = order[o]!;
      if (g.milestone[i]! >= 0) ttrTarget[i] = 1;
      if (!ttrTarget[i]) continue;
      for (let k = needStart[i]!; k < needStart[i + 1]!; k++) ttrTarget[needList[k]!] = 1;
    }
  }
  const all = new Uint8Array(n).fill(1);
  const ends = (target: Uint8Array, sinksOnly: boolean) => {
    let best = -1;
    for (let i = 0; i < n; i++) {
      if (!target[i] || (sinksOnly && g.milestone[i]! < 0)) continue;
      if (best < 0 || eft[i]! > eft[best]!) best = i;
    }
    return best;
  };
  const pathTo = (end: number) => {
    const path: number[] = [];
    for (let i = end; i >= 0; i = via[i]!) path.push(i);
    return path.reverse();
  };
  const ttrEnd = ends(ttrTarget, hasMilestones), btnEnd = ends(all, false);
  const cpTtr = ttrEnd < 0 ? 0 : eft[ttrEnd]!, cpBtn = btnEnd < 0 ? 0 : eft[btnEnd]!;

  const blTtr = bottomLevels(g, hasMilestones ? ttrTarget : all);
  const blBtn = hasMilestones ? bottomLevels(g, all) : blTtr;

  const bytesBound = (target: Uint8Array) => {
    const after = tails(g, target);
    let bytes = 0, tail = Infinity, fetches = 0;
    for (let i = 0; i < n; i++) {
      if (!target[i] || kind[i] !== FETCH) continue;
      fetches++;
      bytes += g.size[i]!;
      // Run steps that must follow this fetch: its longest run-only chain to the target.
      tail = Math.min(tail, after[i]!);
    }
    return fetches === 0 ? 0 : bytes / g.bandwidth + tail;
  };
  const lowerBound = {
    ttr: Math.max(cpTtr, bytesBound(hasMilestones ? ttrTarget : all)),
    btn: Math.max(cpBtn, bytesBound(all)),
  };

  // Priorities: TTR work first, then work some run step needs, then data nobody waits for;
  // within a class, by the latest finish that does not delay the target (earliest first).
  const neededByRun = new Uint8Array(n);
  for (let o = n - 1; o >= 0; o--) {
    const i = order[o]!;
    if (kind[i] === RUN || neededByRun[i]) {
      for (let k = needStart[i]!; k < needStart[i + 1]!; k++) neededByRun[needList[k]!] = 1;
    }
  }
  const keyClass = new Uint8Array(n), keyTime = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const ttr = ttrTarget[i] === 1;
    keyClass[i] = ttr ? 0 : kind[i] === RUN || neededByRun[i] ? 1 : 2;
    // Latest finish (fetches) or latest start (run steps) against the class's target.
    const lft = ttr ? cpTtr - blTtr[i]! + duration[i]! : cpBtn - blBtn[i]! + duration[i]!;
    // A source slower than the link cannot catch up later: it must start earlier by the time
    // it takes beyond what the link alone would need.
    const excess = kind[i] === FETCH && Number.isFinite(g.bandwidth)
      ? duration[i]! - g.size[i]! / g.bandwidth
      : 0;
    keyTime[i] = kind[i] === FETCH ? lft - excess : lft - duration[i]!;
  }
  const byKey = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
    keyClass[a]! - keyClass[b]! || keyTime[a]! - keyTime[b]! ||
    (g.size[a]! || 0) - (g.size[b]! || 0) || a - b
  );
  const rank = new Float64Array(n);
  byKey.forEach((i, r) => (rank[i] = r));
  return {
    levels,
    ttrTarget,
    criticalPath: { ttr: ttrEnd < 0 ? [] : pathTo(ttrEnd), btn: btnEnd < 0 ? [] : pathTo(btnEnd) },
    lowerBound,
    rank,
  };
}

/**
 * For every step of `target`, the time from its start to the end of the target along its longest
 * chain (0 outside the target).
 */
export function bottomLevels(g: Graph, target: Uint8Array): Float64Array {
  const { n, order, depStart, depList, duration } = g;
  const bl = new Float64Array(n);
  for (let o = n - 1; o >= 0; o--) {
    const i = order[o]!;
    if (!target[i]) continue;
    let after = 0;
    for (let k = depStart[i]!; k < depStart[i + 1]!; k++) {
      const d = depList[k]!;
      if (target[d]) after = Math.max(after, bl[d]!);
    }
    bl[i] = duration[i]! + after;
  }
  return bl;
}

/** For every step, the longest run-step time that must follow its end within `target`. */
function tails(g: Graph, target: Uint8Array): Float64Array {
  const t = new Float64Array(g.n);
  for (let o = g.n - 1; o >= 0; o--) {
    const i = g.order[o]!;
    if (!target[i]) continue;
    let after = 0;
    for (let k = g.depStart[i]!; k < g.depStart[i + 1]!; k++) {
      const d = g.depList[k]!;
      if (!target[d]) continue;
      after = Math.max(after, t[d]! + (g.kind[d] === RUN ? g.duration[d]! : 0));
    }
    t[i] = after;
  }
  return t;
}
