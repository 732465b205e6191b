/**
 * What the terminal shows while a run goes on: a table redrawn in place on a terminal, plain
 * lines (one per step state change) otherwise.
 *
 * @module
 */
import type { Runbook, Strategy } from "./model.ts";
import type { Report } from "./report.ts";
import type { StepChange, StepStateName } from "./store/types.ts";
import { table } from "./render.ts";
import { formatBytes, formatDuration } from "./units.ts";

/** A step as the live view shows it. */
export interface LiveStep {
  readonly id: string;
  readonly kind: "run" | "fetch";
  state: StepStateName;
  /** What a frozen step waits for, why a step failed, an approval it waits for. */
  detail: string;
  /** Fetches: bytes so far, total when known, achieved rate (bytes/s). */
  bytes: number;
  total: number | null;
  rate: number;
  demanded: boolean;
}

/** A run in progress, as the live view and the HTTP API see it. */
export class LiveRun {
  readonly runbook: Runbook;
  readonly run: string;
  readonly strategy: Strategy;
  readonly steps: LiveStep[];
  /** Wall-clock ms of the start of the run. */
  readonly startedAt: number;
  /** Seconds since the start. */
  elapsed = 0;
  /** The report so far (updated every second or so, and at the end). */
  report: Report | null = null;

  /** @internal */
  constructor(runbook: Runbook, run: string, strategy: Strategy, startedAt: number) {
    this.runbook = runbook;
    this.run = run;
    this.strategy = strategy;
    this.startedAt = startedAt;
    this.steps = runbook.steps.map((s) => ({
      id: s.id,
      kind: s.kind,
      state: "pending",
      detail: "",
      bytes: 0,
      total: s.kind === "fetch" ? s.size ?? null : null,
      rate: 0,
      demanded: false,
    }));
  }
}

/** Most step rows in the live table; the rest are summarised. */
const MAX_ROWS = 30;

function fetchCell(s: LiveStep): string {
  const of = s.total !== null && s.total > 0 ? ` / ${formatBytes(s.total)}` : "";
  const pct = s.total ? ` ${Math.min(100, Math.floor((100 * s.bytes) / s.total))}%` : "";
  const rate = s.state === "running" && s.rate > 0 ? `  ${formatBytes(s.rate)}/s` : "";
  const why = s.demanded ? "  demanded" : s.state === "running" ? "  prefetch" : "";
  return `${formatBytes(s.bytes)}${of}${pct}${rate}${why}`;
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
 * import { parseRunbook } from "./load.ts";
 * import { LiveRun } from "./live.ts";
 * import { renderLiveTable } from "./live_view.ts";
 * const rb = parseRunbook("runbook: 1\nname: x\nsteps:\n  - {id: a, run: 'true'}\n", "x.yaml");
 * const text = renderLiveTable(new LiveRun(rb, "R1", "aggressive", Date.now()));
 * console.assert(text.includes("a") && text.includes("pending"));
 * ```
 */
export function renderLiveTable(live: LiveRun): string {
  const rows: string[][] = [["STEP", "KIND", "STATE", ""]];
  const order = live.steps.filter((s) => s.state !== "done" && s.state !== "pending");
  const rest = live.steps.filter((s) => s.state === "done" || s.state === "pending");
  const shown = [...order, ...rest].slice(0, MAX_ROWS);
  const index = new Map(live.steps.map((s, i) => [s, i]));
  shown.sort((a, b) => index.get(a)! - index.get(b)!);
  for (const s of shown) {
    const info = s.kind === "fetch" && s.state !== "pending" ? fetchCell(s) : "";
    const detail = s.detail ? (info ? `  ${s.detail}` : s.detail) : "";
    rows.push([s.id, s.kind, s.state, (info + detail).slice(0, 100)]);
  }
  const lines = table(rows).split("\n");
  if (live.steps.length > shown.length) {
    lines.push(`  ... and ${live.steps.length - shown.length} more steps`);
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
    const s = live.steps.find((x) => x.id === c.step);
    const bytes = s?.kind === "fetch" && c.state === "done" ? ` ${formatBytes(s.bytes)}` : "";
    const detail = c.detail ? `: ${c.detail}` : "";
    return `${formatDuration(c.at).padStart(8)}  ${c.step} ${c.state}${bytes}${detail}\n`;
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
