/**
 * Property tests of the simulator over a few hundred seeded random runbooks: whatever the graph,
 * no strategy beats the lower bounds, every step finishes after what it needs, frozen time is
 * only on run steps, each strategy keeps its promise, bytes add up, and the same runbook always
 * gives the same report.
 *
 * @module
 */
import assert from "node:assert/strict";
import { FETCH } from "../engine/graph.ts";
import type { Runbook } from "../engine/model.ts";
import type { Report } from "../engine/report.ts";
import { STRATEGIES } from "../engine/schema.ts";
import { planGraph, simulate } from "../engine/simulate.ts";
import { bigRunbook, randomRunbook, randomRunbookParsed } from "./gen.ts";
import { parseRunbook } from "../engine/load.ts";
import { tightTtrBound } from "./bench/tight_bound.ts";

const SEEDS = Array.from({ length: 300 }, (_, i) => i);
const TOLERANCE = 1e-6;

/** Every random runbook, parsed once, with its report for each strategy. */
const cases = SEEDS.map((seed) => {
  const runbook = randomRunbookParsed(seed);
  const reports = Object.fromEntries(
    STRATEGIES.map((s) => [s, simulate(runbook, { strategy: s, run: "r" })]),
  ) as Record<(typeof STRATEGIES)[number], Report>;
  return { seed, runbook, reports };
});

function where(seed: number, strategy: string): string {
  return `seed ${seed}, ${strategy}`;
}

/** End time of each step by id. */
function ends(report: Report): Map<string, number> {
  return new Map(report.steps.map((s) => [s.id, s.end_s!]));
}

Deno.test("simulate() never beats the lower bound, for random runbooks", () => {
  for (const { seed, reports } of cases) {
    for (const [strategy, r] of Object.entries(reports)) {
      const at = where(seed, strategy);
      assert.ok(r.ttr_s !== null && r.btn_s !== null, at);
      assert.ok(r.ttr_s >= r.lower_bound.ttr_s * (1 - TOLERANCE), `${at}: TTR ${r.ttr_s}`);
      assert.ok(r.btn_s >= r.lower_bound.btn_s * (1 - TOLERANCE), `${at}: BTN ${r.btn_s}`);
      assert.ok(r.ttr_s <= r.btn_s, `${at}: TTR after BTN`);
    }
  }
});

Deno.test("tightTtrBound() is never beaten either, and never below the spec's bound", () => {
  for (const { seed, runbook, reports } of cases) {
    const { graph, analysis } = planGraph(runbook);
    const tight = tightTtrBound(graph, analysis);
    assert.ok(tight >= analysis.lowerBound.ttr, `seed ${seed}`);
    for (const [strategy, r] of Object.entries(reports)) {
      // Reports round to the millisecond.
      const least = tight * (1 - TOLERANCE) - 0.0005;
      assert.ok(r.ttr_s! >= least, `${where(seed, strategy)}: TTR ${r.ttr_s} < ${tight}`);
    }
  }
});

Deno.test("simulate() never beats the lower bound, for a 4,000-step runbook", () => {
  const runbook = parseRunbook(bigRunbook(2000, 2000), "big.yaml");
  for (const strategy of STRATEGIES) {
    const r = simulate(runbook, { strategy });
    assert.ok(r.steps.every((s) => s.state === "done"), strategy);
    assert.ok(r.ttr_s! >= r.lower_bound.ttr_s * (1 - TOLERANCE), strategy);
    assert.ok(r.btn_s! >= r.lower_bound.btn_s * (1 - TOLERANCE), strategy);
  }
});

Deno.test("simulate() finishes every step, each after all it needs, for random runbooks", () => {
  for (const { seed, runbook, reports } of cases) {
    for (const [strategy, r] of Object.entries(reports)) {
      const at = where(seed, strategy);
      const end = ends(r);
      r.steps.forEach((s, i) => {
        assert.equal(s.state, "done", `${at}: ${s.id}`);
        assert.ok(s.start_s !== null && s.end_s !== null && s.start_s <= s.end_s, `${at}: ${s.id}`);
        for (const need of runbook.steps[i]!.needs) {
          assert.ok(s.start_s >= end.get(need)!, `${at}: ${s.id} starts before ${need} ends`);
        }
      });
      assert.equal(r.outcome === "failed" || r.outcome === "cancelled", false, at);
    }
  }
});

Deno.test("simulate() freezes only run steps, for random runbooks", () => {
  for (const { seed, reports } of cases) {
    for (const [strategy, r] of Object.entries(reports)) {
      for (const s of r.steps) {
        assert.ok(s.frozen_s >= 0, `${where(seed, strategy)}: ${s.id}`);
        if (s.kind === "fetch") assert.equal(s.frozen_s, 0, `${where(seed, strategy)}: ${s.id}`);
      }
    }
  }
});

/** Run steps that no fetch waits for, directly or not: serial holds them for every fetch. */
function gatedRuns(runbook: Runbook): Set<string> {
  const { graph: g } = planGraph(runbook);
  const feeds = new Uint8Array(g.n);
  for (let o = g.n - 1; o >= 0; o--) {
    const i = g.order[o]!;
    for (let k = g.depStart[i]!; k < g.depStart[i + 1]!; k++) {
      const d = g.depList[k]!;
      if (g.kind[d] === FETCH || feeds[d]) feeds[i] = 1;
    }
  }
  return new Set(g.ids.filter((_, i) => g.kind[i] !== FETCH && !feeds[i]));
}

Deno.test("serial starts no run step before every fetch is home, for random runbooks", () => {
  for (const { seed, runbook, reports: { serial: r } } of cases) {
    const gated = gatedRuns(runbook);
    const home = Math.max(0, ...r.steps.filter((s) => s.kind === "fetch").map((s) => s.end_s!));
    for (const s of r.steps) {
      if (!gated.has(s.id)) continue;
      assert.ok(s.start_s! >= home, `seed ${seed}: ${s.id} starts at ${s.start_s} < ${home}`);
    }
  }
});

Deno.test("lazy fetches undemanded data only after the last run step, for random runbooks", () => {
  for (const { seed, reports: { lazy: r } } of cases) {
    const lastRun = Math.max(0, ...r.steps.filter((s) => s.kind === "run").map((s) => s.end_s!));
    for (const s of r.steps) {
      if (s.kind !== "fetch" || s.demanded) continue;
      assert.ok(s.start_s! >= lastRun, `seed ${seed}: ${s.id} starts at ${s.start_s} < ${lastRun}`);
    }
  }
});

Deno.test("simulate() accounts for every byte as on demand or prefetched, for random runbooks", () => {
  for (const { seed, runbook, reports } of cases) {
    const total = runbook.steps.reduce((t, s) => t + (s.kind === "fetch" ? s.size! : 0), 0);
    for (const [strategy, r] of Object.entries(reports)) {
      const at = where(seed, strategy);
      assert.equal(r.bytes.total, total, at);
      assert.equal(r.bytes.on_demand + r.bytes.prefetched, r.bytes.total, at);
      assert.ok(r.bytes.on_demand >= 0 && r.bytes.prefetched >= 0, at);
      for (const s of r.steps) {
        if (s.kind !== "fetch") continue;
        assert.ok(s.prefetched_bytes! >= 0 && s.prefetched_bytes! <= s.bytes!, `${at}: ${s.id}`);
        if (!s.demanded) assert.equal(s.prefetched_bytes, s.bytes, `${at}: ${s.id}`);
      }
    }
  }
});

Deno.test("simulate() is deterministic: the same seed gives the same report", () => {
  for (const seed of SEEDS.slice(0, 100)) {
    assert.equal(randomRunbook(seed), randomRunbook(seed));
    const again = randomRunbookParsed(seed);
    for (const strategy of STRATEGIES) {
      const a = simulate(again, { strategy }), b = cases[seed]!.reports[strategy];
      const { run: _a, ...restA } = a;
      const { run: _b, ...restB } = b;
      assert.deepEqual(restA, restB, where(seed, strategy));
    }
  }
});
