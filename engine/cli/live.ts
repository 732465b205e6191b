/**
 * The live commands of the CLI: `run`, `drill` (live), `resume`, `status`, `approve`, `cancel`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { UsageError } from "../runbook/errors.ts";
import { checkEnv } from "../runbook/env_check.ts";
import type { Estimates } from "../plan/graph.ts";
import { historyEstimates } from "../plan/history.ts";
import { runLive } from "../live/loop.ts";
import type { LeaseOptions } from "../live/lease.ts";
import { renderServices, runServices } from "../live/services.ts";
import { checkUsers } from "../live/user_check.ts";
import { lastMeasuredOf } from "../service_level/last.ts";
import { LiveAlerts } from "../notify/live_alerts.ts";
import { renderChanges, TerminalView } from "./live_view.ts";
import type { Runbook, Strategy } from "../runbook/model.ts";
import { renderReport, table as renderTable } from "./render.ts";
import { newRunId, type Report } from "../schedule/report.ts";
import { defaultStore, fileStorePath, openStore } from "../store/mod.ts";
import { STORE_DIR_MODE, STORE_FILE_MODE } from "../store/sqlite_file.ts";
import type { RunRecord, Store } from "../store/types.ts";
import {
  findRun,
  requestApproval,
  requestCancel,
  requestDone,
  runState,
  runSummary,
  storedRunbook,
  waitLines,
} from "../live/runs.ts";
import { formatDuration } from "../runbook/units.ts";

export { findRun, runbookOf, runState } from "../live/runs.ts";

/** What the live commands need from the CLI. */
export interface LiveCliContext {
  readonly cwd: string;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** True when stdout is a terminal (the live table is drawn in place). */
  readonly tty?: boolean;
}

/** Flags the live commands share. */
export interface LiveFlags {
  readonly strategy?: Strategy | undefined;
  readonly vars: Record<string, string>;
  readonly json: boolean;
  readonly store?: string | undefined;
  /** `resume --from STEP`: run STEP and everything downstream of it again. */
  readonly from?: string | undefined;
  /** Where `--listen` serves the API (`http://HOST:PORT`): notifications link the run's page. */
  readonly listening?: string | undefined;
}

/** Opens the store named by `--store` (default `.thaw/state.db` under the user's directory). */
export function storePath(ctx: LiveCliContext, flag: string | undefined): string {
  flag ??= defaultStore(); // $THAW_STORE, else .thaw/state.db
  // A URL stays a URL (`openStore` refuses the schemes it does not know): never a file "mysql:".
  if (flag && /^file:\/\//i.test(flag)) return fileStorePath(flag);
  if (flag && (/^[a-z][a-z0-9+.-]*:\/\//i.test(flag) || flag === ":memory:")) return flag;
  return resolve(ctx.cwd, flag);
}

/** The store, if its file exists (planning never creates one). */
export async function existingStore(path: string): Promise<Store | undefined> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) return await openStore(path); // refused if unknown
  try {
    await Deno.stat(path);
  } catch {
    return undefined;
  }
  return await openStore(path);
}

/** Estimates from the store's history of `runbook`, when there is a store. */
export async function storedEstimates(path: string, runbook: Runbook): Promise<Estimates> {
  const store = await existingStore(path);
  if (!store) return {};
  try {
    return await historyEstimates(store, runbook);
  } finally {
    await store.close();
  }
}

/** The last live drill's service level of `runbook`, for a simulated drill (`service_level/last.ts`). */
export async function storedLastMeasured(path: string, runbook: Runbook) {
  if (!runbook.serviceLevel.length) return undefined;
  const store = await existingStore(path);
  if (!store) return undefined;
  try {
    return await lastMeasuredOf(store, runbook.name, runbook.serviceLevel.map((p) => p.name));
  } finally {
    await store.close();
  }
}

/** Runs one runbook live (a new run, or a resumed one) and returns its report. */
export async function liveRun(
  ctx: LiveCliContext,
  store: Store,
  rb: Runbook,
  flags: LiveFlags,
  logRoot: string,
  resume?: RunRecord,
  lease: LeaseOptions = {},
): Promise<Report> {
  checkUsers(rb); // `user:` names a user this machine has, and thaw may become: exit 2 if not
  checkEnv(rb, Deno.env.toObject()); // an unset ${{ env.X }} is refused before the run exists
  const text = rb.text;
  const sha = createHash("sha256").update(text).digest("hex");
  if (resume && resume.fileSha256 !== sha) {
    throw new UsageError(
      `${rb.file} changed since run ${resume.id} started; resume needs the runbook as it was ` +
        `(or start a new run with thaw ${resume.drill ? "drill" : "run"})`,
    );
  }
  const estimates = await historyEstimates(store, rb);
  const run = resume?.id ?? newRunId();
  // `notify:` resolved before anything runs (an address that is no URL is exit 2).
  const alerts = LiveAlerts.open({
    runbook: rb,
    run,
    logDir: join(logRoot, run),
    stderr: ctx.stderr,
    strategy: flags.strategy,
    estimates,
    page: flags.listening && `${flags.listening}/runs/${encodeURIComponent(run)}/page`,
    ...(resume && rb.notify.length ? { history: await store.stepEvents(run) } : {}),
  });
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const view = !flags.json && ctx.tty ? new TerminalView(ctx.stdout) : undefined;
  const plain = flags.json ? ctx.stderr : ctx.stdout;
  const logs = new Map<string, Deno.FsFile>();
  const logDir = join(logRoot, run);
  // Said once the run exists: a runbook refused before it starts (exit 2) leaves no run behind.
  const onStart = async () => {
    await Deno.mkdir(logDir, { recursive: true, mode: STORE_DIR_MODE }); // owner-only, as the store
    if (flags.json) return;
    plain(
      `${rb.name}: ${resume ? "resuming" : "starting"} run ${run}` +
        `${rb.drill ? " (drill)" : ""}; logs in ${logDir}\n`,
    );
  };
  try {
    const { report, live } = await runLive({
      runbook: rb,
      store,
      run,
      lease, // held, renewed, fencing every write (a standby passes the lease it took)
      fileSha256: sha,
      strategy: flags.strategy,
      vars: flags.vars,
      estimates,
      signal: ac.signal,
      onStart,
      ...(resume ? { resume, from: flags.from } : {}),
      // Services append to their log themselves: they outlive thaw.
      logFile: (step) => join(logDir, `${step}.log`),
      output: (step) => (chunk) => {
        // Opened on the first output only: most steps print nothing.
        let f = logs.get(step);
        if (!f) {
          f = Deno.openSync(join(logDir, `${step}.log`), {
            create: true,
            append: true,
            mode: STORE_FILE_MODE,
          });
          logs.set(step, f);
        }
        f.writeSync(chunk);
      },
      onChange: (live, changes) => {
        if (view) view.draw(live);
        else if (changes.length) plain(renderChanges(live, changes));
        alerts?.onChange(live, changes);
      },
    });
    await alerts?.end(report, live.elapsed, live); // within 10 s; what failed is said on stderr
    return report; // with its `prediction`, made by the engine
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    for (const f of logs.values()) f.close();
    await alerts?.close();
  }
}

/** `thaw status [RUN_ID] [--json]`. */
export async function status(
  ctx: LiveCliContext,
  store: Store,
  id: string | undefined,
  json: boolean,
): Promise<number> {
  if (id === undefined) {
    const runs = await store.listRuns(50);
    const rows = runs.map((r) => runSummary(r));
    if (json) {
      ctx.stdout(JSON.stringify(rows) + "\n");
      return 0;
    }
    if (!rows.length) {
      ctx.stdout("no runs in this store yet (thaw run FILE or thaw drill start one)\n");
      return 0;
    }
    const table = [["RUN", "RUNBOOK", "KIND", "STATE", "OUTCOME", "STARTED"]];
    for (const r of rows) {
      table.push([
        r.run,
        r.runbook,
        r.drill ? "drill" : "run",
        r.state,
        r.outcome ?? "-",
        r.started,
      ]);
    }
    ctx.stdout(renderTable(table, "") + "\n");
    return 0;
  }
  const run = await findRun(store, id);
  const report = run.report ? JSON.parse(run.report) as Report : null;
  const services = await runServices(
    store,
    run.id,
    () => storedRunbook(run).catch(() => undefined),
  );
  if (json) {
    ctx.stdout(
      JSON.stringify({
        ...report,
        run: run.id,
        runbook: run.runbook,
        mode: run.mode,
        state: runState(run),
        services,
      }) + "\n",
    );
    return 0;
  }
  ctx.stdout(`run ${run.id} of ${run.runbook}: ${runState(run)}\n`);
  if (report) ctx.stdout(renderReport(report) + "\n");
  for (const line of await waitLines(store, run)) ctx.stdout(line + "\n");
  ctx.stdout(renderServices(services));
  return 0;
}

/** `thaw approve RUN_ID STEP`. */
export async function approve(
  ctx: LiveCliContext,
  store: Store,
  id: string,
  step: string,
): Promise<number> {
  const run = await findRun(store, id);
  await requestApproval(store, run, step);
  ctx.stdout(`approved ${step} in run ${run.id}\n`);
  return 0;
}

/** `thaw done RUN_ID STEP`: a person did the step's work; its dependents may start. */
export async function markDone(
  ctx: LiveCliContext,
  store: Store,
  id: string,
  step: string,
): Promise<number> {
  const run = await findRun(store, id);
  const how = await requestDone(store, run, step);
  ctx.stdout(
    how === "queued"
      ? `marked ${step} done in run ${run.id}; its dependents may start\n`
      : `marked ${step} done in run ${run.id} (${runState(run)}); thaw resume ${run.id} ` +
        "carries on after it\n",
  );
  return 0;
}

/** `thaw cancel RUN_ID`: through the store; the engine stops its steps within a moment. */
export async function cancel(ctx: LiveCliContext, store: Store, id: string): Promise<number> {
  const run = await findRun(store, id);
  const interrupted = runState(run) === "interrupted";
  const state = await requestCancel(store, run, 30000);
  if (interrupted) {
    ctx.stdout(`run ${run.id} was interrupted; marked cancelled\n`);
    return 0;
  }
  if (state !== "running") {
    ctx.stdout(`run ${run.id} ${state}\n`);
    return 0;
  }
  ctx.stderr(`thaw: asked run ${run.id} to cancel; its engine has not confirmed yet\n`);
  return 1;
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
