/**
 * Between the store's records and the rows that hold them (the same for every dialect: flags
 * are written as booleans and read with {@link flag}), and the folding of step changes into a
 * step's current row.
 *
 * @module
 */
import type { Insertable, Selectable } from "kysely";
import { flag } from "./dialects/dialect.ts";
import type { ProgressTable, RunsTable, StepEventsTable, StepsTable } from "./migrations.ts";
import type {
  Command,
  FetchProgress,
  NewRun,
  RunPatch,
  RunRecord,
  StepChange,
  StepEvent,
  StepRecord,
  StepStateName,
} from "./types.ts";

/** Step states in which a step has ended. */
export const ENDED: ReadonlySet<StepStateName> = new Set([
  "done",
  "failed",
  "skipped",
  "cancelled",
]);

/** The row of a step before its first change (`seq` is that change's number). */
export function newStepRow(run: string, step: string, seq: number): StepsTable {
  return {
    run,
    step,
    state: "pending",
    start_s: null,
    end_s: null,
    frozen_s: 0,
    frozen_since: null,
    detail: null,
    first_seq: seq,
  };
}

/**
 * Folds one change into a step's row: entering `running` sets `start_s`; entering `frozen` sets
 * `frozen_since`; leaving `frozen` adds the time frozen to `frozen_s`; an ended state sets
 * `end_s` (any other state clears it); `detail` is the latest one given.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { fold, newStepRow } from "./rows.ts";
 * let row = fold(newStepRow("r1", "start", 1), { step: "start", state: "frozen", at: 2 });
 * row = fold(row, { step: "start", state: "running", at: 9 });
 * equal(row.frozen_s, 7);
 * equal(row.start_s, 9);
 * ```
 */
export function fold(prev: StepsTable, change: StepChange): StepsTable {
  const row = { ...prev };
  if (row.state === "frozen" && change.state !== "frozen" && row.frozen_since !== null) {
    row.frozen_s += Math.max(0, change.at - row.frozen_since);
    row.frozen_since = null;
  }
  if (change.state === "frozen" && row.frozen_since === null) row.frozen_since = change.at;
  if (change.state === "running") row.start_s = change.at;
  row.end_s = ENDED.has(change.state) ? change.at : null;
  if (change.detail !== undefined) row.detail = change.detail;
  row.state = change.state;
  return row;
}

/** The row of a new run: `running`, its heartbeat at its start. */
export function runRow(run: NewRun): Insertable<RunsTable> {
  return {
    id: run.id,
    runbook: run.runbook,
    file: run.file,
    file_sha256: run.fileSha256,
    runbook_text: run.runbookText ?? null,
    mode: run.mode,
    drill: run.drill,
    strategy: run.strategy,
    vars: JSON.stringify(run.vars),
    steps: JSON.stringify(run.steps),
    started_at: run.startedAt,
    pid: run.pid,
    host: run.host,
    state: "running",
    heartbeat_at: run.startedAt,
    ended_at: null,
    report: null,
    outcome: null,
  };
}

/** The columns a patch sets (none for an empty patch). */
export function runSet(patch: RunPatch): Partial<Insertable<RunsTable>> {
  const set: Partial<Insertable<RunsTable>> = {};
  if (patch.state !== undefined) set.state = patch.state;
  if (patch.heartbeatAt !== undefined) set.heartbeat_at = patch.heartbeatAt;
  if (patch.endedAt !== undefined) set.ended_at = patch.endedAt;
  if (patch.report !== undefined) set.report = patch.report;
  if (patch.outcome !== undefined) set.outcome = patch.outcome;
  if (patch.pid !== undefined) set.pid = patch.pid;
  if (patch.host !== undefined) set.host = patch.host;
  return set;
}

/** A run's record from its row. */
export function toRun(r: Selectable<RunsTable>): RunRecord {
  return {
    id: r.id,
    runbook: r.runbook,
    file: r.file,
    fileSha256: r.file_sha256,
    mode: r.mode as RunRecord["mode"],
    drill: flag(r.drill),
    strategy: r.strategy,
    vars: JSON.parse(r.vars),
    steps: JSON.parse(r.steps),
    startedAt: Number(r.started_at),
    pid: r.pid,
    host: r.host,
    state: r.state as RunRecord["state"],
    heartbeatAt: r.heartbeat_at,
    endedAt: r.ended_at,
    report: r.report,
    outcome: r.outcome,
    ...(r.runbook_text === null ? {} : { runbookText: r.runbook_text }),
  };
}

/** A stored change from its row (no `detail` key when it had none). */
export function toEvent(r: StepEventsTable): StepEvent {
  return {
    seq: r.seq,
    step: r.step,
    state: r.state as StepStateName,
    at: r.at,
    ...(r.detail === null ? {} : { detail: r.detail }),
  };
}

/** A step's record from its row. */
export function toStep(r: StepsTable): StepRecord {
  return {
    step: r.step,
    state: r.state as StepStateName,
    startS: r.start_s,
    endS: r.end_s,
    frozenS: r.frozen_s,
    detail: r.detail,
  };
}

/** The columns of a progress sample, but its run and step. */
export function progressValues(
  p: FetchProgress,
): Omit<Insertable<ProgressTable>, "run" | "step"> {
  return {
    bytes: p.bytes,
    total: p.total,
    prefetched: p.prefetched,
    demanded: p.demanded,
    source: p.source,
    at: p.at,
    moving_s: p.moving !== undefined && Number.isFinite(p.moving) ? p.moving : null,
  };
}

/** A progress sample from its row. */
export function toProgress(r: Selectable<ProgressTable>): FetchProgress {
  const { run: _, demanded, moving_s, ...rest } = r;
  return { ...rest, demanded: flag(demanded), ...(moving_s === null ? {} : { moving: moving_s }) };
}

/** A command from its row. */
export function toCommand(
  r: { id: number; run: string; kind: string; step: string | null; at: number },
): Command {
  return { id: Number(r.id), run: r.run, kind: r.kind as Command["kind"], step: r.step, at: r.at };
}
