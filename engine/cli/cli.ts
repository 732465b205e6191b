/**
 * The `thaw` command line: parses the flags, looks the command up in {@link COMMANDS} (which
 * loads only that command's module) and turns errors into exit codes and advice.
 *
 * Paths typed by the user resolve against the directory they typed them in: `deno task` runs in
 * the project directory and passes the user's directory as `INIT_CWD`.
 *
 * @module
 */
import { RunbookErrors, SimulationError, UsageError } from "../runbook/errors.ts";
import { didYouMean } from "../runbook/suggest.ts";
import { StoreError } from "../store/errors.ts";
import { invocation } from "./args.ts";
import { COMMAND_NAMES, COMMANDS } from "./commands.ts";
import { USAGE } from "./usage.ts";

/** Where the CLI writes and what it sees of its environment; tests pass their own. */
export interface CliContext {
  /** The user's working directory. */
  cwd: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** True when stdout is a terminal: live runs draw their table in place. */
  tty?: boolean;
}

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
    return await failure(e, ctx);
  }
}

async function dispatch(args: string[], ctx: CliContext): Promise<number> {
  const command = args[0];
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    (command === undefined ? ctx.stderr : ctx.stdout)(USAGE + "\n");
    return command === undefined ? 2 : 0;
  }
  const inv = await invocation(command, args.slice(1));
  if (!inv) { // --help
    ctx.stdout(USAGE + "\n");
    return 0;
  }
  const load = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!load) {
    throw new UsageError(
      `unknown command "${command}"${didYouMean(command, COMMAND_NAMES)} (thaw help lists them)`,
    );
  }
  return await (await load())(inv, ctx);
}

/** The message and exit code of an error: advice, not a stack trace (unless `THAW_DEBUG`). */
async function failure(e: unknown, ctx: CliContext): Promise<number> {
  if (e instanceof UsageError || e instanceof StoreError) {
    ctx.stderr(`thaw: ${e.message}\n`);
    return 2;
  }
  if (e instanceof RunbookErrors || e instanceof SimulationError) {
    ctx.stderr(e.message + "\n");
    return 2;
  }
  if (e instanceof Error && e.name === "EngineStopped") { // only a live run throws it
    const { EngineStopped } = await import("../live/lease.ts");
    if (e instanceof EngineStopped) {
      ctx.stderr(`thaw: ${e.message}\n`);
      return e.exitCode;
    }
  }
  const debug = Deno.env.get("THAW_DEBUG");
  ctx.stderr(
    `thaw: internal error: ${(e as Error)?.message ?? e}\n` +
      (debug ? `${(e as Error)?.stack}\n` : "(set THAW_DEBUG=1 for details)\n"),
  );
  return 1;
}
