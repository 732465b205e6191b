/**
 * `thaw plan FILE` (the graph, the critical path, the bounds and the simulated TTR/BTN of every
 * strategy; `--html`: the simulated timelines as a page) and `thaw schema` (the runbook format's
 * JSON Schema).
 *
 * @module
 */
import { resolve } from "node:path";
import { UsageError } from "../runbook/errors.ts";
import { readRunbook } from "../runbook/load.ts";
import { jsonSchema } from "../runbook/schema.ts";
import { plan } from "../simulate/plan.ts";
import type { Invocation } from "./args.ts";
import type { CliContext } from "./cli.ts";
import { renderPlan } from "./render.ts";
import { writeReport } from "./reports.ts";
import { storedEstimates, storePath } from "./store_open.ts";

/** `thaw plan FILE [--strategy S] [--json] [--report FILE] [--html FILE]`. */
export async function planCommand(inv: Invocation, ctx: CliContext): Promise<number> {
  const { positionals, values, options } = inv;
  if (positionals.length !== 1) {
    throw new UsageError("plan takes one runbook file: thaw plan FILE");
  }
  const rb = await readRunbook(positionals[0]!, { cwd: ctx.cwd, vars: options.vars });
  const p = plan(rb, await storedEstimates(storePath(ctx, values.store), rb));
  const chosen = options.strategy ?? rb.strategy;
  const shown = { ...p, strategy: chosen };
  ctx.stdout((options.json ? JSON.stringify(shown) : renderPlan(shown)) + "\n");
  await writeReport(ctx, values.report, [p.simulated[chosen]]);
  if (values.html) {
    const { planPage } = await import("../pages/pages.ts"); // the pages, for this flag only
    await Deno.writeTextFile(resolve(ctx.cwd, values.html), planPage(p, rb.name, chosen));
  }
  return 0;
}

/** `thaw schema [--output FILE]`. */
export async function schemaCommand(inv: Invocation, ctx: CliContext): Promise<number> {
  const text = JSON.stringify(jsonSchema(), null, 2) + "\n";
  if (inv.values.output) await Deno.writeTextFile(resolve(ctx.cwd, inv.values.output), text);
  else ctx.stdout(text);
  return 0;
}
