/**
 * The service level in the report (`--json`, contract revision 4, "The report"): per probe name,
 * the recovery and normal windows, the degradation, the time below objective and the outcome,
 * plus the samples as taken (`samples: [{ t_s, value, ok }]`, which the pages draw as a curve:
 * `engine/pages/service_level.ts`). A missed SL objective makes a `met` run `missed` (exit 3).
 * A simulated drill shows the last live drill's service level, marked `last_measured`.
 *
 * @module
 */
import { z } from "zod";
import { measure, type Sample, type WindowFigures } from "./measures.ts";
import type { ServiceLevelProbe, SlKind } from "./schema.ts";

/** One probe in the report. */
export interface SlProbeReport {
  kind: SlKind;
  /** When sampling began (its `after` step done), seconds from the start of the run. */
  from_s: number | null;
  recovery: WindowFigures;
  normal: WindowFigures;
  degradation: number | null;
  below_objective_s: number | null;
  outcome: "met" | "missed";
  /** What was missed, for people (`p95 412ms > 300ms`); only when missed. */
  missed?: string[];
  /** The objective, in report units (`p95_ms`, ratios). */
  objective: { p95_ms?: number; success?: number; degradation?: number; mean?: number };
  /** The samples as taken (omitted for a last-measured service level). */
  samples?: Sample[];
  /** A simulated drill: the live drill this was measured in. */
  last_measured?: { run: string; ended_at: string | null };
}

/** `report.service_level`: per probe name. */
export type ServiceLevelReport = Record<string, SlProbeReport>;

/** What {@link serviceLevelReport} needs. */
export interface SlReportInput {
  readonly probes: readonly ServiceLevelProbe[];
  /** The samples of each probe, as stored. */
  readonly samples: (name: string) => readonly Sample[];
  /** When each probe began sampling (null: never). */
  readonly from: (name: string) => number | null;
  readonly btn_s: number | null;
  /** Put the samples in the report (default true). */
  readonly withSamples?: boolean;
  /**
   * At most about this many samples per probe in the report (default: all): every k-th ok sample
   * is kept, and every failed one. The figures are always computed from all of them.
   */
  readonly maxSamples?: number;
}

/**
 * `samples` thinned to about `max`: every k-th ok sample, every failed one, and the last.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { thinSamples } from "./report.ts";
 * const samples = Array.from({ length: 10 }, (_, t) => ({ t_s: t, value: t, ok: t !== 3 }));
 * assert.deepEqual(thinSamples(samples, 5).map((s) => s.t_s), [0, 2, 3, 4, 6, 8, 9]);
 * ```
 */
export function thinSamples(samples: readonly Sample[], max: number): Sample[] {
  if (!(max >= 1) || samples.length <= max) return [...samples];
  const k = Math.ceil(samples.length / max);
  return samples.filter((s, i) => !s.ok || i % k === 0 || i === samples.length - 1);
}

/** `x` to `digits` significant digits (finite numbers only). */
function sig(x: number, digits = 6): number {
  return x === 0 || !Number.isFinite(x) ? x : Number(x.toPrecision(digits));
}

function roundWindow(w: WindowFigures): WindowFigures {
  const out: WindowFigures = { samples: w.samples, success: w.success };
  for (const k of ["p50_ms", "p95_ms", "max_ms", "mean", "min", "max"] as const) {
    const v = w[k];
    if (v !== undefined) out[k] = v === null ? null : sig(v);
  }
  if (out.success !== null) out.success = sig(out.success, 4);
  return out;
}

/**
 * The report's `service_level` from the probes and their samples.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serviceLevelModel } from "./schema.ts";
 * import { serviceLevelReport } from "./report.ts";
 * const probes = serviceLevelModel([
 *   { name: "api", http: "http://127.0.0.1:1/", after: "up", normal: "2s" },
 * ]);
 * const samples = [0, 1, 2, 3].map((t) => ({ t_s: 10 + t, value: t < 2 ? 90 : 30, ok: true }));
 * const sl = serviceLevelReport({ probes, samples: () => samples, from: () => 10, btn_s: 12 });
 * assert.equal(sl.api!.degradation, 2);
 * assert.equal(sl.api!.samples!.length, 4);
 * ```
 */
export function serviceLevelReport(input: SlReportInput): ServiceLevelReport {
  const out: ServiceLevelReport = {};
  for (const probe of input.probes) {
    const samples = input.samples(probe.name);
    const from_s = input.from(probe.name);
    const m = measure({ probe, samples, from_s, btn_s: input.btn_s });
    const o = probe.objective;
    out[probe.name] = {
      kind: probe.kind,
      from_s: from_s === null ? null : sig(from_s, 9),
      recovery: roundWindow(m.recovery),
      normal: roundWindow(m.normal),
      degradation: m.degradation === null ? null : sig(m.degradation, 4),
      below_objective_s: m.below_objective_s === null ? null : sig(m.below_objective_s, 6),
      outcome: m.outcome,
      ...(m.missed.length ? { missed: m.missed } : {}),
      objective: {
        ...(o.p95 !== undefined ? { p95_ms: sig(o.p95 * 1000) } : {}),
        ...(o.success !== undefined ? { success: o.success } : {}),
        ...(o.degradation !== undefined ? { degradation: o.degradation } : {}),
        ...(o.mean !== undefined ? { mean: o.mean } : {}),
      },
      ...(input.withSamples === false ? {} : {
        samples: thinSamples(samples, input.maxSamples ?? Infinity).map(reportSample),
      }),
    };
  }
  return out;
}

/**
 * When each probe's recovery window starts, from the report's steps and milestones: the end of
 * its `after` step, or the first milestone reached (null while not reached). The sampler starts at
 * these moments; reading them from the report keeps them true across a resume.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { probeStarts } from "./report.ts";
 * const starts = probeStarts(
 *   [{ name: "a", after: "db" }, { name: "b" }],
 *   [{ id: "db", end_s: 4 }],
 *   { catalog: 9, service: 7, later: null },
 * );
 * assert.deepEqual(starts, { a: 4, b: 7 });
 * ```
 */
export function probeStarts(
  probes: readonly Pick<ServiceLevelProbe, "name" | "after">[],
  steps: readonly { id: string; end_s: number | null }[],
  milestones: Readonly<Record<string, number | null>>,
): Record<string, number | null> {
  const reached = Object.values(milestones).filter((t): t is number => typeof t === "number");
  const first = reached.length ? Math.min(...reached) : null;
  const out: Record<string, number | null> = {};
  for (const p of probes) {
    out[p.name] = p.after === undefined
      ? first
      : steps.find((s) => s.id === p.after)?.end_s ?? null;
  }
  return out;
}

/** A sample as the report and the SSE stream give it. */
export function reportSample(s: Sample): Sample {
  const t_s = Math.round(s.t_s * 1000) / 1000;
  const value = s.value === null ? null : sig(s.value);
  return s.ok ? { t_s, value, ok: true } : { t_s, value, ok: false, error: s.error ?? "failed" };
}

/**
 * `report` with its service level: `service_level` set, each missed probe listed in `missed` as
 * `sl:NAME`, and a `met` outcome turned `missed` when a probe missed its objective (exit 3).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withServiceLevel } from "./report.ts";
 * const r = withServiceLevel({ outcome: "met", missed: [] as string[] }, {
 *   api: { kind: "http", from_s: 0, recovery: { samples: 0, success: null },
 *     normal: { samples: 0, success: null }, degradation: null, below_objective_s: null,
 *     outcome: "missed", objective: {} },
 * });
 * assert.equal(r.outcome, "missed");
 * assert.deepEqual(r.missed, ["sl:api"]);
 * ```
 */
export function withServiceLevel<R extends { outcome: string; missed: string[] }>(
  report: R,
  sl: ServiceLevelReport,
): R & { service_level: ServiceLevelReport } {
  if (!Object.keys(sl).length) return { ...report, service_level: sl };
  const missed = Object.entries(sl).filter(([, p]) => p.outcome === "missed" && !p.last_measured)
    .map(([name]) => `sl:${name}`);
  return {
    ...report,
    service_level: sl,
    missed: [...report.missed.filter((m) => !m.startsWith("sl:")), ...missed],
    outcome: report.outcome === "met" && missed.length ? "missed" : report.outcome,
  };
}

/**
 * The last live drill's service level, for a simulated drill's report: the same figures without
 * the samples, each marked `last_measured`. It does not change the simulated outcome.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lastMeasured } from "./report.ts";
 * const sl = lastMeasured({ api: { kind: "http", from_s: 1, recovery: { samples: 2, success: 1 },
 *   normal: { samples: 0, success: null }, degradation: null, below_objective_s: null,
 *   outcome: "met", objective: {}, samples: [] } }, "01J", "2026-11-30T12:00:00.000Z");
 * assert.equal(sl.api!.samples, undefined);
 * assert.equal(sl.api!.last_measured!.run, "01J");
 * ```
 */
export function lastMeasured(
  sl: ServiceLevelReport,
  run: string,
  endedAt: string | null,
): ServiceLevelReport {
  const out: ServiceLevelReport = {};
  for (const [name, p] of Object.entries(sl)) {
    const { samples: _samples, last_measured: _last, ...rest } = p;
    out[name] = { ...rest, last_measured: { run, ended_at: endedAt } };
  }
  return out;
}

const figure = z.number().nullable().optional();
const windowSchema = z.object({
  samples: z.number().int(),
  success: z.number().nullable(),
  p50_ms: figure,
  p95_ms: figure,
  max_ms: figure,
  mean: figure,
  min: figure,
  max: figure,
}).strict();

/** A sample in the report and in `sl` events. */
export const SlSampleSchema = z.object({
  t_s: z.number().describe("when the probe started, seconds from the start of the run"),
  value: z.number().nullable().describe("latency in ms (http, tcp) or the number printed (run)"),
  ok: z.boolean(),
  error: z.string().optional().describe("why the sample failed"),
}).strict();

/** `report.service_level`, for the API's `ReportSchema` (add it as `.optional()`). */
export const ServiceLevelReportSchema = z.record(
  z.string(),
  z.object({
    kind: z.enum(["http", "tcp", "run"]),
    from_s: z.number().nullable(),
    recovery: windowSchema,
    normal: windowSchema,
    degradation: z.number().nullable(),
    below_objective_s: z.number().nullable(),
    outcome: z.enum(["met", "missed"]),
    missed: z.array(z.string()).optional(),
    objective: z.object({
      p95_ms: z.number().optional(),
      success: z.number().optional(),
      degradation: z.number().optional(),
      mean: z.number().optional(),
    }).strict(),
    samples: z.array(SlSampleSchema).optional(),
    last_measured: z.object({ run: z.string(), ended_at: z.string().nullable() }).strict()
      .optional(),
  }).strict(),
).describe("service level per probe name (revision 4)");
