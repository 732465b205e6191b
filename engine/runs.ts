/**
 * Runs as seen from outside their engine: their state and summary, and steering them (approving a
 * step, cancelling the run) through the store, which the engine reads every turn of its loop. The
 * CLI (`thaw status`, `thaw approve`, `thaw cancel`) and the HTTP API share these functions.
 *
 * @module
 */
import { hostname } from "node:os";
import { UsageError } from "./errors.ts";
import { dirname } from "node:path";
import { removePartials, stopProcesses } from "./live_state.ts";
import { readRunbook } from "./load.ts";
import type { Runbook } from "./model.ts";
import type { RunRecord, RunState, Store } from "./store/types.ts";
import { didYouMean } from "./suggest.ts";
import { processAlive } from "../steps/process.ts";

/** How long a running engine may go without a heartbeat before its run counts as interrupted. */
export const STALE_MS = 60000;

/**
 * A request about a run that cannot be honoured: the run or step does not exist (`404`), or the
 * run is not in a state that allows it (`409`). A {@link UsageError}, so the CLI prints it and
 * exits 2; the HTTP API answers with `status`.
 *
 * @example
 * ```ts
 * import { SteerError } from "./runs.ts";
 * import { UsageError } from "./errors.ts";
 * const e = new SteerError(404, "no run 01J in this store");
 * console.assert(e instanceof UsageError && e.status === 404);
 * ```
 */
export class SteerError extends UsageError {
  /** The HTTP status that says what went wrong. */
  readonly status: 404 | 409;
  /** Builds the error. */
  constructor(status: 404 | 409, message: string) {
    super(message);
    this.name = "SteerError";
    this.status = status;
  }
}

/**
 * The state of a run, telling an interrupted run (its engine is gone) from a running one: on the
 * engine's host its process tells, elsewhere its heartbeat does.
 */
export function runState(run: RunRecord, now = Date.now()): RunState {
  if (run.state !== "running") return run.state;
  const stale = now - run.heartbeatAt;
  if (run.host === hostname()) {
    return processAlive(run.pid) && stale < STALE_MS ? "running" : "interrupted";
  }
  return stale > STALE_MS ? "interrupted" : "running";
}

/** A run as `thaw status --json` and `GET /runs` list it. */
export interface RunSummary {
  readonly run: string;
  readonly runbook: string;
  readonly mode: "live";
  readonly state: RunState;
  /** True for `thaw drill`. */
  readonly drill: boolean;
  /** met, missed, failed or cancelled, once ended. */
  readonly outcome: string | null;
  /** ISO 8601 times. */
  readonly started: string;
  readonly ended: string | null;
}

/** The summary of `run` as listed. */
export function runSummary(run: RunRecord, now = Date.now()): RunSummary {
  return {
    run: run.id,
    runbook: run.runbook,
    mode: run.mode,
    state: runState(run, now),
    drill: run.drill,
    outcome: run.outcome,
    started: new Date(run.startedAt).toISOString(),
    ended: run.endedAt === null ? null : new Date(run.endedAt).toISOString(),
  };
}

/**
 * The run `id`; with `prefix`, also the one run whose id starts with it (as the CLI allows).
 *
 * @throws {SteerError} 404 naming the closest ids.
 */
export async function findRun(store: Store, id: string, prefix = true): Promise<RunRecord> {
  const run = await store.getRun(id);
  if (run) return run;
  const ids = (await store.listRuns(200)).map((r) => r.id);
  if (prefix) {
    const matches = ids.filter((x) => x.startsWith(id.toUpperCase()));
    if (matches.length === 1) return (await store.getRun(matches[0]!))!;
  }
  throw new SteerError(404, `no run ${id} in this store${didYouMean(id, ids)}`);
}

/**
 * Asks the engine of `run` to approve `step`. An approval given before the step asks for it
 * stands: the step goes ahead without waiting.
 *
 * @throws {SteerError} 404 when the run has no such step, 409 when the run is not running.
 */
export async function requestApproval(store: Store, run: RunRecord, step: string): Promise<void> {
  if (!run.steps.includes(step)) {
    throw new SteerError(404, `run ${run.id} has no step "${step}"${didYouMean(step, run.steps)}`);
  }
  const state = runState(run);
  if (state !== "running") {
    throw new SteerError(409, `run ${run.id} is ${state}; there is nothing to approve`);
  }
  await store.addCommand(run.id, "approve", step);
}

/**
 * Cancels `run`. A running run is asked through the store, and this waits up to `waitMs` for its
 * engine to confirm (it stops the steps' processes and removes partial data). An interrupted run
 * has no engine: its recorded processes are stopped and it is marked cancelled here.
 *
 * @returns the run's state after: `cancelled`, or still `running` if the engine has not
 * confirmed within `waitMs`.
 * @throws {SteerError} 409 when the run has already ended.
 */
export async function requestCancel(
  store: Store,
  run: RunRecord,
  waitMs: number,
): Promise<RunState> {
  const state = runState(run);
  if (state === "interrupted") {
    await stopProcesses(store, run.id, 2000);
    const done = new Set(
      (await store.steps(run.id)).filter((s) => s.state === "done").map((s) => s.step),
    );
    const runbook = await runbookOf(run).catch(() => undefined);
    if (runbook) await removePartials(runbook, run.id, (id) => done.has(id));
    await store.updateRun(run.id, {
      state: "cancelled",
      outcome: "cancelled",
      endedAt: Date.now(),
    });
    return "cancelled";
  }
  if (state !== "running") throw new SteerError(409, `run ${run.id} has already ended: ${state}`);
  await store.addCommand(run.id, "cancel");
  for (let waited = 0; waited < waitMs; waited += 100) {
    await new Promise((r) => setTimeout(r, 100));
    const now = await store.getRun(run.id);
    if (now && now.state !== "running") return now.state;
  }
  return "running";
}

/** Loads the runbook of a stored run again, as it was started. */
export async function runbookOf(run: RunRecord): Promise<Runbook> {
  return await readRunbook(run.file, {
    cwd: dirname(run.file),
    vars: { ...run.vars },
    drill: run.drill,
  });
}
