/**
 * The `thaw` command line.
 *
 * Paths typed by the user resolve against the directory they typed them in: `deno task` runs in
 * the project directory and passes the user's directory as `INIT_CWD`.
 *
 * @module
 */
import { isAbsolute, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { RunbookErrors, SimulationError, UsageError } from "./errors.ts";
import { readRunbook } from "./load.ts";
import type { Runbook, Strategy } from "./model.ts";
import { plan } from "./plan.ts";
import { renderPlan, renderReport, renderSummary } from "./render.ts";
import { exitCode, type Report } from "./report.ts";
import { jsonSchema, STRATEGIES } from "./schema.ts";
import { simulate } from "./simulate.ts";
import { didYouMean } from "./suggest.ts";

/** Where the CLI writes and what it sees of its environment; tests pass their own. */
export interface CliContext {
  /** The user's working directory. */
  cwd: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const USAGE = `thaw: disaster-recovery runbooks that bring the service back before all data is home

usage: thaw COMMAND [FLAGS]

commands
  plan FILE                     validate; show the graph, critical path, lower bounds and the
                                simulated TTR/BTN of every strategy
  drill --simulate [FILE|DIR]...  rehearse in virtual time (default: every runbook in runbooks/)
  schema [--output FILE]        print the JSON Schema of the runbook format
  help                          this text

flags
  --strategy serial|lazy|aggressive   override the runbook's strategy
  --var NAME=VALUE                    override a var (repeatable)
  --json                              the report(s) as JSON on stdout, one per line
  --report FILE                       also write the report(s) to FILE

exit codes: 0 done and objectives met, 1 a step failed or the run was cancelled,
            2 invalid runbook or usage, 3 done but an objective was missed`;

const FLAGS = {
  strategy: { type: "string" },
  var: { type: "string", multiple: true },
  json: { type: "boolean" },
  report: { type: "string" },
  simulate: { type: "boolean" },
  output: { type: "string" },
  store: { type: "string" },
  listen: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Commands of the contract that arrive with the live engine. */
const LATER = ["run", "resume", "status", "approve", "cancel", "serve"];

/**
 * Runs the CLI with `args` and returns its exit code.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * let out = "";
 * const code = await main(["schema"], { cwd: ".", stdout: (t) => (out += t), stderr: () => {} });
 * console.assert(code === 0 && JSON.parse(out).title === "thaw runbook");
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
      const p = plan(rb);
      const chosen = options.strategy ?? rb.strategy;
      const shown = { ...p, strategy: chosen };
      ctx.stdout((options.json ? JSON.stringify(shown) : renderPlan(shown)) + "\n");
      await writeReport(ctx, values.report, [p.simulated[chosen]]);
      return 0;
    }
    case "drill": {
      if (!values.simulate) {
        throw new UsageError(
          "live drills are not available in this version yet; rehearse in virtual time with " +
            "thaw drill --simulate",
        );
      }
      const files = await expand(positionals.length ? positionals : ["runbooks"], ctx.cwd);
      return drill(files, ctx, options, values.report);
    }
    default:
      if (LATER.includes(command)) {
        throw new UsageError(
          `${command} needs the live engine, which is not in this version yet; ` +
            "see thaw plan and thaw drill --simulate",
        );
      }
      throw new UsageError(
        `unknown command "${command}"${
          didYouMean(command, ["plan", "drill", "schema", "help", ...LATER])
        } (thaw help lists them)`,
      );
  }
}

async function drill(
  files: string[],
  ctx: CliContext,
  options: { strategy: Strategy | undefined; vars: Record<string, string>; json: boolean },
  reportFile: string | undefined,
): Promise<number> {
  const reports: Report[] = [];
  const rows: { file: string; report?: Report; error?: string }[] = [];
  let code = 0;
  const worst = (c: number) => {
    // 2 (invalid) beats 1 (failed) beats 3 (missed) beats 0.
    const order = [0, 3, 1, 2];
    code = order.indexOf(c) > order.indexOf(code) ? c : code;
  };
  for (const file of files) {
    let rb: Runbook;
    let report: Report;
    try {
      rb = await readRunbook(file, { cwd: ctx.cwd, vars: options.vars, drill: true });
      report = simulate(rb, { strategy: options.strategy });
    } catch (e) {
      if (!(e instanceof RunbookErrors || e instanceof SimulationError)) throw e;
      ctx.stderr(e.message + "\n");
      rows.push({ file, error: "invalid" });
      worst(2);
      continue;
    }
    reports.push(report);
    rows.push({ file, report });
    worst(exitCode(report));
    if (options.json) ctx.stdout(JSON.stringify(report) + "\n");
    else ctx.stdout((rows.length > 1 ? "\n" : "") + renderReport(report) + "\n");
  }
  if (!options.json && files.length > 1) ctx.stdout("\n" + renderSummary(rows) + "\n");
  await writeReport(ctx, reportFile, reports);
  return code;
}

async function writeReport(ctx: CliContext, file: string | undefined, reports: Report[]) {
  if (!file) return;
  const text = reports.length === 1
    ? JSON.stringify(reports[0], null, 2) + "\n"
    : reports.map((r) => JSON.stringify(r)).join("\n") + "\n";
  await Deno.writeTextFile(resolve(ctx.cwd, file), text);
}

/** Expands directories into the runbooks under them (`*.yaml`, `*.yml`), sorted. */
export async function expand(paths: string[], cwd: string): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const full = isAbsolute(p) ? p : resolve(cwd, p);
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(full);
    } catch {
      throw new UsageError(`${p}: no such file or directory`);
    }
    if (!info.isDirectory) {
      out.push(p);
      continue;
    }
    const found: string[] = [];
    const walk = async (dir: string) => {
      for await (const e of Deno.readDir(dir)) {
        const child = join(dir, e.name);
        if (e.isDirectory && !e.name.startsWith(".")) await walk(child);
        else if (e.isFile && /\.ya?ml$/.test(e.name)) found.push(relative(full, child));
      }
    };
    await walk(full);
    if (!found.length) throw new UsageError(`${p}: no runbooks (*.yaml) in this directory`);
    out.push(...found.sort().map((f) => join(p, f)));
  }
  return out;
}
