/**
 * The recovery graph in index form, and what the plan derives from it: topological order,
 * levels, critical paths, lower bounds of TTR and BTN, and the priorities the scheduler uses.
 *
 * Durations here are the plan's: a run step takes its estimate, a fetch takes its size over
 * `min(rate, bandwidth)` as if it were alone on the link.
 *
 * @module
 */
import { bottomLevels, boundOf, crossing, lowerBound } from "./bounds.ts";
import { dependents, needEdges, topologicalOrder } from "./edges.ts";
import { FETCH, type Graph, LAZY_ATTACH_S, RUN } from "./graph_types.ts";
import type { Runbook } from "../runbook/model.ts";
import { stepKind } from "../../steps/kind.ts";

export { bottomLevels, FETCH, type Graph, LAZY_ATTACH_S, lowerBound, RUN };

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
 * import assert from "node:assert/strict";
 * import { parseRunbook } from "../runbook/load.ts";
 * import { buildGraph } from "./graph.ts";
 * const rb = parseRunbook("runbook: 1\nname: x\nsteps:\n  - {id: a, run: 'true', estimate: 1s}\n  - {id: b, needs: [a], run: 'true', estimate: 2s}\n", "x.yaml");
 * assert.equal(buildGraph(rb).order.join(), "0,1");
 * ```
 */
export function buildGraph(runbook: Runbook, estimates: Estimates = {}): Graph {
  const steps = runbook.steps;
  const n = steps.length;
  const index = new Map<string, number>();
  steps.forEach((s, i) => index.set(s.id, i));
  const kind = new Uint8Array(n), skipped = new Uint8Array(n), isolate = new Uint8Array(n);
  const local = new Uint8Array(n), gated = new Uint8Array(n), lazy = new Uint8Array(n);
  const { host, hostBandwidth, hostIndex } = cappedHosts(runbook, n);
  const duration = new Float64Array(n), size = new Float64Array(n).fill(NaN);
  const rate = new Float64Array(n).fill(Infinity), milestone = new Int32Array(n).fill(-1);
  const milestones: string[] = [];
  const { needStart, needList, depCount } = needEdges(steps.map((s) => s.needs), index);
  for (let i = 0; i < n; i++) {
    const s = steps[i]!;
    const est = estimates.duration?.get(s.id) ?? s.estimate ?? NaN;
    // What the step's kind says it is: data that moves (over the link unless local), or time.
    const figures = stepKind(s.kind).figures(s);
    if (figures.type === "data" && !s.skip) {
      kind[i] = FETCH;
      size[i] = estimates.size?.get(s.id) ?? figures.bytes ?? NaN;
      const r = hostCap(
        runbook,
        s.on,
        figures.local,
        estimates.rate?.get(s.id) ?? figures.rate ??
          (Number.isFinite(est) && est > 0 ? size[i]! / est : Infinity),
      );
      rate[i] = r;
      local[i] = figures.local ? 1 : 0;
      lazy[i] = figures.lazy ? 1 : 0;
      if (!figures.local && s.on !== undefined) host[i] = hostIndex.get(s.on) ?? -1;
      duration[i] = size[i]! / (figures.local ? r : Math.min(r, runbook.bandwidth));
    } else {
      kind[i] = RUN;
      duration[i] = s.skip ? (s.estimate ?? 0) : est;
    }
    skipped[i] = s.skip ? 1 : 0;
    isolate[i] = s.onFailure === "isolate" ? 1 : 0;
    gated[i] = s.approval !== undefined && !s.skip ? 1 : 0;
    if (s.milestone !== undefined) {
      let m = milestones.indexOf(s.milestone);
      if (m < 0) m = milestones.push(s.milestone) - 1;
      milestone[i] = m;
    }
  }
  const { depStart, depList } = dependents(needStart, needList, depCount);
  const order = topologicalOrder(needStart, depStart, depList);
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
    local,
    ...(lazy.includes(1) ? { lazy } : {}),
    bandwidth: runbook.bandwidth,
    ...(hostBandwidth.length ? { host, hostBandwidth } : {}),
    isolate,
    gated,
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
  /** TTR and BTN that no schedule can beat (see {@link lowerBound}). */
  readonly lowerBound: { readonly ttr: number; readonly btn: number };
  /** Scheduler priority of each step: lower goes first (see the README's policy). */
  readonly rank: Float64Array;
}

/** What {@link analyse} may take into account besides the graph. */
export interface AnalyseOptions {
  /**
   * Bytes of each fetch already home, by step index (a resumed run): they count as crossed,
   * in the lower bounds only.
   */
  readonly home?: ArrayLike<number>;
}

/**
 * Analyses a graph whose durations are all known: levels, critical paths, the lower bounds of
 * TTR (the milestone steps and what they need) and BTN (every step), and the scheduler's ranks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunbook } from "../runbook/load.ts";
 * import { analyse, buildGraph } from "./graph.ts";
 * const g = buildGraph(parseRunbook(`runbook: 1
 * name: x
 * bandwidth: 100MB/s
 * steps:
 *   - { id: f, fetch: { from: /b/f, to: ./f, size: 200MB } }
 *   - { id: s, needs: [f], run: "true", estimate: 10s, milestone: up }
 * `, "x.yaml"));
 * assert.deepEqual(analyse(g).lowerBound, { ttr: 12, btn: 12 });
 * // Resumed with 150MB of f already home: 50MB left to cross.
 * assert.equal(analyse(g, { home: [150e6, 0] }).lowerBound.ttr, 10.5);
 * ```
 */
export function analyse(g: Graph, options: AnalyseOptions = {}): Analysis {
  const { n, order, needStart, needList, duration } = g;
  const level = new Int32Array(n);
  const eft = new Float64Array(n);
  const via = new Int32Array(n).fill(-1);
  // A lazy fetch lets the steps that need it start once attached, not once home.
  const readyAt = (j: number) => g.lazy?.[j] ? eft[j]! - duration[j]! + LAZY_ATTACH_S : eft[j]!;
  for (const i of order) {
    let start = 0, lv = 0;
    for (let k = needStart[i]!; k < needStart[i + 1]!; k++) {
      const j = needList[k]!;
      if (via[i]! < 0 || readyAt(j) > start) {
        via[i] = j;
        start = readyAt(j);
      }
      lv = Math.max(lv, level[j]! + 1);
    }
    level[i] = lv;
    eft[i] = start + duration[i]!;
  }
  const levels: number[][] = [];
  for (let i = 0; i < n; i++) (levels[level[i]!] ??= []).push(i);

  const hasMilestones = g.milestone.some((m) => m >= 0);
  const ttrTarget = milestoneTarget(g);
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
  const cp = { ttr: ttrEnd < 0 ? 0 : eft[ttrEnd]!, btn: btnEnd < 0 ? 0 : eft[btnEnd]! };
  const blTtr = bottomLevels(g, ttrTarget, g.duration, hasMilestones);
  const blBtn = hasMilestones ? bottomLevels(g, all) : blTtr;
  // Without bytes already home, the bounds' tails are the bottom levels just computed.
  const { home } = options;
  const btn = home ? lowerBound(g, all, home) : boundOf(g, all, crossing(g), blBtn);
  const ttr = !hasMilestones
    ? btn
    : home
    ? lowerBound(g, ttrTarget, home, true)
    : boundOf(g, ttrTarget, crossing(g), blTtr, true);
  return {
    levels,
    ttrTarget,
    criticalPath: { ttr: ttrEnd < 0 ? [] : pathTo(ttrEnd), btn: btnEnd < 0 ? [] : pathTo(btnEnd) },
    lowerBound: { ttr, btn },
    rank: ranks(g, ttrTarget, cp, blTtr, blBtn),
  };
}

/**
 * The lower bounds of TTR and BTN alone (what {@link analyse} gives as `lowerBound`), with the
 * bytes of each fetch already `home`: a live run measures them each second, without ranking.
 */
export function lowerBounds(g: Graph, home: ArrayLike<number>): { ttr: number; btn: number } {
  const btn = lowerBound(g, new Uint8Array(g.n).fill(1), home);
  const hasMilestones = g.milestone.some((m) => m >= 0);
  return { ttr: hasMilestones ? lowerBound(g, milestoneTarget(g), home, true) : btn, btn };
}

/** 1 for the milestone steps and everything they need, directly or not (all, with none). */
export function milestoneTarget(g: Graph): Uint8Array {
  const { n, order, needStart, needList } = g;
  const target = new Uint8Array(n);
  if (!g.milestone.some((m) => m >= 0)) return target.fill(1);
  for (let o = n - 1; o >= 0; o--) {
    const i = order[o]!;
    if (g.milestone[i]! >= 0) target[i] = 1;
    if (!target[i]) continue;
    for (let k = needStart[i]!; k < needStart[i + 1]!; k++) target[needList[k]!] = 1;
  }
  return target;
}

/**
 * Priorities: TTR work first, then work some run step needs, then data nobody waits for; within
 * a class, by the latest finish that does not delay the target (earliest first).
 */
function ranks(
  g: Graph,
  ttrTarget: Uint8Array,
  cp: { readonly ttr: number; readonly btn: number },
  blTtr: Float64Array,
  blBtn: Float64Array,
): Float64Array {
  const { n, order, needStart, needList, duration, kind } = g;
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
    const lft = ttr ? cp.ttr - blTtr[i]! + duration[i]! : cp.btn - blBtn[i]! + duration[i]!;
    // A source slower than the link cannot catch up later: it must start earlier by the time
    // it takes beyond what the link alone would need.
    const excess = kind[i] === FETCH && !g.local[i] && Number.isFinite(g.bandwidth)
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
  return rank;
}

/**
 * Estimates for ranking steps in a live run: the runbook's, then history, then a default where
 * nothing is known (1 s for a run step, 0 bytes for a fetch), so the plan can always be analysed.
 */
export function fillGaps(runbook: Runbook, estimates: Estimates = {}): Estimates {
  const duration = new Map(estimates.duration), size = new Map(estimates.size);
  for (const s of runbook.steps) {
    const f = stepKind(s.kind).figures(s);
    if (f.type === "time" && f.seconds === undefined && !duration.has(s.id)) duration.set(s.id, 1);
    if (f.type === "data" && f.bytes === undefined && !size.has(s.id)) size.set(s.id, 0);
  }
  return { ...estimates, duration, size };
}

/** The hosts with a `bandwidth` of their own, indexed; `host` filled with -1 for `n` steps. */
function cappedHosts(runbook: Runbook, n: number) {
  const capped = Object.entries(runbook.hosts)
    .filter(([, h]) => h.bandwidth !== undefined && Number.isFinite(h.bandwidth));
  return {
    host: new Int32Array(n).fill(-1),
    hostBandwidth: Float64Array.from(capped, ([, h]) => h.bandwidth!),
    hostIndex: new Map(capped.map(([name], k) => [name, k])),
  };
}

/**
 * How fast a fetch landing on host `on` can go, its source delivering `rate` on its own: no
 * faster than the host's own `bandwidth` (revision 3), unless it crosses no link (`local`).
 *
 * Each fetch alone is capped so (its duration in the plan, the critical path, the bounds); the
 * scheduler also shares each capped host's bandwidth among the fetches landing there (the graph's
 * `host`, `hostBandwidth`), and the live engine paces them together to it (`live/host_link.ts`).
 * The lower bounds do not count a host's bytes over its own bandwidth (they stay true, looser).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunbook } from "../runbook/load.ts";
 * import { hostCap } from "./graph.ts";
 * const rb = parseRunbook(
 *   "runbook: 1\nname: x\nhosts: { web1: { ssh: web1, bandwidth: 1MB/s } }\n" +
 *     "steps:\n  - { id: a, run: 'true' }\n",
 *   "x.yaml",
 * );
 * assert.equal(hostCap(rb, "web1", false, 5e6), 1e6);
 * assert.equal(hostCap(rb, "web1", true, 5e6), 5e6);
 * assert.equal(hostCap(rb, undefined, false, 5e6), 5e6);
 * ```
 */
export function hostCap(
  runbook: Runbook,
  on: string | undefined,
  local: boolean,
  rate: number,
): number {
  const own = on === undefined || local ? undefined : runbook.hosts[on]?.bandwidth;
  return own === undefined ? rate : Math.min(rate, own);
}
