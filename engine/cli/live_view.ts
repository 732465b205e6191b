/**
 * What the terminal shows while a run goes on: a table redrawn in place on a terminal, plain
 * lines (one per step state change) otherwise.
 *
 * @module
 */
import type { StepChange } from "../store/types.ts";
import { bytesText, plural, table } from "./render.ts";
import { formatDuration } from "../runbook/units.ts";
import { waitsForPerson } from "../schedule/waits.ts";
import { type LiveRun, type LiveStep, shownState } from "../live/live_run.ts";

export { LiveRun, type LiveStep, shownState, SKIP_DETAIL, skipDetail } from "../live/live_run.ts";

const MAX_ROWS = 30;

function fetchCell(s: LiveStep): string {
  const of = s.total !== null && s.total > 0 ? ` / ${bytesText(s.total)}` : "";
  const pct = s.total && Number.isFinite(s.total)
    ? ` ${Math.min(100, Math.floor((100 * s.bytes) / s.total))}%`
    : "";
  const rate = s.state === "running" && s.rate > 0 ? `  ${bytesText(s.rate)}/s` : "";
  const why = s.demanded ? "  demanded" : s.state === "running" ? "  prefetch" : "";
  return `${bytesText(s.bytes)}${of}${pct}${rate}${why}`;
}

/** A step waits for a person (an approval, or it was interrupted), not for its work: no ETA. */
function waiting(s: LiveStep): boolean {
  return /^waiting\b|^waits\b/.test(s.detail) || waitsForPerson(s.state, s.detail) !== undefined;
}

/**
 * How long a running step has been running and, against its estimate (run steps) or its rate
 * (fetches), when it should end: `["12s", "18s"]`, `["45s", "15s over"]`; `-` where unknown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunbook } from "../runbook/load.ts";
 * import { LiveRun, timing } from "./live_view.ts";
 * const rb = parseRunbook("runbook: 1\nname: x\nsteps:\n  - {id: a, run: 'true', estimate: 30s}\n", "x.yaml");
 * const live = new LiveRun(rb, "R1", "aggressive", Date.now());
 * live.steps[0]!.state = "running";
 * live.steps[0]!.since = 2;
 * live.elapsed = 14;
 * assert.deepEqual(timing(live, live.steps[0]!), ["12s", "18s"]);
 * ```
 */
export function timing(live: LiveRun, s: LiveStep): [elapsed: string, eta: string] {
  if (s.state !== "running" || s.since === null) return ["", ""];
  const ran = Math.max(0, live.elapsed - s.since);
  let left: number | undefined;
  if (waiting(s)) left = undefined;
  else if (!s.moves) left = s.estimate === null ? undefined : s.estimate - ran;
  else if (s.total !== null && s.rate > 0) left = Math.max(0, s.total - s.bytes) / s.rate;
  const eta = left === undefined || !Number.isFinite(left)
    ? "-"
    : left >= 0
    ? formatDuration(left)
    : `${formatDuration(-left)} over`;
  return [formatDuration(ran), eta];
}

/** Elapsed time against each objective, on one line. */
export function objectivesLine(live: LiveRun): string {
  const o = live.runbook.objectives;
  const parts = [`elapsed ${formatDuration(live.elapsed)}`];
  const against = (name: string, limit: number | undefined, reached: number | null | undefined) => {
    if (limit === undefined) return;
    const state = reached !== null && reached !== undefined
      ? `${formatDuration(reached)} ${reached <= limit ? "met" : "MISSED"}`
      : live.elapsed > limit
      ? "MISSED"
      : `${formatDuration(limit - live.elapsed)} left`;
    parts.push(`${name} ${formatDuration(limit)}: ${state}`);
  };
  against("rto", o.rto, live.report?.ttr_s);
  against("btn", o.btn, live.report?.btn_s);
  for (const [name, limit] of Object.entries(o.milestones)) {
    against(name, limit, live.report?.milestones[name]);
  }
  return parts.join("   ");
}

/**
 * The live table of a run.
 *
 * @example
 * ```ts
 * import { parseRunbook } from "../runbook/load.ts";
 * import { LiveRun } from "../live/loop.ts";
 * import { renderLiveTable } from "./live_view.ts";
 * import assert from "node:assert/strict";
 * const rb = parseRunbook("runbook: 1\nname: x\nsteps:\n  - {id: a, run: 'true'}\n", "x.yaml");
 * const text = renderLiveTable(new LiveRun(rb, "R1", "aggressive", Date.now()));
 * assert(text.includes("a"));
 * assert(text.includes("pending"));
 * ```
 */
export function renderLiveTable(live: LiveRun): string {
  // Where each step runs, when the runbook has hosts (`on:`; "-": this machine).
  const hosts = Object.keys(live.runbook.hosts).length > 0;
  const on = (s: LiveStep) => hosts ? [s.on ?? "-"] : [];
  const rows: string[][] = [[
    "STEP",
    ...hosts ? ["ON"] : [],
    "KIND",
    "STATE",
    "ELAPSED",
    "ETA",
    "",
  ]];
  const order = live.steps.filter((s) => s.state !== "done" && s.state !== "pending");
  const rest = live.steps.filter((s) => s.state === "done" || s.state === "pending");
  const shown = [...order, ...rest].slice(0, MAX_ROWS);
  const index = new Map(live.steps.map((s, i) => [s, i]));
  shown.sort((a, b) => index.get(a)! - index.get(b)!);
  for (const s of shown) {
    const info = s.moves && s.state !== "pending" ? fetchCell(s) : "";
    const detail = s.detail ? (info ? `  ${s.detail}` : s.detail) : "";
    // A person's next command must show whole.
    const width = waitsForPerson(s.state, s.detail) ? 240 : 100;
    rows.push([
      s.id,
      ...on(s),
      s.kind,
      shownState(s),
      ...timing(live, s),
      (info + detail).slice(0, width),
    ]);
  }
  const lines = table(rows).split("\n");
  if (live.steps.length > shown.length) {
    lines.push(`  ... and ${plural(live.steps.length - shown.length, "more step", "more steps")}`);
  }
  return [
    `${live.runbook.name}: run ${live.run}, strategy ${live.strategy}`,
    ...lines,
    objectivesLine(live),
  ].join("\n");
}

/** One plain line per step state change (for logs and pipes). */
export function renderChanges(live: LiveRun, changes: readonly StepChange[]): string {
  return changes.map((c) => {
    const s = live.step(c.step);
    // A drill-skipped step is said skipped once, when it would have started.
    if (s?.skip && c.state === "done") return "";
    const state = s ? shownState(s, c.state) : c.state;
    const bytes = s?.moves && c.state === "done" ? ` ${bytesText(s.bytes)}` : "";
    const detail = c.detail ? `: ${c.detail}` : "";
    const on = s?.on ? ` on ${s.on}` : "";
    return `${formatDuration(c.at).padStart(8)}  ${c.step}${on} ${state}${bytes}${detail}\n`;
  }).join("");
}

/**
 * Draws the live table in place on a terminal, at most a few times a second.
 */
export class TerminalView {
  #lines = 0;
  #last = 0;
  readonly #write: (text: string) => void;

  /** A view writing to `write` (a terminal). */
  constructor(write: (text: string) => void) {
    this.#write = write;
  }

  /** Redraws, unless it did so less than 250 ms ago (or `force`). */
  draw(live: LiveRun, force = false): void {
    const t = performance.now();
    if (!force && t - this.#last < 250) return;
    this.#last = t;
    const text = renderLiveTable(live);
    const up = this.#lines ? `\x1b[${this.#lines}F\x1b[J` : "";
    this.#lines = text.split("\n").length;
    this.#write(up + text + "\n");
  }
}
