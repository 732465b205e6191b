/**
 * The service level's measures (contract revision 4), pure: from a probe's samples, the time it
 * started sampling and BTN, the figures of the recovery and normal windows, the degradation, the
 * time below objective and the outcome.
 *
 * Definitions (README "Service level" says the same for users):
 * - **windows**: recovery = samples taken from `from_s` (the `after` step done) until BTN; normal =
 *   samples taken from BTN until BTN + `normal`. A sample's time is when its probe started,
 *   compared at the report's resolution (milliseconds, rounded). Later
 *   samples belong to no window. Before BTN is reached (a run still going, or failed), every
 *   sample from `from_s` on is in the recovery window.
 * - **figures**: `samples`, `success` (ok samples / samples); over the ok samples: latency
 *   (http, tcp) `p50_ms`, `p95_ms` (nearest rank: the ⌈0.95·n⌉-th smallest), `max_ms`; values
 *   (run) `mean`, `min`, `max`. A failed sample counts in `success` only.
 * - **degradation**: latency: recovery p95 / normal p95 − 1; values: 1 − recovery mean / normal
 *   mean when higher is better, 1 − normal mean / recovery mean when lower is better. `null` when a
 *   window has no ok sample or a level is not positive. Negative: better than normal.
 * - **time below objective** (`below_objective_s`): each recovery sample stands for the time until
 *   the next sample (the last one for `every`), clipped to [from, BTN]; the time of the samples that
 *   failed or missed a threshold of the objective: slower than `p95`, a value on the wrong side of
 *   `mean`, or worse than the normal level by more than `degradation` (latency above normal p95 ×
 *   (1 + d); a value below normal mean × (1 − d), or above normal mean / (1 − d) when lower is
 *   better). `null` when the probe has no objective.
 * - **outcome**: `missed` when the recovery window misses an objective (its p95, success ratio or
 *   mean, or the degradation, on the wrong side); `met` otherwise, also with no sample to judge.
 *
 * @module
 */
import type { ServiceLevelProbe } from "./schema.ts";

/** One sample as taken: seconds from the start of the run, its value, whether it passed. */
export interface Sample {
  /** When the probe started, seconds from the start of the run. */
  readonly t_s: number;
  /** Latency in milliseconds (http, tcp) or the number printed (run); null when none measured. */
  readonly value: number | null;
  readonly ok: boolean;
  /** Why the sample failed (failed samples only). */
  readonly error?: string;
}

/** A window's figures: latency ones for http/tcp, value ones for run. */
export interface WindowFigures {
  samples: number;
  /** ok / samples; null without samples. */
  success: number | null;
  p50_ms?: number | null;
  p95_ms?: number | null;
  max_ms?: number | null;
  mean?: number | null;
  min?: number | null;
  max?: number | null;
}

/** What a probe's measures need of it. */
export type MeasuredProbe = Pick<
  ServiceLevelProbe,
  "kind" | "every" | "normal" | "higherIsBetter" | "objective"
>;

/** The input of {@linkcode measure}. */
export interface MeasureInput {
  readonly probe: MeasuredProbe;
  readonly samples: readonly Sample[];
  /** When sampling began (the `after` step done); null: it never began. */
  readonly from_s: number | null;
  /** BTN; null while (or when) it is not reached. */
  readonly btn_s: number | null;
}

/** A probe's measures. */
export interface Measures {
  recovery: WindowFigures;
  normal: WindowFigures;
  degradation: number | null;
  below_objective_s: number | null;
  outcome: "met" | "missed";
  /** What was missed, for people: `p95 412ms > 300ms`. */
  missed: string[];
}

/**
 * The ⌈q·n⌉-th smallest of `sorted` (nearest rank), or null when empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nearestRank } from "./measures.ts";
 * assert.equal(nearestRank([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95), 10);
 * assert.equal(nearestRank([1, 2, 3, 4], 0.5), 2);
 * assert.equal(nearestRank([], 0.5), null);
 * ```
 */
export function nearestRank(sorted: readonly number[], q: number): number | null {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length))) - 1]!;
}

/** The samples of each window, in time order. */
export function windows(input: MeasureInput): { recovery: Sample[]; normal: Sample[] } {
  // Compared in milliseconds, rounded, as the report gives its times: a probe started 0.4 ms
  // before its milestone's rounded time is still the milestone's first sample.
  const ms = (t: number) => Math.round(t * 1000) / 1000;
  const from = input.from_s === null ? Infinity : ms(input.from_s);
  const btn = input.btn_s === null ? null : ms(input.btn_s);
  const sorted = [...input.samples].filter((s) => Number.isFinite(s.t_s))
    .sort((a, b) => a.t_s - b.t_s);
  const at = (s: Sample) => ms(s.t_s);
  const recovery = sorted.filter((s) => at(s) >= from && (btn === null || at(s) < btn));
  const normal = btn === null
    ? []
    : sorted.filter((s) => at(s) >= btn && at(s) < btn + input.probe.normal);
  return { recovery, normal };
}

/** A window's figures. */
export function figures(kind: MeasuredProbe["kind"], samples: readonly Sample[]): WindowFigures {
  const ok = samples.filter((s) => s.ok && typeof s.value === "number" && Number.isFinite(s.value));
  const values = ok.map((s) => s.value as number).sort((a, b) => a - b);
  const success = samples.length ? samples.filter((s) => s.ok).length / samples.length : null;
  if (kind === "run") {
    return {
      samples: samples.length,
      success,
      mean: values.length ? values.reduce((a, b) => a + b, 0) / values.length : null,
      min: values.length ? values[0]! : null,
      max: values.length ? values[values.length - 1]! : null,
    };
  }
  return {
    samples: samples.length,
    success,
    p50_ms: nearestRank(values, 0.5),
    p95_ms: nearestRank(values, 0.95),
    max_ms: nearestRank(values, 1),
  };
}

/** The level a window stands at: p95 latency, or mean value. */
function level(probe: MeasuredProbe, w: WindowFigures): number | null {
  return (probe.kind === "run" ? w.mean : w.p95_ms) ?? null;
}

/** The degradation of `recovery` against `normal` (see the module's definitions). */
export function degradation(
  probe: MeasuredProbe,
  recovery: WindowFigures,
  normal: WindowFigures,
): number | null {
  const r = level(probe, recovery), n = level(probe, normal);
  if (r === null || n === null || !(n > 0)) return null;
  if (probe.kind !== "run") return r / n - 1;
  if (probe.higherIsBetter) return 1 - r / n;
  return r > 0 ? 1 - n / r : null;
}

/** Whether one sample is below the objective, given the normal level (null: unknown). */
export function sampleBelow(probe: MeasuredProbe, s: Sample, normalLevel: number | null): boolean {
  const o = probe.objective;
  if (!s.ok || typeof s.value !== "number") return true;
  const v = s.value;
  const worse = (limit: number) =>
    probe.kind === "run" && probe.higherIsBetter ? v < limit : v > limit;
  if (o.p95 !== undefined && probe.kind !== "run" && v > o.p95 * 1000) return true;
  if (o.mean !== undefined && probe.kind === "run" && worse(o.mean)) return true;
  if (o.degradation !== undefined && normalLevel !== null && normalLevel > 0) {
    const d = o.degradation;
    if (probe.kind !== "run") return v > normalLevel * (1 + d);
    if (probe.higherIsBetter) return v < normalLevel * (1 - d);
    return d < 1 && v > normalLevel / (1 - d);
  }
  return false;
}

function lastT(samples: readonly Sample[]): number {
  return samples.length ? samples[samples.length - 1]!.t_s : Infinity;
}

/** Whether the probe has any objective. */
function hasObjective(probe: MeasuredProbe): boolean {
  return Object.values(probe.objective).some((v) => v !== undefined);
}

/** The time the recovery samples spent below the objective, in seconds. */
export function timeBelow(
  input: MeasureInput,
  recovery: readonly Sample[],
  normalLevel: number | null,
): number | null {
  if (!hasObjective(input.probe)) return null;
  const from = input.from_s ?? -Infinity, to = input.btn_s ?? Infinity;
  // The sample after the last recovery sample may be a normal one: take it from all of them.
  const last = lastT(recovery);
  let after: number | undefined;
  for (const s of input.samples) {
    if (Number.isFinite(s.t_s) && s.t_s > last && !(s.t_s >= (after ?? Infinity))) after = s.t_s;
  }
  let total = 0;
  for (let i = 0; i < recovery.length; i++) {
    const s = recovery[i]!;
    if (!sampleBelow(input.probe, s, normalLevel)) continue;
    let j = i + 1;
    while (j < recovery.length && recovery[j]!.t_s <= s.t_s) j++;
    const next = j < recovery.length ? recovery[j]!.t_s : after;
    const end = Math.min(next ?? s.t_s + input.probe.every, to);
    total += Math.max(0, end - Math.max(s.t_s, from));
  }
  return total;
}

/** What the recovery window misses of the objective, for people. */
function missedParts(probe: MeasuredProbe, w: WindowFigures, d: number | null): string[] {
  const o = probe.objective, out: string[] = [];
  const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;
  const r = (x: number) => Math.round(x * 10) / 10;
  if (o.success !== undefined && w.success !== null && w.success < o.success) {
    out.push(`success ${pct(w.success)} < ${pct(o.success)}`);
  }
  if (o.p95 !== undefined && typeof w.p95_ms === "number" && w.p95_ms > o.p95 * 1000) {
    out.push(`p95 ${r(w.p95_ms)}ms > ${r(o.p95 * 1000)}ms`);
  }
  if (o.mean !== undefined && typeof w.mean === "number") {
    const bad = probe.higherIsBetter ? w.mean < o.mean : w.mean > o.mean;
    if (bad) out.push(`mean ${r(w.mean)} ${probe.higherIsBetter ? "<" : ">"} ${o.mean}`);
  }
  if (o.degradation !== undefined && d !== null && d > o.degradation) {
    out.push(`degradation ${pct(d)} > ${pct(o.degradation)}`);
  }
  return out;
}

/**
 * A probe's measures from its samples (see the module's definitions).
 *
 * @example Latency 100 ms during the recovery, 50 ms after BTN: degradation 1 (100 % worse)
 * ```ts
 * import assert from "node:assert/strict";
 * import { measure } from "./measures.ts";
 * const probe = { kind: "http", every: 1, normal: 2, higherIsBetter: false, objective: {} } as const;
 * const samples = [0, 1, 2, 3].map((t) => ({ t_s: t, value: t < 2 ? 100 : 50, ok: true }));
 * const m = measure({ probe, samples, from_s: 0, btn_s: 2 });
 * assert.equal(m.degradation, 1);
 * assert.equal(m.recovery.samples, 2);
 * ```
 */
export function measure(input: MeasureInput): Measures {
  const { recovery: rs, normal: ns } = windows(input);
  const recovery = figures(input.probe.kind, rs), normal = figures(input.probe.kind, ns);
  const d = degradation(input.probe, recovery, normal);
  const missed = missedParts(input.probe, recovery, d);
  return {
    recovery,
    normal,
    degradation: d,
    below_objective_s: timeBelow(input, rs, level(input.probe, normal)),
    outcome: missed.length ? "missed" : "met",
    missed,
  };
}
