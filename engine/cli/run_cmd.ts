/**
 * `thaw run FILE` (the real recovery) and `thaw resume RUN_ID [--from STEP]` (an interrupted,
 * failed or cancelled run carried on: done steps are not run again), each with the status API
 * beside it on `--listen`.
 *
 * @module
 */
import { checkEnv } from "../runbook/env_check.ts";
import { UsageError } from "../runbook/errors.ts";
import { readRunbook } from "../runbook/load.ts";
import type { Strategy } from "../runbook/model.ts";
import { didYouMean } from "../runbook/suggest.ts";
import { findRun, runbookOf, stateOf } from "../live/runs.ts";
import type { Invocation } from "./args.ts";
import type { CliContext } from "./cli.ts";
import { liveRun } from "./live.ts";
import { finishLive } from "./reports.ts";
import { withListen } from "./serve.ts";
import { withStore } from "./store_open.ts";

/** `thaw run FILE`. */
export async function runCommand(inv: Invocation, ctx: CliContext): Promise<number> {
  const { positionals, values, options } = inv;
  if (positionals.length !== 1) {
    throw new UsageError("run takes one runbook file: thaw run FILE");
  }
  const rb = await readRunbook(positionals[0]!, { cwd: ctx.cwd, vars: options.vars });
  checkEnv(rb, Deno.env.toObject()); // before the store is opened: a refused run leaves nothing
  return await withStore(ctx, values.store, async (store, logs) => {
    const report = await withListen(
      ctx,
      store,
      values,
      (url) => liveRun(ctx, store, rb, { ...options, store: values.store, listening: url }, logs),
    );
    return finishLive(ctx, [report], options.json, values.report);
  });
}

/** `thaw resume RUN_ID [--from STEP]`. */
export async function resumeCommand(inv: Invocation, ctx: CliContext): Promise<number> {
  const { positionals, values, options } = inv;
  if (positionals.length !== 1) {
    throw new UsageError("resume takes a run id: thaw resume RUN_ID [--from STEP]");
  }
  const from = values.from;
  return await withStore(ctx, values.store, async (store, logs) => {
    const run = await findRun(store, positionals[0]!);
    const state = await stateOf(store, run);
    if (state === "running") {
      throw new UsageError(`run ${run.id} is still running (engine pid ${run.pid} on ${run.host})`);
    }
    if (from !== undefined && !run.steps.includes(from)) {
      throw new UsageError(
        `--from ${from}: run ${run.id} has no such step${didYouMean(from, run.steps)}`,
      );
    }
    if (state === "done" && from === undefined) {
      throw new UsageError(
        `run ${run.id} is done; there is nothing to resume (--from STEP runs a step again)`,
      );
    }
    const rb = await runbookOf(run);
    const flags = {
      ...options,
      strategy: options.strategy ?? (run.strategy as Strategy),
      vars: { ...run.vars },
      from,
    };
    const report = await withListen(
      ctx,
      store,
      values,
      (url) => liveRun(ctx, store, rb, { ...flags, listening: url }, logs, run),
    );
    return finishLive(ctx, [report], options.json, values.report);
  });
}
