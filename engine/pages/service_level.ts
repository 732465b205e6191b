/**
 * The service level as the pages and reports show it (contract revision 4, "Service level").
 *
 * A report carries `service_level` when its runbook has probes (`engine/service_level/report.ts`
 * builds it); these functions read it when it is there and give nothing otherwise:
 * - the summary per probe: `report.service_level.NAME` as the contract shows it ({@link SlSummary});
 * - the curve: `report.service_level.NAME.samples`, an array of `{ t_s, value, ok }` (seconds from
 *   the start of the run; milliseconds of latency or the number a `run` probe printed), read by
 *   {@link slSeries}. Change the reader here if the samples take another shape.
 *
 * @module
 */

/** One probe's figures for a window (the recovery, or normal after BTN). */
export interface SlWindow {
  samples?: number;
  success?: number;
  p50_ms?: number;
  p95_ms?: number;
  max_ms?: number;
  mean?: number;
  min?: number;
}

/** One probe in the report, as the contract gives it. */
export interface SlSummary {
  recovery?: SlWindow;
  normal?: SlWindow;
  degradation?: number | null;
  below_objective_s?: number | null;
  outcome?: string;
  /** HOOK: the samples as taken, for the curve. */
  samples?: unknown;
  /** A simulated drill: the live drill this was measured in (not this run's own outcome). */
  last_measured?: { run?: string; ended_at?: string | null };
}

/**
 * A probe's outcome for people: its own, or "last measured: met (drill RUN)" when a simulated
 * drill shows the last live drill's.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { slOutcome } from "./service_level.ts";
 * assert.equal(slOutcome({ outcome: "met" }), "met");
 * assert.equal(slOutcome({ outcome: "met", last_measured: { run: "01J" } }), "last measured: met (drill 01J)");
 * ```
 */
export function slOutcome(p: SlSummary): string {
  const outcome = p.outcome ?? "-";
  if (!p.last_measured) return outcome;
  return `last measured: ${outcome}` +
    (p.last_measured.run ? ` (drill ${p.last_measured.run})` : "");
}

/** A probe's samples, for the curve. */
export interface SlSeries {
  readonly name: string;
  readonly points: readonly { t: number; value: number; ok: boolean }[];
}

/**
 * What may carry a service level: a report (once point 1 fills it), or anything (a plain
 * `object`, so that today's `Report`, which has no such field, is accepted).
 */
export type MaybeSl = object;

/**
 * The probes' summaries of a report, by name (empty when the report has none).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { slSummaries } from "./service_level.ts";
 * assert.deepEqual(slSummaries({}), []);
 * assert.equal(slSummaries({ service_level: { api: { degradation: 0.5 } } })[0]![0], "api");
 * ```
 */
export function slSummaries(report: MaybeSl): [string, SlSummary][] {
  const sl = (report as { service_level?: unknown }).service_level;
  if (!sl || typeof sl !== "object" || Array.isArray(sl)) return [];
  return Object.entries(sl as Record<string, unknown>)
    .filter((e): e is [string, SlSummary] => !!e[1] && typeof e[1] === "object")
    .sort((a, b) => a[0].localeCompare(b[0]));
}

/**
 * The probes' samples (empty until the report carries them: then no curve is drawn).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { slSeries } from "./service_level.ts";
 * assert.deepEqual(slSeries({ service_level: { api: { degradation: 0.1 } } }), []);
 * const sl = { api: { samples: [{ t_s: 1, value: 12, ok: true }] } };
 * assert.equal(slSeries({ service_level: sl })[0]!.points[0]!.value, 12);
 * ```
 */
export function slSeries(report: MaybeSl): SlSeries[] {
  const out: SlSeries[] = [];
  for (const [name, summary] of slSummaries(report)) {
    if (!Array.isArray(summary.samples)) continue;
    const points = [];
    for (const p of summary.samples as Record<string, unknown>[]) {
      const t = p?.t_s, value = p?.value;
      if (typeof t !== "number" || typeof value !== "number") continue;
      if (!Number.isFinite(t) || !Number.isFinite(value)) continue;
      points.push({ t, value, ok: p.ok !== false });
    }
    if (points.length) out.push({ name, points });
  }
  return out;
}
