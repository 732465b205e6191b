/**
 * A drill's report as Markdown for a pull request comment (`--report FILE.md`): the outcome, TTR
 * and BTN against the objectives and the prediction, a table of the steps, and the service level
 * when the report carries one. GitHub-flavoured (tables); every runbook-provided string escaped.
 *
 * @module
 */
import type { Report, StepReport } from "../schedule/report.ts";
import { formatBytes, formatDuration } from "../runbook/units.ts";
import { slOutcome, slSummaries } from "../pages/service_level.ts";
import { pct, windowText } from "../pages/sl_table.ts";

/** Most step rows in the table; the JSON report has them all. */
export const MAX_MD_STEPS = 100;

const ICON: Record<string, string> = { met: "✅", missed: "⚠️", failed: "❌", cancelled: "⏹️" };

/**
 * Text safe in a Markdown paragraph or table cell: no markup, no HTML, no cell break.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mdText } from "./markdown.ts";
 * assert.equal(mdText("a-b|c <i>*x*</i>"), "a-b\\|c &lt;i&gt;\\*x\\*&lt;/i&gt;");
 * ```
 */
export function mdText(text: unknown): string {
  return String(text ?? "")
    .replace(/[\r\n\t]+/g, " ")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/[\\`*_[\]|~#]/g, (c) => "\\" + c);
}

const t = (s: number | null | undefined) =>
  s === null || s === undefined || !Number.isFinite(s) ? "-" : formatDuration(s);

/**
 * The Markdown summary of `reports` (one section a runbook).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunbook } from "../runbook/load.ts";
 * import { simulate } from "../simulate/simulate.ts";
 * import { markdownReport } from "./markdown.ts";
 * const rb = parseRunbook("runbook: 1\nname: tiny\nsteps:\n  - { id: a, run: 'true', estimate: 1s }\n", "t.yaml");
 * assert.match(markdownReport([simulate(rb)]), /^## ✅ tiny: met/);
 * ```
 */
export function markdownReport(reports: readonly Report[]): string {
  return reports.map(section).join("\n---\n\n");
}

function section(r: Report): string {
  const kind = r.mode === "simulated" ? "simulated drill" : "live run";
  const out = [
    `## ${ICON[r.outcome] ?? ""} ${mdText(r.runbook)}: ${mdText(r.outcome)}`,
    "",
    `${kind} \`${r.run.replace(/`/g, "")}\`, strategy ${mdText(r.strategy)}` +
    (r.missed.length ? `; missed: ${r.missed.map(mdText).join(", ")}` : ""),
    "",
    measures(r),
    "",
  ];
  const sl = slSummaries(r);
  if (sl.length) {
    out.push(
      "### Service level",
      "",
      "| probe | during recovery | normal | degradation | below objective | outcome |",
    );
    out.push("| --- | --- | --- | ---: | ---: | --- |");
    for (const [name, p] of sl) {
      out.push(
        `| ${mdText(name)} | ${mdText(windowText(p.recovery))} | ${
          mdText(windowText(p.normal))
        } | ` +
          `${typeof p.degradation === "number" ? mdText(pct(p.degradation)) : "-"} | ` +
          `${typeof p.below_objective_s === "number" ? mdText(t(p.below_objective_s)) : "-"} | ` +
          `${mdText(slOutcome(p))} |`,
      );
    }
    out.push("");
  }
  out.push(`### Steps (${r.steps.length})`, "", steps(r.steps), "");
  return out.join("\n");
}

/** TTR, BTN and each milestone: measured, objective, prediction, lower bound. */
function measures(r: Report): string {
  const o = r.objectives;
  const verdict = (at: number | null, limit: number | undefined) =>
    limit === undefined
      ? "-"
      : `${t(limit)} ${
        at === null
          ? "(not reached)"
          : at <= limit + 1e-9
          ? "(met)"
          : `(**missed** by ${t(at - limit)})`
      }`;
  const sim = r.prediction?.simulated, serial = r.prediction?.serial;
  const rows = [
    "| measure | measured | objective | predicted | serial | lower bound |",
    "| --- | ---: | --- | ---: | ---: | ---: |",
    `| TTR | ${t(r.ttr_s)} | ${verdict(r.ttr_s, o.rto_s)} | ${t(sim?.ttr_s)} | ` +
    `${t(serial?.ttr_s)} | ${t(r.lower_bound.ttr_s)} |`,
    `| BTN | ${t(r.btn_s)} | ${verdict(r.btn_s, o.btn_s)} | ${t(sim?.btn_s)} | ` +
    `${t(serial?.btn_s)} | ${t(r.lower_bound.btn_s)} |`,
  ];
  for (const [name, at] of Object.entries(r.milestones)) {
    rows.push(
      `| milestone ${mdText(name)} | ${t(at)} | ${verdict(at, o.milestones[name])} | - | - | - |`,
    );
  }
  return rows.join("\n");
}

function steps(list: readonly StepReport[]): string {
  const rows = [
    "| step | kind | state | start | end | frozen | bytes | note |",
    "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const s of list.slice(0, MAX_MD_STEPS)) {
    // A lazy fetch (revision 5) shows when it was attached: its end is home.
    const how = s.attached_s !== undefined
      ? `, lazy, attached at ${t(s.attached_s)}`
      : s.demanded
      ? ", demanded"
      : "";
    const bytes = s.bytes === undefined ? "" : formatBytes(s.bytes) + how;
    rows.push(
      `| ${mdText(s.id)}${s.milestone ? ` (${mdText(s.milestone)})` : ""} | ${mdText(s.kind)} | ` +
        `${mdText(s.state)} | ${t(s.start_s)} | ${t(s.end_s)} | ` +
        `${s.frozen_s > 0 ? t(s.frozen_s) : ""} | ${mdText(bytes)} | ${mdText(s.detail ?? "")} |`,
    );
  }
  if (list.length > MAX_MD_STEPS) {
    rows.push("", `… and ${list.length - MAX_MD_STEPS} more steps (the JSON report has them all)`);
  }
  return rows.join("\n");
}
