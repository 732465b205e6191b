/**
 * Terminal output for people: the drill report and the plan. (`--json` prints the data instead.)
 *
 * @module
 */
import type { Plan } from "../simulate/plan.ts";
import type { Report, StepReport } from "../schedule/report.ts";
import type { ServiceLevelReport } from "../service_level/report.ts";
import { slLines } from "../service_level/text.ts";
import { STRATEGIES } from "../runbook/schema.ts";
import { formatBytes, formatDuration } from "../runbook/units.ts";

/** The report of a run that has not ended: no outcome yet (`thaw status RUN_ID`). */
export type UnendedReport = Omit<Report, "outcome"> & { readonly outcome: null };

/** Most steps listed in a terminal report; `--json` has them all. */
export const MAX_STEP_ROWS = 40;

const t = (
  s: number | null | undefined,
) => (s === null || s === undefined ? "-" : formatDuration(s));

/**
 * `n word` with the plural when `n` is not one: `1 fetch`, `2 fetches`, `0 steps`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { plural } from "./render.ts";
 * assert.equal(plural(1, "fetch", "fetches"), "1 fetch");
 * assert.equal(plural(3, "step"), "3 steps");
 * ```
 */
export function plural(n: number, word: string, words = word + "s"): string {
  return `${n} ${n === 1 ? word : words}`;
}

/**
 * Bytes for people; `-` for a figure that is not a finite number (never `NaN` or `Infinity`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bytesText } from "./render.ts";
 * assert.equal(bytesText(1024), "1.0KiB");
 * assert.equal(bytesText(NaN), "-");
 * ```
 */
export function bytesText(bytes: number | null | undefined): string {
  return typeof bytes === "number" && Number.isFinite(bytes) ? formatBytes(bytes) : "-";
}

/**
 * How many times sooner `better` is than `baseline` (`3.2x`), or undefined when either is not a
 * finite positive figure.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { timesSooner } from "./render.ts";
 * assert.equal(timesSooner(64, 20), "3.2x");
 * assert.equal(timesSooner(Infinity, Infinity), undefined);
 * ```
 */
export function timesSooner(
  baseline: number | null | undefined,
  better: number | null | undefined,
): string | undefined {
  if (typeof baseline !== "number" || typeof better !== "number") return undefined;
  if (!Number.isFinite(baseline) || !Number.isFinite(better) || !(better > 0)) return undefined;
  if (!(baseline > 0)) return undefined;
  return `${(baseline / better).toFixed(1)}x`;
}

/** Rows as aligned columns, two spaces apart, each line indented by `indent`. */
export function table(rows: string[][], indent = "  "): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) => indent + r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd())
    .join("\n");
}

function verdict(value: number | null, limit: number | undefined): string {
  if (limit === undefined) return "";
  const ok = value !== null && value <= limit + 1e-9;
  return `objective ${formatDuration(limit)}: ${ok ? "met" : "MISSED"}`;
}

/** Which steps a long report shows: milestone steps, frozen ones, then the earliest. */
function pickSteps(report: Pick<Report, "steps">, limit: number): StepReport[] {
  if (report.steps.length <= limit) return report.steps;
  const order = [...report.steps].sort((a, b) =>
    (a.start_s ?? Infinity) - (b.start_s ?? Infinity) || (a.end_s ?? 0) - (b.end_s ?? 0)
  );
  return order.slice(0, limit);
}

/**
 * The terminal report of a run.
 *
 * @example
 * ```ts
 * import { parseRunbook, simulate } from "../../mod.ts";
 * import { renderReport } from "./render.ts";
 * import assert from "node:assert/strict";
 * const rb = parseRunbook("runbook: 1\nname: x\nsteps:\n  - {id: a, run: 'true', estimate: 2s}\n", "x.yaml");
 * assert(renderReport(simulate(rb)).includes("BTN"));
 * ```
 */
export function renderReport(report: Report | UnendedReport): string {
  const lines: string[] = [];
  const mode = report.mode === "simulated" ? "simulated drill" : "live run";
  lines.push(`${report.runbook}: ${mode}, strategy ${report.strategy}, run ${report.run}`);
  const shown = pickSteps(report, MAX_STEP_ROWS);
  const rows = [["STEP", "KIND", "STATE", "START", "END", "FROZEN", "BYTES"]];
  for (const s of shown) {
    // A lazy fetch (revision 5) shows when it was attached: its end is home.
    const how = s.attached_s !== undefined
      ? ` lazy, attached at ${t(s.attached_s)}`
      : s.demanded
      ? " demanded"
      : " prefetched";
    const bytes = s.kind === "fetch" ? bytesText(s.bytes ?? 0) + how : "";
    rows.push([
      s.id,
      s.kind,
      s.state,
      t(s.start_s),
      t(s.end_s),
      s.frozen_s > 0 ? formatDuration(s.frozen_s) : "-",
      bytes,
    ]);
  }
  lines.push(table(rows));
  if (shown.length < report.steps.length) {
    const more = plural(report.steps.length - shown.length, "more step", "more steps");
    lines.push(`  ... ${more} (--json lists them all)`);
  }
  const names = Object.keys(report.milestones);
  if (names.length) {
    lines.push("milestones");
    lines.push(table(names.map((m) => [
      m,
      t(report.milestones[m]),
      verdict(report.milestones[m] ?? null, report.objectives.milestones[m]),
    ])));
  }
  lines.push(table([
    [
      "TTR",
      t(report.ttr_s),
      `lower bound ${t(report.lower_bound.ttr_s)}`,
      verdict(report.ttr_s, report.objectives.rto_s),
    ],
    [
      "BTN",
      t(report.btn_s),
      `lower bound ${t(report.lower_bound.btn_s)}`,
      verdict(report.btn_s, report.objectives.btn_s),
    ],
  ], ""));
  const b = report.bytes;
  if (b.total > 0) {
    lines.push(
      `bytes ${bytesText(b.total)}: ${bytesText(b.on_demand)} on demand, ` +
        `${bytesText(b.prefetched)} prefetched`,
    );
  }
  lines.push(...slLines((report as { service_level?: ServiceLevelReport }).service_level));
  const missed = report.missed.length ? ` (missed: ${report.missed.join(", ")})` : "";
  const outcome = report.outcome ?? "none yet (the run has not ended)";
  lines.push(`outcome: ${outcome}${missed}`);
  return lines.join("\n");
}

/** Most ids listed per level, and levels listed, in a terminal plan. */
const MAX_IDS = 12, MAX_LEVELS = 30;

/**
 * The terminal view of a plan.
 *
 * @example
 * ```ts
 * import { parseRunbook, plan } from "../../mod.ts";
 * import { renderPlan } from "./render.ts";
 * import assert from "node:assert/strict";
 * const rb = parseRunbook("runbook: 1\nname: x\nsteps:\n  - {id: a, run: 'true', estimate: 2s}\n", "x.yaml");
 * assert(renderPlan(plan(rb)).includes("critical path"));
 * ```
 */
export function renderPlan(p: Plan): string {
  const lines: string[] = [];
  const steps = p.simulated.aggressive.steps;
  const fetches = steps.filter((s) => s.kind === "fetch").length;
  lines.push(
    `${p.runbook}: ${plural(steps.length, "step")} ` +
      `(${plural(fetches, "fetch", "fetches")}, ${steps.length - fetches} run)`,
  );
  lines.push("graph by level (a level needs only earlier levels)");
  const levels = p.levels.slice(0, MAX_LEVELS).map((ids, k) => {
    const more = ids.length > MAX_IDS ? `, ... ${ids.length - MAX_IDS} more` : "";
    return [String(k), ids.slice(0, MAX_IDS).join(", ") + more];
  });
  lines.push(table(levels));
  if (p.levels.length > MAX_LEVELS) {
    lines.push(`  ... ${plural(p.levels.length - MAX_LEVELS, "more level", "more levels")}`);
  }
  const path = (ids: string[]) =>
    ids.length > 16 ? [...ids.slice(0, 8), `... ${ids.length - 14} more`, ...ids.slice(-6)] : ids;
  lines.push(`critical path to TTR: ${path(p.critical_path.ttr).join(" -> ")}`);
  lines.push(`critical path to BTN: ${path(p.critical_path.btn).join(" -> ")}`);
  lines.push(
    `lower bounds: TTR ${t(p.lower_bound.ttr_s)}, BTN ${t(p.lower_bound.btn_s)}`,
  );
  lines.push("simulated");
  const rows = [["STRATEGY", "TTR", "BTN", "OUTCOME"]];
  for (const s of STRATEGIES) {
    const r = p.simulated[s];
    const missed = r.missed.length ? ` (${r.missed.join(", ")})` : "";
    rows.push([s + (s === p.strategy ? " *" : ""), t(r.ttr_s), t(r.btn_s), r.outcome + missed]);
  }
  lines.push(table(rows));
  const plain = p.without_lazy?.[p.strategy], lazy = p.simulated[p.strategy];
  if (plain) {
    lines.push(
      `* with lazy fetches: TTR ${t(lazy.ttr_s)} (without lazy: ${t(plain.ttr_s)}), ` +
        `BTN ${t(lazy.btn_s)} (without lazy: ${t(plain.btn_s)})`,
    );
  }
  const sooner = timesSooner(p.simulated.serial.ttr_s, p.simulated[p.strategy].ttr_s);
  if (sooner) lines.push(`* the runbook's strategy: service back ${sooner} sooner than serial`);
  else lines.push("* the runbook's strategy");
  return lines.join("\n");
}

/** A summary table of several reports (a drill over a directory). */
export function renderSummary(rows: { file: string; report?: Report; error?: string }[]): string {
  const live = rows.some((r) => r.report?.prediction);
  const out = [[
    "RUNBOOK",
    "TTR",
    "BTN",
    "OUTCOME",
    ...(live ? ["PREDICTED TTR/BTN", "SERIAL TTR/BTN"] : []),
  ]];
  for (const r of rows) {
    const p = r.report?.prediction;
    const extra = !live ? [] : [
      p?.simulated ? `${t(p.simulated.ttr_s)} / ${t(p.simulated.btn_s)}` : "-",
      p?.serial ? `${t(p.serial.ttr_s)} / ${t(p.serial.btn_s)}` : "-",
    ];
    out.push(
      r.report
        ? [r.file, t(r.report.ttr_s), t(r.report.btn_s), r.report.outcome, ...extra]
        : [r.file, "-", "-", r.error ?? "invalid", ...extra.map(() => "-")],
    );
  }
  return "summary\n" + table(out);
}

/** A line comparing a live drill with its prediction and with a serial restore. */
export function predictionLine(report: Report): string {
  const p = report.prediction;
  if (!p) return "";
  const f = (
    x: number | null | undefined,
  ) => (x === null || x === undefined ? "-" : formatDuration(x));
  const parts = [`live TTR ${f(report.ttr_s)}, BTN ${f(report.btn_s)}`];
  if (p.simulated) parts.push(`predicted TTR ${f(p.simulated.ttr_s)}, BTN ${f(p.simulated.btn_s)}`);
  else parts.push("no prediction (a step has no estimate nor history)");
  if (p.serial) parts.push(`a serial restore: TTR ${f(p.serial.ttr_s)}, BTN ${f(p.serial.btn_s)}`);
  return parts.join("; ");
}
