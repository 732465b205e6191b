/**
 * The time axis of a timeline: which span it shows, where a second falls, and round ticks.
 *
 * @module
 */
import type { Report } from "../schedule/report.ts";

/** Where seconds fall on the drawing: `x = x0 + t * pxPerS`. */
export interface Scale {
  readonly x0: number;
  readonly pxPerS: number;
  /** The seconds the axis spans (from 0). */
  readonly horizon: number;
}

/** What decides the span: the run's own times, and the objectives near them. */
export type Spanned = Pick<Report, "steps" | "ttr_s" | "btn_s" | "objectives">;

/**
 * The seconds a timeline of `report` spans: the last time it knows of (a step's end, TTR, BTN,
 * `now`), and the objectives up to twice that (one far beyond would squeeze the bars into a
 * corner: it is named under the chart instead).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { horizonOf } from "./scale.ts";
 * const r = { steps: [], ttr_s: 2, btn_s: 10, objectives: { rto_s: 15, btn_s: 3600, milestones: {} } };
 * assert.equal(horizonOf(r), 15);
 * ```
 */
export function horizonOf(report: Spanned, now?: number | null): number {
  let last = Math.max(report.ttr_s ?? 0, report.btn_s ?? 0, now ?? 0);
  for (const s of report.steps) last = Math.max(last, s.end_s ?? 0, s.start_s ?? 0);
  let horizon = last;
  for (const limit of objectiveLimits(report)) {
    if (limit <= 2 * last || last === 0) horizon = Math.max(horizon, limit);
  }
  return horizon > 0 ? horizon : 1;
}

/** Every objective's limit in seconds. */
export function objectiveLimits(report: Pick<Report, "objectives">): number[] {
  const o = report.objectives;
  return [o.rto_s, o.btn_s, ...Object.values(o.milestones)].filter((x): x is number =>
    typeof x === "number" && Number.isFinite(x)
  );
}

/**
 * Round tick positions (1, 2 or 5 times a power of ten seconds, or whole minutes and hours) for an
 * axis of `horizon` seconds, about `count` of them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ticks } from "./scale.ts";
 * assert.deepEqual(ticks(10, 5), [0, 2, 4, 6, 8, 10]);
 * ```
 */
export function ticks(horizon: number, count = 8): number[] {
  const raw = horizon / Math.max(1, count);
  const steps = [
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    14400,
    21600,
    43200,
    86400,
  ];
  const step = steps.find((s) => s >= raw) ?? Math.ceil(raw / 86400) * 86400;
  const out: number[] = [];
  for (let k = 0; k * step <= horizon * (1 + 1e-9) && k <= 1000; k++) out.push(round(k * step));
  return out;
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
