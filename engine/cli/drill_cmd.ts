/**
 * `thaw drill [FILE|DIR]...`: every runbook rehearsed with its drill overrides, for real (the
 * runbooks whose drill needs are missing here are skipped, and said so), or in virtual time with
 * `--simulate`. The live engine is loaded only for a live drill, the simulator only for a
 * simulated one.
 *
 * @module
 */
import { checkDrillNeeds, renderSkipped } from "../live/drill_needs.ts";
import type { Invocation } from "./args.ts";
import type { CliContext } from "./cli.ts";
import { drill, expand } from "./reports.ts";
import { withListen } from "./serve.ts";
import { storedEstimates, storedLastMeasured, storePath, withStore } from "./store_open.ts";

/** `thaw drill [FILE|DIR]... [--simulate]`. */
export async function drillCommand(inv: Invocation, ctx: CliContext): Promise<number> {
  const files = await expand(inv.positionals.length ? inv.positionals : ["runbooks"], ctx.cwd);
  return inv.values.simulate ? await simulated(inv, ctx, files) : await live(inv, ctx, files);
}

/** A live drill of each runbook whose drill needs this machine has. */
async function live(inv: Invocation, ctx: CliContext, files: string[]): Promise<number> {
  const { values, options } = inv;
  const { ready, skipped } = await checkDrillNeeds(files, ctx.cwd);
  ctx.stderr(renderSkipped(skipped));
  const { liveRun } = await import("./live.ts");
  const code = await withStore(
    ctx,
    values.store,
    (store, logs) =>
      withListen(ctx, store, values, (url) =>
        drill(
          ready,
          ctx,
          options,
          values.report,
          (rb) =>
            liveRun(ctx, store, rb, { ...options, store: values.store, listening: url }, logs),
        )),
  );
  if (ready.length) ctx.stderr(renderSkipped(skipped)); // again, below the reports
  return code;
}

/** A drill in virtual time, with the store's history for estimates when there is a store. */
async function simulated(inv: Invocation, ctx: CliContext, files: string[]): Promise<number> {
  const { values, options } = inv;
  const { simulate } = await import("../simulate/simulate.ts");
  const { withLastMeasured } = await import("../service_level/last.ts");
  const path = storePath(ctx, values.store);
  return await drill(
    files,
    ctx,
    options,
    values.report,
    async (rb) =>
      withLastMeasured( // the last live drill's service level, marked so
        simulate(rb, {
          strategy: options.strategy,
          estimates: await storedEstimates(path, rb),
        }),
        await storedLastMeasured(path, rb),
      ),
  );
}
