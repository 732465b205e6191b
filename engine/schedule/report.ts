/**
 * The report of a run (the `--json` shape of the spec) and its measures: TTR, BTN, milestones,
 * objectives met or missed.
 *
 * @module
 */
import { FETCH, type Graph } from "../plan/graph.ts";
import type { Runbook, Strategy } from "../runbook/model.ts";
import type { Recorder } from "./recorder.ts";
import type { StepState } from "./scheduler.ts";

/** How a run ended. */
export type Outcome = "met" | "missed" | "failed" | "cancelled";

/** One step in a report. Times are seconds from the start of the run. */
export interface StepReport {
  id: string;
  kind: "fetch" | "run";
  state: StepState;
  start_s: number | null;
  end_s: number | null;
  frozen_s: number;
  /** The milestone the step carries, if any. */
  milestone?: string;
  /** The host it runs on (`on:`); absent: the machine that runs thaw. */
  on?: string;
  /** Fetches: bytes brought home. */
  bytes?: number;
  /** Fetches: whether a frozen step demanded it. */
  demanded?: boolean;
  /**
   * Fetches: bytes that arrived before it was demanded (all of them if never demanded). Lazy
   * fetches: the bytes streamed (all but those read on demand).
   */
  prefetched_bytes?: number;
  /** Lazy fetches (revision 5): when attached (the steps that need it could start); `end_s` is home. */
  attached_s?: number | null;
  /** Lazy fetches: bytes fetched for reads of parts not yet home. */
  on_demand_bytes?: number;
  /** Lazy fetches: bytes streamed in the background. */
  streamed_bytes?: number;
  /**
   * Why the step waits for a person (its approval; it was running when its engine died), why it
   * failed (live runs), or a note on how it ended (done by hand; the fetch replaced what was at
   * `to`).
   */
  detail?: string;
}

/** The report of a run, live or simulated. */
export interface Report {
  runbook: string;
  run: string;
  mode: "live" | "simulated";
  strategy: Strategy;
  outcome: Outcome;
  ttr_s: number | null;
  btn_s: number | null;
  milestones: Record<string, number | null>;
  objectives: { rto_s?: number; btn_s?: number; milestones: Record<string, number> };
  /** Which objectives were missed, for people and scripts ("rto", "btn", "milestone:NAME"). */
  missed: string[];
  lower_bound: { ttr_s: number; btn_s: number };
  bytes: { total: number; on_demand: number; prefetched: number };
  steps: StepReport[];
  /**
   * Live runs: what the simulation predicted before the run, and what a serial restore would have
   * taken with the durations and sizes the run measured (null when they cannot be computed).
   */
  prediction?: {
    simulated: { ttr_s: number | null; btn_s: number | null } | null;
    serial: { ttr_s: number | null; btn_s: number | null } | null;
  };
}

/** What {@link buildReport} needs. */
export interface ReportInput {
  readonly runbook: Runbook;
  readonly graph: Graph;
  readonly lowerBound: { readonly ttr: number; readonly btn: number };
  readonly recorder: Recorder;
  readonly state: (i: number) => StepState;
  readonly mode: "live" | "simulated";
  readonly strategy: Strategy;
  readonly run?: string | undefined;
  /** Bytes a running fetch has so far (a live run's report while it goes on). */
  readonly inFlight?: (i: number) => number;
  /** Why step `i` waits for a person, if it does (a live run's report while it goes on). */
  readonly waiting?: (i: number) => string | undefined;
}

/**
 * The objectives a run missed (`rto`, `btn`, `milestone:NAME`): reached after its limit, or not
 * reached while `elapsed` (seconds so far; the run has ended by default) is past it.
 *
 * @example
 * ```ts
 * import { missedObjectives } from "./report.ts";
 * import assert from "node:assert/strict";
 * const run = { objectives: { rto_s: 60, milestones: {} }, ttr_s: null, btn_s: null, milestones: {} };
 * assert.equal(missedObjectives(run, 30).length, 0);
 * assert.equal(missedObjectives(run)[0], "rto");
 * ```
 */
export function missedObjectives(
  report: Pick<Report, "objectives" | "ttr_s" | "btn_s" | "milestones">,
  elapsed = Infinity,
): string[] {
  const late = (t: number | null | undefined, limit: number | undefined) =>
    limit !== undefined && (t === null || t === undefined ? elapsed > limit : t > limit + 1e-9);
  const o = report.objectives;
  const missed: string[] = [];
  if (late(report.ttr_s, o.rto_s)) missed.push("rto");
  if (late(report.btn_s, o.btn_s)) missed.push("btn");
  for (const [name, limit] of Object.entries(o.milestones)) {
    if (late(report.milestones[name], limit)) missed.push(`milestone:${name}`);
  }
  return missed;
}

/** Rounds seconds to the millisecond, as reports and the store keep them. */
export function sec(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Builds the report of a run from what its recorder saw. */
export function buildReport(input: ReportInput): Report {
  const { runbook, graph, recorder, state } = input;
  const n = graph.n;
  const steps: StepReport[] = new Array(n);
  let btn = 0, allDone = true, failed = false, cancelled = false;
  let total = 0, onDemand = 0;
  const milestoneEnd = new Map<string, number | null>();
  for (let i = 0; i < n; i++) {
    const step = runbook.steps[i]!;
    const r = stepReport(input, i);
    if (r.bytes !== undefined) {
      total += r.bytes;
      onDemand += r.bytes - r.prefetched_bytes!;
    }
    const end = recorder.end[i]!;
    steps[i] = r;
    const finished = state(i) === "done";
    if (finished) btn = Math.max(btn, end);
    else allDone = false;
    if (state(i) === "failed") failed = true;
    if (state(i) === "cancelled") cancelled = true;
    if (step.milestone !== undefined) {
      const prev = milestoneEnd.get(step.milestone);
      milestoneEnd.set(
        step.milestone,
        !finished || prev === null ? null : Math.max(prev ?? 0, end),
      );
    }
  }
  const milestones: Record<string, number | null> = {};
  let ttr: number | null = milestoneEnd.size ? 0 : null;
  for (const [name, t] of milestoneEnd) {
    milestones[name] = t === null ? null : sec(t);
    ttr = t === null || ttr === null ? null : Math.max(ttr, t);
  }
  const btnS = allDone ? sec(btn) : null;
  const ttrS = milestoneEnd.size ? (ttr === null ? null : sec(ttr)) : btnS;

  const o = runbook.objectives;
  const objectives: Report["objectives"] = { milestones: { ...o.milestones } };
  if (o.rto !== undefined) objectives.rto_s = o.rto;
  if (o.btn !== undefined) objectives.btn_s = o.btn;
  const missed = missedObjectives({ objectives, ttr_s: ttrS, btn_s: btnS, milestones });
  const outcome: Outcome = cancelled
    ? "cancelled"
    : failed
    ? "failed"
    : missed.length
    ? "missed"
    : "met";
  return {
    runbook: runbook.name,
    run: input.run ?? newRunId(),
    mode: input.mode,
    strategy: input.strategy,
    outcome,
    ttr_s: ttrS,
    btn_s: btnS,
    milestones,
    objectives,
    missed,
    lower_bound: { ttr_s: sec(input.lowerBound.ttr), btn_s: sec(input.lowerBound.btn) },
    bytes: { total, on_demand: onDemand, prefetched: total - onDemand },
    steps,
  };
}

/** Step `i`'s part of the report. */
function stepReport(input: ReportInput, i: number): StepReport {
  const { runbook, graph, recorder } = input;
  const step = runbook.steps[i]!;
  let st = input.state(i);
  // A drill-skipped step is skipped from the moment it would have run (it stands in for itself).
  if ((st === "done" || st === "running") && graph.skipped[i]) st = "skipped";
  const end = recorder.end[i]!, start = recorder.start[i]!;
  const r: StepReport = {
    id: step.id,
    kind: step.kind,
    state: st,
    start_s: Number.isNaN(start) ? null : sec(start),
    end_s: Number.isNaN(end) ? null : sec(end),
    frozen_s: sec(recorder.frozen[i]!),
  };
  if (step.milestone !== undefined) r.milestone = step.milestone;
  if (step.on !== undefined) r.on = step.on;
  const why = input.waiting?.(i);
  if (why) r.detail = why;
  if (graph.kind[i] === FETCH) {
    const running = st === "running" && input.inFlight !== undefined;
    const bytes = running ? input.inFlight!(i) : recorder.bytes[i]!;
    r.bytes = bytes;
    r.demanded = recorder.demanded[i] === 1;
    // Until demanded, what a running fetch brings is prefetched.
    r.prefetched_bytes = running && !r.demanded ? bytes : Math.min(bytes, recorder.prefetched[i]!);
    if (graph.lazy?.[i]) lazyReport(r, recorder, i);
  }
  return r;
}

/** A lazy fetch's part of its step report: attach time, bytes on demand and streamed. */
function lazyReport(r: StepReport, recorder: Recorder, i: number): void {
  const attached = recorder.attached[i]!;
  const bytes = r.bytes ?? 0;
  const onDemand = Math.min(bytes, recorder.onDemand[i]!);
  r.attached_s = Number.isNaN(attached) ? null : sec(attached);
  r.on_demand_bytes = onDemand;
  r.streamed_bytes = bytes - onDemand;
  r.prefetched_bytes = bytes - onDemand; // so the run's `bytes.on_demand` counts the reads
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/**
 * A new run id: a ULID (sortable by time, 26 characters).
 *
 * @example
 * ```ts
 * import { newRunId } from "./report.ts";
 * import assert from "node:assert/strict";
 * assert(/^[0-9A-HJKMNP-TV-Z]{26}$/.test(newRunId()));
 * ```
 */
export function newRunId(now = Date.now()): string {
  let time = "";
  for (let t = now, k = 0; k < 10; k++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
  const random = crypto.getRandomValues(new Uint8Array(16));
  let rand = "";
  for (let k = 0; k < 16; k++) rand += CROCKFORD[random[k]! % 32];
  return time + rand;
}

/** The exit code of `thaw` for a report: 0 met, 1 failed or cancelled, 3 missed. */
export function exitCode(report: Report): number {
  return report.outcome === "met" ? 0 : report.outcome === "missed" ? 3 : 1;
}
