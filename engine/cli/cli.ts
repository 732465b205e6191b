/**
 * The `thaw` command line.
 *
 * Paths typed by the user resolve against the directory they typed them in: `deno task` runs in
 * the project directory and passes the user's directory as `INIT_CWD`.
 *
 * @module
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { RunbookErrors, SimulationError, UsageError } from "../runbook/errors.ts";
import { readRunbook } from "../runbook/load.ts";
import { checkEnv } from "../runbook/env_check.ts";
import type { Strategy } from "../runbook/model.ts";
import { plan } from "../simulate/plan.ts";
import { renderPlan } from "./render.ts";
import { jsonSchema, STRATEGIES } from "../runbook/schema.ts";
import { simulate } from "../simulate/simulate.ts";
import { withLastMeasured } from "../service_level/last.ts";
import { didYouMean } from "../runbook/suggest.ts";
import {
  approve,
  cancel,
  findRun,
  liveRun,
  markDone,
  runbookOf,
  runState,
  status,
  storedEstimates,
  storedLastMeasured,
  storePath,
} from "./live.ts";
import { parseListen } from "../api/serve.ts";
import { serve, withListen } from "./serve.ts";
import { drill, expand, finishLive, writeReport } from "./reports.ts";
import { planPage } from "../pages/pages.ts";
import { checkDrillNeeds, renderSkipped } from "../live/drill_needs.ts";
import { logRoot, openStore, type Store, StoreError } from "../store/mod.ts";
import { EngineStopped } from "../live/lease.ts";
import { standby } from "./standby.ts";

/** Where the CLI writes and what it sees of its environment; tests pass their own. */
export interface CliContext {
  /** The user's working directory. */
  cwd: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** True when stdout is a terminal: live runs draw their table in place. */
  tty?: boolean;
}

const USAGE = `thaw: disaster-recovery runbooks that bring the service back before all data is home

usage: thaw COMMAND [FLAGS]

commands
  plan FILE                     validate; show the graph, critical path, lower bounds and the
                                simulated TTR/BTN of every strategy
  run FILE                      the real recovery
  drill [FILE|DIR]...           rehearse for real with the drill overrides (default: every
                                runbook in runbooks/); --simulate: in virtual time instead
  resume RUN_ID [--from STEP]   continue an interrupted or failed run (done steps are not run
                                again); --from: run STEP and everything after it again
  status [RUN_ID]               the runs in the store, newest first, or one run's report
  approve RUN_ID STEP           approve a step waiting for approval, or run again a step that
                                was running when its engine stopped
  done RUN_ID STEP              mark a waiting step done by hand (a person did it)
  cancel RUN_ID                 cancel a run (works from another process)
  standby                       stand by for the runs of a shared store (--store postgres://…):
                                take over a run whose engine died and carry it on
  serve                         the HTTP status API over the store (--listen, default
                                127.0.0.1:7070)
  schema [--output FILE]        print the JSON Schema of the runbook format
  help                          this text

flags
  --strategy serial|lazy|aggressive   override the runbook's strategy
  --var NAME=VALUE                    override a var (repeatable)
  --json                              the report(s) as JSON on stdout, one per line
  --report FILE                       also write the report(s) to FILE, in the format its
                                      extension names: .json, .html, .md (Markdown), .xml (JUnit)
  --html FILE                         plan: the simulated timeline of each strategy as a page
  --store PATH|URL                    the state store: an SQLite file or postgres://USER@HOST/DB
                                      (default $THAW_STORE, else .thaw/state.db here)
  --listen HOST:PORT                  serve the status API (run, drill, resume, serve)
  --token TOKEN                       the token approve and cancel need over HTTP
                                      (default: $THAW_TOKEN; none: changes are refused)

exit codes: 0 done and objectives met, 1 a step failed or the run was cancelled,
            2 invalid runbook or usage, 3 done but an objective was missed,
            4 the engine lost its run's lease (a standby took it over) or its store
              mid-run: it stopped its steps and changed nothing more`;

const FLAGS = {
  strategy: { type: "string" },
  var: { type: "string", multiple: true },
  json: { type: "boolean" },
  report: { type: "string" },
  html: { type: "string" },
  simulate: { type: "boolean" },
  output: { type: "string" },
  store: { type: "string" },
  listen: { type: "string" },
  token: { type: "string" },
  from: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const COMMANDS = [
  "plan",
  "drill",
  "run",
  "resume",
  "status",
  "approve",
  "done",
  "cancel",
  "serve",
  "standby",
  "schema",
  "help",
];

/**
 * Runs the CLI with `args` and returns its exit code.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * import assert from "node:assert/strict";
 * let out = "";
 * const code = await main(["schema"], { cwd: ".", stdout: (t) => (out += t), stderr: () => {} });
 * assert.equal(code, 0);
 * assert.equal(JSON.parse(out).title, "thaw runbook");
 * ```
 */
export async function main(args: string[], ctx: CliContext): Promise<number> {
  try {
    return await dispatch(args, ctx);
  } catch (e) {
    if (e instanceof UsageError) {
      ctx.stderr(`thaw: ${e.message}\n`);
      return 2;
    }
    if (e instanceof RunbookErrors || e instanceof SimulationError) {
      ctx.stderr(e.message + "\n");
      return 2;
    }
    if (e instanceof EngineStopped) {
      ctx.stderr(`thaw: ${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof StoreError) {
      ctx.stderr(`thaw: ${e.message}\n`);
      return 2;
    }
    const debug = Deno.env.get("THAW_DEBUG");
    ctx.stderr(
      `thaw: internal error: ${(e as Error)?.message ?? e}\n` +
        (debug ? `${(e as Error)?.stack}\n` : "(set THAW_DEBUG=1 for details)\n"),
    );
    return 1;
  }
}

function parse(args: string[]) {
  try {
    return parseArgs({ args, options: FLAGS, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = (e as Error).message;
    const flag = /'(-{1,2}[^' ]+)'/.exec(msg)?.[1];
    if (flag && /Unknown option/.test(msg)) {
      const name = flag.replace(/^-+/, "");
      const hint = didYouMean(name, Object.keys(FLAGS));
      throw new UsageError(`unknown flag ${flag}${hint.replace(/"([^"]+)"/, "--$1")}`);
    }
    throw new UsageError(msg.replace(/\s*To specify.*$/s, ""));
  }
}

async function dispatch(args: string[], ctx: CliContext): Promise<number> {
  const command = args[0];
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    (command === undefined ? ctx.stderr : ctx.stdout)(USAGE + "\n");
    return command === undefined ? 2 : 0;
  }
  const { values, positionals } = parse(args.slice(1));
  if (values.help) {
    ctx.stdout(USAGE + "\n");
    return 0;
  }
  const strategy = values.strategy;
  if (strategy !== undefined && !STRATEGIES.includes(strategy as Strategy)) {
    throw new UsageError(
      `--strategy ${strategy}: expected one of ${STRATEGIES.join(", ")}${
        didYouMean(strategy, STRATEGIES)
      }`,
    );
  }
  const vars: Record<string, string> = {};
  for (const v of values.var ?? []) {
    const eq = v.indexOf("=");
    if (eq <= 0) throw new UsageError(`--var ${v}: expected NAME=VALUE`);
    vars[v.slice(0, eq)] = v.slice(eq + 1);
  }
  const serving = ["run", "resume", "serve"].includes(command) ||
    (command === "drill" && !values.simulate);
  if ((values.listen !== undefined || values.token !== undefined) && !serving) {
    throw new UsageError(
      `--${values.listen !== undefined ? "listen" : "token"} serves the status API while runs ` +
        "go on: it goes with run, drill (live), resume or serve",
    );
  }
  if (values.listen !== undefined) parseListen(values.listen); // before anything is opened
  if (values.html !== undefined && command !== "plan") {
    throw new UsageError("--html goes with plan: thaw plan FILE --html FILE.html");
  }
  if (values.from !== undefined && command !== "resume") {
    throw new UsageError("--from goes with resume: thaw resume RUN_ID --from STEP");
  }
  const options = { strategy: strategy as Strategy | undefined, vars, json: values.json === true };
  switch (command) {
    case "schema": {
      const text = JSON.stringify(jsonSchema(), null, 2) + "\n";
      if (values.output) await Deno.writeTextFile(resolve(ctx.cwd, values.output), text);
      else ctx.stdout(text);
      return 0;
    }
    case "plan": {
      if (positionals.length !== 1) {
        throw new UsageError("plan takes one runbook file: thaw plan FILE");
      }
      const rb = await readRunbook(positionals[0]!, { cwd: ctx.cwd, vars });
      const p = plan(rb, await storedEstimates(storePath(ctx, values.store), rb));
      const chosen = options.strategy ?? rb.strategy;
      const shown = { ...p, strategy: chosen };
      ctx.stdout((options.json ? JSON.stringify(shown) : renderPlan(shown)) + "\n");
      await writeReport(ctx, values.report, [p.simulated[chosen]]);
      if (values.html) {
        await Deno.writeTextFile(resolve(ctx.cwd, values.html), planPage(p, rb.name, chosen));
      }
      return 0;
    }
    case "drill": {
      const files = await expand(positionals.length ? positionals : ["runbooks"], ctx.cwd);
      if (!values.simulate) {
        const { ready, skipped } = await checkDrillNeeds(files, ctx.cwd);
        ctx.stderr(renderSkipped(skipped));
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
                  liveRun(
                    ctx,
                    store,
                    rb,
                    { ...options, store: values.store, listening: url },
                    logs,
                  ),
              )),
        );
        if (ready.length) ctx.stderr(renderSkipped(skipped)); // again, below the reports
        return code;
      }
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
    case "run": {
      if (positionals.length !== 1) {
        throw new UsageError("run takes one runbook file: thaw run FILE");
      }
      const rb = await readRunbook(positionals[0]!, { cwd: ctx.cwd, vars });
      checkEnv(rb, Deno.env.toObject()); // before the store is opened: a refused run leaves nothing
      return await withStore(ctx, values.store, async (store, logs) => {
        const report = await withListen(
          ctx,
          store,
          values,
          (url) =>
            liveRun(ctx, store, rb, { ...options, store: values.store, listening: url }, logs),
        );
        return finishLive(ctx, [report], options.json, values.report);
      });
    }
    case "resume": {
      if (positionals.length !== 1) {
        throw new UsageError("resume takes a run id: thaw resume RUN_ID [--from STEP]");
      }
      const from = values.from;
      return await withStore(ctx, values.store, async (store, logs) => {
        const run = await findRun(store, positionals[0]!);
        const state = runState(run);
        if (state === "running") {
          throw new UsageError(
            `run ${run.id} is still running (engine pid ${run.pid} on ${run.host})`,
          );
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
    case "status":
      return await withStore(
        ctx,
        values.store,
        (store) => status(ctx, store, positionals[0], options.json),
      );
    case "approve":
      if (positionals.length !== 2) {
        throw new UsageError("approve takes a run id and a step: thaw approve RUN_ID STEP");
      }
      return await withStore(
        ctx,
        values.store,
        (store) => approve(ctx, store, positionals[0]!, positionals[1]!),
      );
    case "done":
      if (positionals.length !== 2) {
        throw new UsageError("done takes a run id and a step: thaw done RUN_ID STEP");
      }
      return await withStore(
        ctx,
        values.store,
        (store) => markDone(ctx, store, positionals[0]!, positionals[1]!),
      );
    case "cancel":
      if (positionals.length !== 1) {
        throw new UsageError("cancel takes a run id: thaw cancel RUN_ID");
      }
      return await withStore(ctx, values.store, (store) => cancel(ctx, store, positionals[0]!));
    case "standby":
      if (positionals.length) throw new UsageError("standby takes no arguments: thaw standby");
      return await withStore(ctx, values.store, (store, logs) => standby(ctx, store, logs));
    case "serve":
      if (positionals.length) throw new UsageError("serve takes no arguments: thaw serve");
      return await withStore(ctx, values.store, (store) => serve(ctx, store, values));
    default:
      throw new UsageError(
        `unknown command "${command}"${didYouMean(command, COMMANDS)} (thaw help lists them)`,
      );
  }
}

/** Opens the store for a command, and closes it after. */
async function withStore(
  ctx: CliContext,
  flag: string | undefined,
  body: (store: Store, logs: string) => Promise<number>,
): Promise<number> {
  const path = storePath(ctx, flag);
  const store = await openStore(path);
  try {
    return await body(store, logRoot(path, ctx.cwd));
  } finally {
    await store.close();
  }
}
