/**
 * The page of a run: its state, milestones and objectives with the time left, each step's state
 * and what a frozen step waits for, the timeline, and the service level when there is one. The
 * same content serves the live page (`GET /runs/ID/page`) and the self-contained report
 * (`--report FILE.html`).
 *
 * @module
 */
import type { Report, StepReport } from "../schedule/report.ts";
import { formatBytes, formatDuration } from "../runbook/units.ts";
import { esc } from "./escape.ts";
import { slTable } from "./sl_table.ts";
import { timelineSvg } from "./timeline.ts";

/** A run as a page shows it: its report, and what the API knows of it while it goes on. */
export type PageRun = Report & {
  /** The run's state (`running`, `interrupted`, ...); a report's outcome stands in without it. */
  readonly state?: string;
  readonly started_at?: string;
  readonly ended_at?: string | null;
  readonly predicted?: { ttr_s: number | null; btn_s: number | null } | null;
  readonly predicted_note?: string;
  readonly drill?: boolean;
};

/** What a live page knows beyond the report. */
export interface PageExtras {
  /** The run's seconds now (while it goes on). */
  readonly now_s?: number | null;
  /** When each step now frozen froze. */
  readonly frozenSince?: Readonly<Record<string, number>>;
  /** When each demanded fetch was demanded. */
  readonly demandedAt?: Readonly<Record<string, number>>;
}

/** Most rows in the steps table (the JSON report has them all). */
export const MAX_STEP_ROWS = 1000;

const t = (s: number | null | undefined) =>
  s === null || s === undefined || !Number.isFinite(s) ? "-" : formatDuration(s);

/** A `<section>` with everything about one run. */
export function runSection(run: PageRun, extras: PageExtras = {}): string {
  const now = extras.now_s ?? null;
  return `<section class="run" data-run="${esc(run.run)}">` +
    `<h2>${esc(run.runbook)} ${badge(stateOf(run))}</h2>` +
    facts(run, now) +
    `<h3>Objectives</h3>${objectives(run, now)}` +
    milestones(run) +
    `<h3>Timeline</h3><div class="chart">${
      timelineSvg({
        report: run,
        now_s: running(run) ? now : null,
        ...(extras.frozenSince ? { frozenSince: extras.frozenSince } : {}),
        ...(extras.demandedAt ? { demandedAt: extras.demandedAt } : {}),
        title: `timeline of ${run.runbook}`,
      })
    }</div>${legend()}` +
    slTable(run) +
    `<h3>Steps</h3>${stepsTable(run.steps)}</section>`;
}

/** What the run is: its state while it goes on, else its outcome. */
export function stateOf(run: PageRun): string {
  if (run.state === undefined || run.state === "done") return run.outcome ?? run.state ?? "-";
  return run.state;
}

function running(run: PageRun): boolean {
  return run.state === "running" || run.state === "interrupted";
}

function badge(text: string): string {
  return `<span class="badge ${esc(text)}">${esc(text)}</span>`;
}

function facts(run: PageRun, now: number | null): string {
  const items: [string, string][] = [
    ["run", `<code>${esc(run.run)}</code>`],
    ["mode", esc(run.mode + (run.drill ? " drill" : ""))],
    ["strategy", esc(run.strategy)],
  ];
  if (running(run) && now !== null) {
    items.push(["elapsed", `<span data-elapsed>${esc(t(now))}</span>`]);
  }
  items.push(["TTR", esc(t(run.ttr_s))], ["BTN", esc(t(run.btn_s))]);
  if (run.predicted) {
    items.push(["predicted", esc(`TTR ${t(run.predicted.ttr_s)}, BTN ${t(run.predicted.btn_s)}`)]);
  } else if (run.prediction?.simulated) {
    const p = run.prediction.simulated;
    items.push(["simulated before", esc(`TTR ${t(p.ttr_s)}, BTN ${t(p.btn_s)}`)]);
  }
  if (run.prediction?.serial) {
    items.push(["serial would take", esc(t(run.prediction.serial.ttr_s))]);
  }
  items.push(
    ["lower bound", esc(`TTR ${t(run.lower_bound.ttr_s)}, BTN ${t(run.lower_bound.btn_s)}`)],
    [
      "bytes",
      esc(`${formatBytes(run.bytes.total)} (${formatBytes(run.bytes.on_demand)} on demand)`),
    ],
  );
  if (run.started_at) items.push(["started", esc(run.started_at)]);
  const note = run.predicted_note
    ? `<p class="muted">no prediction: ${esc(run.predicted_note)}</p>`
    : "";
  return `<dl class="facts">${
    items.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${v}</dd></div>`).join("")
  }</dl>${note}`;
}

/** Each objective: its limit, when it was reached, and met, missed or the time left. */
function objectives(run: PageRun, now: number | null): string {
  const o = run.objectives;
  const rows: [string, number, number | null][] = [];
  if (o.rto_s !== undefined) rows.push(["rto (TTR)", o.rto_s, run.ttr_s]);
  for (const [name, limit] of Object.entries(o.milestones)) {
    rows.push([`milestone ${name}`, limit, run.milestones[name] ?? null]);
  }
  if (o.btn_s !== undefined) rows.push(["btn (BTN)", o.btn_s, run.btn_s]);
  if (!rows.length) return `<p class="muted">no objectives in this runbook</p>`;
  const live = running(run) && now !== null;
  const body = rows.map(([name, limit, at]) => {
    let status: string;
    if (at !== null) {
      status = at <= limit + 1e-9
        ? `${badge("met")} ${esc(`${t(limit - at)} to spare`)}`
        : `${badge("missed")} ${esc(`by ${t(at - limit)}`)}`;
    } else if (live) {
      const left = limit - now!;
      status = `<span data-due="${limit}" class="${left < 0 ? "late" : ""}">${
        esc(left >= 0 ? `${t(left)} left` : `late by ${t(-left)}`)
      }</span>`;
    } else status = badge(stateOf(run) === "met" ? "met" : "missed");
    return `<tr><td>${esc(name)}</td><td class="num">${esc(t(limit))}</td>` +
      `<td class="num">${esc(t(at))}</td><td>${status}</td></tr>`;
  });
  return `<table class="objectives"><thead><tr><th>objective</th><th class="num">limit</th>` +
    `<th class="num">reached</th><th>status</th></tr></thead><tbody>${
      body.join("")
    }</tbody></table>`;
}

function milestones(run: PageRun): string {
  const names = Object.keys(run.milestones);
  if (!names.length) return "";
  const rows = names.map((n) =>
    `<tr><td>${esc(n)}</td><td class="num">${esc(t(run.milestones[n]))}</td></tr>`
  );
  return `<h3>Milestones</h3><table class="milestones"><thead><tr><th>milestone</th>` +
    `<th class="num">reached</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function legend(): string {
  const item = (color: string, text: string, style = "") =>
    `<li><i style="background:${color}${style}"></i>${esc(text)}</li>`;
  return `<ul class="legend">${
    [
      item("#2f855a", "run step"),
      item("#90cdf4", "fetch, prefetched"),
      item("#dd6b20", "fetch, demanded by a frozen step"),
      item("#f3efff", "frozen", ";border:1px solid #805ad5"),
      item("#bee3f8", "link use"),
      item("#c53030", "objective (dashed)"),
    ].join("")
  }</ul>`;
}

/** The steps: state, times, bytes, and what each waits for. */
export function stepsTable(steps: readonly StepReport[]): string {
  const rows = steps.slice(0, MAX_STEP_ROWS).map((s) => {
    const bytes = s.bytes === undefined
      ? ""
      : formatBytes(s.bytes) + (!s.demanded
        ? ""
        : s.prefetched_bytes
        ? ` (${formatBytes(s.prefetched_bytes)} before demand)`
        : " (demanded)");
    return `<tr data-step="${esc(s.id)}" data-state="${esc(s.state)}">` +
      `<td><code>${esc(s.id)}</code>${
        s.milestone ? ` <span class="muted">◆ ${esc(s.milestone)}</span>` : ""
      }</td>` +
      `<td>${esc(s.kind)}</td><td class="state">${badge(s.state)}</td>` +
      `<td class="num start">${esc(t(s.start_s))}</td>` +
      `<td class="num end">${esc(t(s.end_s))}</td>` +
      `<td class="num">${s.frozen_s > 0 ? esc(t(s.frozen_s)) : ""}</td>` +
      `<td class="num">${esc(bytes)}</td><td class="detail">${esc(s.detail ?? "")}</td></tr>`;
  });
  return `<table class="steps"><thead><tr><th>step</th><th>kind</th><th>state</th>` +
    `<th class="num">start</th><th class="num">end</th><th class="num">frozen</th>` +
    `<th class="num">bytes</th><th>waits for / note</th></tr></thead><tbody>${
      rows.join("")
    }</tbody></table>` +
    (steps.length > MAX_STEP_ROWS
      ? `<p class="muted">${steps.length - MAX_STEP_ROWS} more steps: GET /runs/ID or the JSON ` +
        `report has them all</p>`
      : "");
}
