/**
 * The commands about runs already in the store: `thaw status [RUN_ID]` (the runs, newest first,
 * or one run's report), `thaw approve RUN_ID STEP`, `thaw done RUN_ID STEP` and `thaw cancel
 * RUN_ID`. They go through the store, so they work from any process; none loads the live engine.
 *
 * @module
 */
import { UsageError } from "../runbook/errors.ts";
import { renderServices, runServices } from "../live/services.ts";
import {
  findRun,
  requestApproval,
  requestCancel,
  requestDone,
  runSummary,
  stateOf,
  storedRunbook,
  waitLines,
} from "../live/runs.ts";
import type { Report } from "../schedule/report.ts";
import type { Store } from "../store/types.ts";
import type { Invocation } from "./args.ts";
import type { CliContext } from "./cli.ts";
import { renderReport, table as renderTable } from "./render.ts";
import { withStore } from "./store_open.ts";

/** Where these commands write. */
type RunsContext = Pick<CliContext, "stdout" | "stderr">;

/** `thaw status [RUN_ID] [--json]`. */
export function statusCommand(inv: Invocation, ctx: CliContext): Promise<number> {
  return withStore(
    ctx,
    inv.values.store,
    (store) => status(ctx, store, inv.positionals[0], inv.options.json),
  );
}

/** `thaw approve RUN_ID STEP`. */
export function approveCommand(inv: Invocation, ctx: CliContext): Promise<number> {
  const [id, step] = twoArgs(inv, "approve");
  return withStore(ctx, inv.values.store, (store) => approve(ctx, store, id, step));
}

/** `thaw done RUN_ID STEP`. */
export function doneCommand(inv: Invocation, ctx: CliContext): Promise<number> {
  const [id, step] = twoArgs(inv, "done");
  return withStore(ctx, inv.values.store, (store) => markDone(ctx, store, id, step));
}

/** `thaw cancel RUN_ID`. */
export function cancelCommand(inv: Invocation, ctx: CliContext): Promise<number> {
  if (inv.positionals.length !== 1) {
    throw new UsageError("cancel takes a run id: thaw cancel RUN_ID");
  }
  return withStore(ctx, inv.values.store, (store) => cancel(ctx, store, inv.positionals[0]!));
}

function twoArgs(inv: Invocation, command: "approve" | "done"): [string, string] {
  if (inv.positionals.length !== 2) {
    throw new UsageError(
      `${command} takes a run id and a step: thaw ${command} RUN_ID STEP`,
    );
  }
  return [inv.positionals[0]!, inv.positionals[1]!];
}

/** `thaw status [RUN_ID] [--json]`. */
async function status(
  ctx: RunsContext,
  store: Store,
  id: string | undefined,
  json: boolean,
): Promise<number> {
  if (id === undefined) {
    const runs = await store.listRuns(50);
    const rows = await Promise.all(
      runs.map(async (r) => runSummary(r, Date.now(), await stateOf(store, r))),
    );
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
  const stored = run.report ? JSON.parse(run.report) as Report : null;
  // As `GET /runs/ID`: no outcome until the run has ended (its stored report is the run so far).
  const report = stored && run.state === "running" ? { ...stored, outcome: null } : stored;
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
        state: await stateOf(store, run),
        services,
      }) + "\n",
    );
    return 0;
  }
  ctx.stdout(`run ${run.id} of ${run.runbook}: ${await stateOf(store, run)}\n`);
  if (report) ctx.stdout(renderReport(report) + "\n");
  for (const line of await waitLines(store, run)) ctx.stdout(line + "\n");
  ctx.stdout(renderServices(services));
  return 0;
}

/** `thaw approve RUN_ID STEP`. */
async function approve(
  ctx: RunsContext,
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
async function markDone(
  ctx: RunsContext,
  store: Store,
  id: string,
  step: string,
): Promise<number> {
  const run = await findRun(store, id);
  const how = await requestDone(store, run, step);
  ctx.stdout(
    how === "queued"
      ? `marked ${step} done in run ${run.id}; its dependents may start\n`
      : `marked ${step} done in run ${run.id} (${await stateOf(
        store,
        run,
      )}); thaw resume ${run.id} ` +
        "carries on after it\n",
  );
  return 0;
}

/** `thaw cancel RUN_ID`: through the store; the engine stops its steps within a moment. */
async function cancel(ctx: RunsContext, store: Store, id: string): Promise<number> {
  const run = await findRun(store, id);
  const interrupted = await stateOf(store, run) === "interrupted";
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
