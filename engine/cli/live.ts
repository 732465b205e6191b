/**
 * One runbook run live from the CLI (`run`, a live `drill`, `resume`, and a run a standby takes
 * over): the engine, its logs, the terminal view or plain lines, notifications, Ctrl-C. Loaded
 * only by the commands that run something.
 *
 * @module
 */
import { join } from "node:path";
import { UsageError } from "../runbook/errors.ts";
import { checkEnv } from "../runbook/env_check.ts";
import { historyEstimates } from "../plan/history.ts";
import { runLive } from "../live/loop.ts";
import type { LeaseOptions } from "../live/lease.ts";
import { checkUsers } from "../live/user_check.ts";
import { renderChanges, TerminalView } from "./live_view.ts";
import type { Runbook, Strategy } from "../runbook/model.ts";
import { newRunId, type Report } from "../schedule/report.ts";
import { STORE_DIR_MODE, STORE_FILE_MODE } from "../store/sqlite_file.ts";
import type { RunRecord, Store } from "../store/types.ts";

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
  const sha = await sha256Hex(rb.text);
  if (resume && resume.fileSha256 !== sha) {
    throw new UsageError(
      `${rb.file} changed since run ${resume.id} started; resume needs the runbook as it was ` +
        `(or start a new run with thaw ${resume.drill ? "drill" : "run"})`,
    );
  }
  const estimates = await historyEstimates(store, rb);
  const run = resume?.id ?? newRunId();
  const logs = new StepLogs(join(logRoot, run));
  // `notify:` resolved before anything runs (an address that is no URL is exit 2).
  // Loaded only for a runbook that notifies (a few ms of start-up otherwise).
  const alerts = rb.notify.length === 0
    ? undefined
    : (await import("../notify/live_alerts.ts")).LiveAlerts.open({
      runbook: rb,
      run,
      logDir: logs.dir,
      stderr: ctx.stderr,
      strategy: flags.strategy,
      estimates,
      page: flags.listening && `${flags.listening}/runs/${encodeURIComponent(run)}/page`,
      ...(resume && rb.notify.length ? { history: await store.stepEvents(run) } : {}),
    });
  const ac = new AbortController();
  const unlisten = cancelOnSignals(ac); // Ctrl-C cancels the run
  const view = !flags.json && ctx.tty ? new TerminalView(ctx.stdout) : undefined;
  const plain = flags.json ? ctx.stderr : ctx.stdout;
  // Said once the run exists: a runbook refused before it starts (exit 2) leaves no run behind.
  const onStart = async () => {
    await Deno.mkdir(logs.dir, { recursive: true, mode: STORE_DIR_MODE }); // owner-only, as the store
    if (flags.json) return;
    plain(
      `${rb.name}: ${resume ? "resuming" : "starting"} run ${run}` +
        `${rb.drill ? " (drill)" : ""}; logs in ${logs.dir}\n`,
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
      logFile: (step) => logs.path(step), // services append to their log themselves: they outlive thaw
      output: (step) => (chunk) => logs.write(step, chunk),
      onChange: (live, changes) => {
        if (view) view.draw(live);
        else if (changes.length) plain(renderChanges(live, changes));
        alerts?.onChange(live, changes);
      },
    });
    await alerts?.end(report, live.elapsed, live); // within 10 s; what failed is said on stderr
    return report; // with its `prediction`, made by the engine
  } finally {
    unlisten();
    logs.close();
    await alerts?.close();
  }
}

/** The sha256 of `text` (lower-case hex), by Web Crypto: no `node:crypto` to load for it. */
async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Aborts `ac` on SIGINT or SIGTERM until the function returned is called. A hang-up (SIGHUP: the
 * terminal or ssh session thaw runs in is gone) neither cancels the run nor ends the engine: the
 * recovery goes on, and what it would print to that terminal is dropped (`main.ts`).
 */
function cancelOnSignals(ac: AbortController): () => void {
  const onSignal = () => ac.abort();
  const onHangUp = () => {};
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGHUP", onHangUp);
  return () => {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGHUP", onHangUp);
  };
}

/** The steps' log files of one run (`DIR/STEP.log`), each opened on its step's first output. */
class StepLogs {
  readonly dir: string;
  #files = new Map<string, Deno.FsFile>();

  constructor(dir: string) {
    this.dir = dir;
  }

  path(step: string): string {
    return join(this.dir, `${step}.log`);
  }

  /** Appends `chunk` to the log of `step` (opened on the first output only: most print nothing). */
  write(step: string, chunk: Uint8Array): void {
    let f = this.#files.get(step);
    if (!f) {
      f = Deno.openSync(this.path(step), { create: true, append: true, mode: STORE_FILE_MODE });
      this.#files.set(step, f);
    }
    f.writeSync(chunk);
  }

  close(): void {
    for (const f of this.#files.values()) f.close();
    this.#files.clear();
  }
}
