/**
 * Seeded random runbooks for property tests and benchmarks.
 *
 * {@link randomRunbook} writes a small recovery graph shaped like the real ones: a few to a dozen
 * fetches whose sizes spread over several orders of magnitude, some sources slower than the
 * link, run steps that need earlier run steps and fetches, one or two milestones, and sometimes
 * objectives and a small `parallelism`. {@link bigRunbook} writes a 100,000-step one, fast.
 *
 * @module
 */
import { parseRunbook } from "../engine/runbook/load.ts";
import type { Runbook } from "../engine/runbook/model.ts";

/** The example: f1 (200MB) -> s1 (10s, milestone); f2 (600MB) + s1 -> s2 (20s). */
export const EXAMPLE = `runbook: 1
name: example
bandwidth: 100MB/s
steps:
  - { id: f1, fetch: { from: /b/f1, to: ./f1, size: 200MB } }
  - { id: s1, needs: [f1], run: "true", estimate: 10s, milestone: service }
  - { id: f2, fetch: { from: /b/f2, to: ./f2, size: 600MB } }
  - { id: s2, needs: [f2, s1], run: "true", estimate: 20s }
`;

/**
 * A small, fast, deterministic PRNG (mulberry32): the same seed gives the same numbers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mulberry32 } from "./gen.ts";
 * const a = mulberry32(7), b = mulberry32(7);
 * const x = a();
 * assert.ok(x === b() && x < 1);
 * ```
 */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What {@link randomRunbook} may vary. */
export interface RandomOptions {
  /** Fewest and most fetch steps (default 2..12). */
  fetches?: readonly [number, number];
  /** Fewest and most run steps (default 2..12). */
  runs?: readonly [number, number];
  /** Smallest and largest fetch, bytes, drawn log-uniformly (default 1MB..100GB). */
  sizes?: readonly [number, number];
  /** Shortest and longest run-step estimate, seconds, log-uniformly (default 1s..30m). */
  estimates?: readonly [number, number];
  /**
   * Give 30% of runbooks a `parallelism` of 1 to 3 (default true). The lower bounds ignore
   * `parallelism`, so the schedule-quality benchmark leaves this off by default.
   */
  smallParallelism?: boolean;
  /**
   * The chance that a fetch is `local: true` (default 0). Drawn from a stream of its own, so a
   * seed keeps its shape whatever this is.
   */
  local?: number;
}

/** Links the random runbooks cross, as written and in bytes per second. */
const BANDWIDTHS: Record<string, number> = {
  "100Mbit/s": 12.5e6,
  "1Gbps": 125e6,
  "10Gbps": 1250e6,
  "50MB/s": 50e6,
  "400MB/s": 400e6,
};

/** Bytes written as decimal megabytes, exactly as `parseSize` reads them back. */
function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(3)}MB`;
}

/**
 * A random runbook's YAML, the same for the same seed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { randomRunbook } from "./gen.ts";
 * assert.equal(randomRunbook(1), randomRunbook(1));
 * assert.ok(randomRunbook(1).startsWith("runbook: 1\n"));
 * ```
 */
export function randomRunbook(seed: number, options: RandomOptions = {}): string {
  const rnd = mulberry32(seed);
  const rndLocal = mulberry32(seed ^ 0x10ca1);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const logUniform = (lo: number, hi: number) => lo * Math.pow(hi / lo, rnd());
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const [fLo, fHi] = options.fetches ?? [2, 12];
  const [rLo, rHi] = options.runs ?? [2, 12];
  const [sLo, sHi] = options.sizes ?? [1e6, 100e9];
  const [eLo, eHi] = options.estimates ?? [1, 1800];
  const nFetch = int(fLo, fHi), nRun = int(rLo, rHi);
  const bandwidthText = pick(Object.keys(BANDWIDTHS));
  const bandwidth = BANDWIDTHS[bandwidthText]!;

  interface Gen {
    id: string;
    needs: string[];
    line: string;
  }
  const fetch = (id: string): Gen => {
    let extra = "";
    if (rnd() < 0.3) extra = `, rate: ${(bandwidth * (0.05 + 0.75 * rnd()) / 1e6).toFixed(3)}MB/s`;
    // A local copy without a rate would take no time: give it one, off the main stream.
    if (rndLocal() < (options.local ?? 0)) {
      if (!extra) extra = `, rate: ${(bandwidth * (0.5 + 4 * rndLocal()) / 1e6).toFixed(3)}MB/s`;
      extra += ", local: true";
    }
    const size = mb(Math.max(sLo, logUniform(sLo, sHi)));
    return {
      id,
      needs: [],
      line: `fetch: { from: /backup/${id}, to: ./r/${id}, size: ${size}${extra} }`,
    };
  };
  // Fetches that need nothing, then run steps in order; now and then a fetch that needs a run
  // step (data produced by an earlier step) or another fetch (an index before its data).
  const steps: Gen[] = [];
  const available: Gen[] = [];
  const lateFetches = rnd() < 0.2 ? 1 : 0;
  for (let i = 0; i < nFetch - lateFetches; i++) {
    const f = fetch(`f${i}`);
    if (available.length && rnd() < 0.05) f.needs.push(pick(available).id);
    steps.push(f);
    available.push(f);
  }
  // Now and then one fetch that no run step needs (an archive, say): it stays out of `available`.
  if (rnd() < 0.25 && available.length > 1) available.pop();
  const runs: Gen[] = [];
  let late = nFetch - lateFetches;
  for (let j = 0; j < nRun; j++) {
    const needs = new Set<string>();
    const runNeeds = runs.length ? int(0, Math.min(2, runs.length)) : 0;
    for (let k = 0; k < runNeeds; k++) needs.add(pick(runs).id);
    const fetchNeeds = available.length ? int(0, Math.min(3, available.length)) : 0;
    for (let k = 0; k < fetchNeeds; k++) needs.add(pick(available).id);
    const r: Gen = {
      id: `r${j}`,
      needs: [...needs],
      line: `run: ./step.sh r${j}, estimate: ${logUniform(eLo, eHi).toFixed(1)}s`,
    };
    steps.push(r);
    runs.push(r);
    if (late < nFetch && rnd() < 0.5) {
      const f = fetch(`f${late++}`);
      f.needs.push(r.id);
      steps.push(f);
      available.push(f);
    }
  }
  // Every fetch but the orphan is needed by some run step listed after it.
  const needed = new Set(runs.flatMap((r) => r.needs));
  for (const f of available) {
    if (needed.has(f.id)) continue;
    const after = runs.filter((r) => steps.indexOf(r) > steps.indexOf(f));
    if (after.length) pick(after).needs.push(f.id);
  }
  // Milestones: usually one or two names, each on one or two run steps; sometimes none (TTR = BTN).
  const milestoneNames = rnd() < 0.1 ? [] : rnd() < 0.5 ? ["service"] : ["service", "catalog"];
  for (const name of milestoneNames) {
    for (let k = int(1, 2); k > 0; k--) {
      const r = pick(runs);
      if (!r.line.includes("milestone:")) r.line += `, milestone: ${name}`;
    }
  }
  const used = new Set(runs.map((r) => /milestone: (\w+)/.exec(r.line)?.[1]).filter(Boolean));
  let head = `runbook: 1\nname: random-${seed}\nbandwidth: ${bandwidthText}\n`;
  const small = rnd() < 0.3, slots = int(1, 3); // drawn always, so seeds keep their shape
  if (small && options.smallParallelism !== false) head += `parallelism: ${slots}\n`;
  if (rnd() < 0.3) {
    const ms = used.has("catalog") ? `, milestones: { catalog: ${int(1, 120)}m }` : "";
    head += `objectives: { rto: ${int(1, 120)}m, btn: ${int(1, 48)}h${ms} }\n`;
  }
  const body = steps.map((s) => {
    const needs = s.needs.length ? `, needs: [${s.needs.join(", ")}]` : "";
    return `  - { id: ${s.id}${needs}, ${s.line} }\n`;
  });
  return `${head}steps:\n${body.join("")}`;
}

/**
 * Parses {@link randomRunbook}'s YAML for `seed` into a runbook.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { randomRunbookParsed } from "./gen.ts";
 * assert.ok(randomRunbookParsed(3).steps.length >= 4);
 * ```
 */
export function randomRunbookParsed(seed: number, options: RandomOptions = {}): Runbook {
  return parseRunbook(randomRunbook(seed, options), `random-${seed}.yaml`);
}

/**
 * The YAML of a large runbook: `fetches` fetch steps (1MB..10GB, log-uniform) and `runs` run
 * steps, interleaved; each run step needs one to three earlier steps; a 10Gbps link; two
 * milestones early in the graph. Deterministic.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bigRunbook } from "./gen.ts";
 * assert.equal(bigRunbook(10, 10).split("\n  - ").length, 21);
 * ```
 */
export function bigRunbook(fetches = 50000, runs = 50000): string {
  const rnd = mulberry32(0xb16);
  const n = fetches + runs;
  const parts: string[] = [
    "runbook: 1\nname: big\nbandwidth: 10Gbps\nparallelism: 64\nsteps:\n",
  ];
  const ids: string[] = new Array(n);
  let f = 0, r = 0;
  const m1 = Math.floor(runs * 0.1), m2 = Math.floor(runs * 0.3);
  for (let i = 0; i < n; i++) {
    // Interleave so that the ratio of fetches to run steps stays even along the file.
    const isFetch = r >= runs || (f < fetches && f * runs <= r * fetches);
    if (isFetch) {
      const id = `f${f++}`;
      ids[i] = id;
      const size = (1e6 * Math.pow(1e4, rnd())).toFixed(0);
      parts.push(`  - { id: ${id}, fetch: { from: /b/${id}, to: ./r/${id}, size: ${size}B } }\n`);
      continue;
    }
    const id = `r${r}`;
    ids[i] = id;
    const k = i === 0 ? 0 : 1 + Math.floor(rnd() * 3);
    const needs = new Set<string>();
    for (let q = 0; q < k; q++) {
      // Mostly recent steps, so the graph is deep as well as wide.
      const back = 1 + Math.floor(Math.pow(rnd(), 3) * Math.min(i, 2000));
      needs.add(ids[i - Math.min(back, i)]!);
    }
    const estimate = (1 + rnd() * 59).toFixed(1);
    const milestone = r === m1 ? ", milestone: catalog" : r === m2 ? ", milestone: service" : "";
    parts.push(
      `  - { id: ${id}, needs: [${[...needs].join(", ")}], run: ./s.sh, ` +
        `estimate: ${estimate}s${milestone} }\n`,
    );
    r++;
  }
  return parts.join("");
}
