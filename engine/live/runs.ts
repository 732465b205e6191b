/**
 * Runs as seen from outside their engine: their state and summary, and steering them (approving a
 * step, marking one done by hand, cancelling the run) through the store, which the engine reads
 * every turn of its loop. The CLI (`thaw status`, `thaw approve`, `thaw done`, `thaw cancel`) and
 * the HTTP API share these functions.
 *
 * @module
 */
import { hostname } from "node:os";
import { UsageError } from "../runbook/errors.ts";
import { dirname } from "node:path";
import { removePartials, stopProcesses } from "./state.ts";
import { stopStrays } from "./strays.ts";
import { RunHosts } from "./run_hosts.ts";
import { parseRunbook, readRunbook } from "../runbook/load.ts";
import type { Runbook } from "../runbook/model.ts";
import type { Report } from "../schedule/report.ts";
import type { Leases, LeaseState, RunRecord, RunState, Store } from "../store/types.ts";
import { didYouMean } from "../runbook/suggest.ts";
import { DONE_BY_HAND, waitsForPerson } from "../schedule/waits.ts";
import { processAlive } from "../../steps/process/process.ts";

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
 * import { UsageError } from "../runbook/errors.ts";
 * import assert from "node:assert/strict";
 * const e = new SteerError(404, "no run 01J in this store");
 * assert(e instanceof UsageError);
 * assert.equal(e.status, 404);
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
 * The state of a run, telling an interrupted run (its engine is gone) from a running one. With the
 * run's `lease` (as read from the store), an expired lease means interrupted (its engine died or
 * froze: `thaw resume` or a standby may take it over, and fencing stops the old engine's writes),
 * and so does a holder on this machine whose process is gone. Without a lease (engines that hold
 * none): on the engine's host its process tells, elsewhere its heartbeat does.
 */
export function runState(
  run: RunRecord,
  now = Date.now(),
  lease?: LeaseState | undefined,
): RunState {
  if (run.state !== "running") return run.state;
  if (lease) {
    if (lease.now >= lease.expiresAt) return "interrupted";
    const m = /^(.*):(\d+)$/.exec(lease.holder);
    return m && m[1] === hostname() && !processAlive(Number(m[2])) ? "interrupted" : "running";
  }
  const stale = now - run.heartbeatAt;
  if (run.host === hostname()) {
    return processAlive(run.pid) && stale < STALE_MS ? "running" : "interrupted";
  }
  return stale > STALE_MS ? "interrupted" : "running";
}

/** {@link runState} with the run's lease read from `store`, when it keeps leases. */
export async function stateOf(store: Store, run: RunRecord, now = Date.now()): Promise<RunState> {
  if (run.state !== "running") return run.state;
  const leases = store as Partial<Leases>;
  const lease = typeof leases.lease === "function"
    ? await leases.lease(run.id).catch(() => undefined)
    : undefined;
  return runState(run, now, lease);
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

/** The summary of `run` as listed (`state`: as {@link stateOf} gave it; else without its lease). */
export function runSummary(run: RunRecord, now = Date.now(), state?: RunState): RunSummary {
  return {
    run: run.id,
    runbook: run.runbook,
    mode: run.mode,
    state: state ?? runState(run, now),
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

/** The step `step` of `run`, or a 404 naming the closest ids. */
function checkStep(run: RunRecord, step: string): void {
  if (!run.steps.includes(step)) {
    throw new SteerError(404, `run ${run.id} has no step "${step}"${didYouMean(step, run.steps)}`);
  }
}

/** The stored state and detail of `step` (pending when it has no record yet). */
async function stepNow(store: Store, run: RunRecord, step: string) {
  const record = (await store.steps(run.id)).find((s) => s.step === step);
  return { state: record?.state ?? "pending", detail: record?.detail ?? null };
}

/** Whether `step` has an `approval` gate in the run's runbook (undefined: it cannot be read). */
async function hasApprovalGate(run: RunRecord, step: string): Promise<boolean | undefined> {
  const runbook = await storedRunbook(run).catch(() => undefined);
  const s = runbook?.steps.find((x) => x.id === step);
  return s === undefined ? undefined : s.approval !== undefined;
}

/**
 * Asks the engine of `run` to let `step` run: a step waiting for its approval, or one that was
 * running when its engine died (it runs again). An approval given before a gated step asks for
 * it stands: the step goes ahead without waiting.
 *
 * @throws {SteerError} 404 when the run has no such step; 409 when the run is not running, or
 * the step has no approval gate and does not wait, or has gone past its gate.
 */
export async function requestApproval(store: Store, run: RunRecord, step: string): Promise<void> {
  checkStep(run, step);
  const state = await stateOf(store, run);
  if (state !== "running") {
    throw new SteerError(
      409,
      state === "interrupted"
        ? `run ${run.id} is interrupted (its engine is gone); thaw resume ${run.id} first: a ` +
          "step that was running when the engine stopped then waits for thaw approve or thaw done"
        : `run ${run.id} is ${state}; there is nothing to approve`,
    );
  }
  const now = await stepNow(store, run, step);
  if (waitsForPerson(now.state, now.detail)) {
    await store.addCommand(run.id, "approve", step);
    return;
  }
  const gated = await hasApprovalGate(run, step);
  if (gated === false) {
    throw new SteerError(
      409,
      `step ${step} of run ${run.id} has no approval gate and does not wait for a person ` +
        `(it is ${now.state}); there is nothing to approve`,
    );
  }
  if (now.state !== "pending" && now.state !== "frozen") {
    throw new SteerError(
      409,
      `step ${step} of run ${run.id} is ${now.state}${
        now.state === "running" ? " (approved)" : ""
      }; ` +
        "it no longer waits for approval",
    );
  }
  await store.addCommand(run.id, "approve", step);
}

/**
 * Marks `step` of `run` done by hand (a person did its work); its dependents may start. A running
 * engine is asked through the store, for a step that waits for a person (its approval, or it was
 * running when its engine died). A run with no engine (interrupted, failed, cancelled) has the
 * step recorded done here; the next `thaw resume` keeps it done and starts what follows.
 *
 * @returns `queued` (the engine takes it within a moment) or `recorded`.
 * @throws {SteerError} 404 when the run has no such step; 409 when the run is done, the step is
 * done already, or a running engine's step does not wait for a person.
 */
export async function requestDone(
  store: Store,
  run: RunRecord,
  step: string,
): Promise<"queued" | "recorded"> {
  checkStep(run, step);
  const state = await stateOf(store, run);
  const now = await stepNow(store, run, step);
  if (state === "running") {
    if (!waitsForPerson(now.state, now.detail)) {
      throw new SteerError(
        409,
        `step ${step} of run ${run.id} is ${now.state} and does not wait for a person; thaw done ` +
          "marks done a step waiting for its approval, or one that was running when its engine " +
          "stopped",
      );
    }
    await store.addCommand(run.id, "done", step);
    return "queued";
  }
  if (state === "done") {
    throw new SteerError(409, `run ${run.id} is done; every step is done already`);
  }
  if (now.state === "done") {
    throw new SteerError(409, `step ${step} of run ${run.id} is done already`);
  }
  const at = Math.round(Date.now() - run.startedAt) / 1000;
  await store.recordSteps(run.id, [{ step, state: "done", at, detail: DONE_BY_HAND }]);
  if (run.report) {
    // The stored report says so too, until the run is resumed.
    const report = JSON.parse(run.report) as Report;
    const s = report.steps.find((x) => x.id === step);
    if (s) Object.assign(s, { state: "done", end_s: at, detail: DONE_BY_HAND });
    await store.updateRun(run.id, { report: JSON.stringify(report) });
  }
  return "recorded";
}

/**
 * Lines saying which steps of `run` wait for a person, and why (for `thaw status`); for a run
 * whose engine is gone, which run steps were running when it stopped.
 */
export async function waitLines(store: Store, run: RunRecord): Promise<string[]> {
  const steps = await store.steps(run.id);
  const state = await stateOf(store, run);
  const lines: string[] = [];
  for (const s of steps) {
    if (state === "running" && waitsForPerson(s.state, s.detail)) {
      lines.push(`${s.step} waits: ${s.detail}`);
    } else if (state === "interrupted" && waitsForPerson(s.state, s.detail) === "approval") {
      lines.push(`${s.step} waits for approval (again, once thaw resume ${run.id} runs)`);
    } else if (state === "interrupted" && s.state === "running") {
      lines.push(
        `${s.step} was running when the engine stopped: on thaw resume ${run.id} it runs again ` +
          "if it is idempotent, else it waits for thaw approve (run it again) or thaw done",
      );
    }
  }
  return lines;
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
  const state = await stateOf(store, run);
  if (state === "interrupted") {
    const done = new Set(
      (await store.steps(run.id)).filter((s) => s.state === "done").map((s) => s.step),
    );
    // A real run's ready services (done steps) keep running, as after any real run; a drill's stop.
    const runbook = await storedRunbook(run).catch(() => undefined);
    // Its hosts' groups and partial fetches are stopped and removed there (`on:`).
    await using hosts = new RunHosts(runbook?.hosts ?? {});
    const targetOf = (h: string) => runbook?.hosts[h] ? hosts.of(h) : undefined;
    await stopProcesses(store, run.id, 2000, (step) => !run.drill && done.has(step), targetOf);
    await stopStrays(run.id, 2000, (step) => !run.drill && done.has(step));
    if (runbook) {
      await removePartials(runbook, run.id, (id) => done.has(id), undefined, targetOf);
    }
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

/**
 * The runbook of a stored run as it ran: parsed from the text the store keeps with the run, or
 * (a run an older thaw recorded) read from its file. A view of the store needs no file.
 */
export async function storedRunbook(run: RunRecord): Promise<Runbook> {
  if (typeof run.runbookText !== "string") return await runbookOf(run);
  return parseRunbook(run.runbookText, run.file, {
    dir: dirname(run.file),
    vars: { ...run.vars },
    drill: run.drill,
  });
}

/** Loads the runbook of a stored run again from its file (resume checks it did not change). */
export async function runbookOf(run: RunRecord): Promise<Runbook> {
  return await readRunbook(run.file, {
    cwd: dirname(run.file),
    vars: { ...run.vars },
    drill: run.drill,
  });
}
