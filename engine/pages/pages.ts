/**
 * Whole pages: a run's live page, the list of runs, a report as one self-contained file, and the
 * plan's strategies one under the other. Pure functions from data to HTML text.
 *
 * @module
 */
import type { Report } from "../schedule/report.ts";
import type { Plan } from "../simulate/plan.ts";
import type { Strategy } from "../runbook/model.ts";
import { STRATEGIES } from "../runbook/schema.ts";
import { formatDuration } from "../runbook/units.ts";
import { htmlDocument } from "./document.ts";
import { esc } from "./escape.ts";
import { type PageExtras, type PageRun, runSection, stateOf } from "./run_page.ts";
import { horizonOf } from "./scale.ts";
import { timelineSvg } from "./timeline.ts";

/** A run in the list, as `GET /runs` gives it. */
export interface ListedRun {
  readonly run: string;
  readonly runbook: string;
  readonly state: string;
  readonly drill: boolean;
  readonly outcome: string | null;
  readonly started: string;
  readonly ended: string | null;
}

/**
 * A run's live page: it follows `events` (a URL relative to the page) while the run goes on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { simulate } from "../simulate/simulate.ts";
 * import { parseRunbook } from "../runbook/load.ts";
 * import { runPage } from "./pages.ts";
 * const text = "runbook: 1\nname: tiny\nsteps:\n  - { id: a, run: 'true', estimate: 1s }\n";
 * const rb = parseRunbook(text, "tiny.yaml");
 * const html = runPage(simulate(rb), {});
 * assert.match(html, /data-step="a"/);
 * ```
 */
export function runPage(run: PageRun, extras: PageExtras, events?: string): string {
  const ended = run.state === undefined || !["running", "interrupted"].includes(run.state);
  return htmlDocument({
    title: `${run.runbook}: ${stateOf(run)} - thaw`,
    heading: `<h1><a href="../../">thaw</a> · ${esc(run.runbook)}</h1>`,
    main: runSection(run, extras),
    ...(events ? { live: { events, now_s: extras.now_s ?? null, ended } } : {}),
    footer: `run ${run.run}`,
  });
}

/** Reports as one self-contained page (`--report FILE.html`), one section a runbook. */
export function reportsPage(reports: readonly Report[]): string {
  const names = reports.map((r) => r.runbook);
  return htmlDocument({
    title: `${names.join(", ")} - thaw report`,
    heading: `<h1>thaw · ${esc(names.length === 1 ? names[0]! : `${names.length} runbooks`)}</h1>`,
    main: reports.map((r) => runSection(r)).join(""),
    footer: `thaw report, written ${new Date().toISOString()}`,
  });
}

/** The list of runs (`GET /`), newest first; it refreshes itself every few seconds. */
export function runsListPage(runs: readonly ListedRun[]): string {
  const rows = runs.map((r) =>
    `<tr><td><a href="runs/${encodeURIComponent(r.run)}/page"><code>${esc(r.run)}</code></a></td>` +
    `<td>${esc(r.runbook)}</td><td>${esc(r.drill ? "drill" : "run")}</td>` +
    `<td><span class="badge ${esc(r.outcome ?? r.state)}">${
      esc(r.state === "done" ? r.outcome ?? r.state : r.state)
    }</span></td><td>${esc(r.started)}</td><td>${esc(r.ended ?? "")}</td></tr>`
  );
  const table = runs.length
    ? `<table class="runs"><thead><tr><th>run</th><th>runbook</th><th>kind</th><th>state</th>` +
      `<th>started</th><th>ended</th></tr></thead><tbody>${rows.join("")}</tbody></table>`
    : `<p class="muted">no runs in this store yet</p>`;
  return htmlDocument({
    title: "runs - thaw",
    heading: `<h1>thaw · runs</h1>`,
    main: `<h2>Runs</h2>${table}`,
    refreshMs: 3000,
    footer: "thaw status API: GET /runs, /runs/ID, /runs/ID/events, /metrics, /openapi.json",
  });
}

/** `thaw plan --html`: each strategy's simulated timeline, one under the other, on one scale. */
export function planPage(plan: Plan, runbook: string, chosen: string): string {
  const reports = STRATEGIES.map((s) => plan.simulated[s]);
  const horizon = Math.max(...reports.map((r) => horizonOf(r)));
  const sections = STRATEGIES.map((s) => {
    const r = plan.simulated[s];
    const mark = s === chosen ? " (the runbook's strategy)" : "";
    return `<section class="run strategy" data-strategy="${esc(s)}"><h2>${esc(s + mark)} ` +
      `<span class="badge ${esc(r.outcome)}">${esc(r.outcome)}</span></h2>` +
      `<p>${esc(`TTR ${time(r.ttr_s)}, BTN ${time(r.btn_s)}`)}${withoutLazy(plan, s)}</p>` +
      timelineSvg({ report: r, horizon_s: horizon, title: `${runbook}, ${s}` }) + `</section>`;
  });
  return htmlDocument({
    title: `${runbook}: plan - thaw`,
    heading: `<h1>thaw plan · ${esc(runbook)}</h1>`,
    main: `<p class="muted">simulated, every strategy on one time scale</p>${sections.join("")}`,
    footer: `thaw plan, written ${new Date().toISOString()}`,
  });
}

/** What the strategy would give without `lazy` (a runbook with lazy fetches), as a note. */
function withoutLazy(plan: Plan, s: Strategy): string {
  const m = plan.without_lazy?.[s];
  if (!m) return "";
  const text = `without lazy fetches: TTR ${time(m.ttr_s)}, BTN ${time(m.btn_s)}`;
  return ` <span class="muted" data-without-lazy>(${esc(text)})</span>`;
}

function time(s: number | null): string {
  return s === null ? "-" : formatDuration(s);
}
