/**
 * The commands of `thaw`, each a module loaded when it runs: `thaw help` or `thaw status` does
 * not load the live engine, the simulator, the API or the report formats.
 *
 * @module
 */
import type { Invocation } from "./args.ts";
import type { CliContext } from "./cli.ts";

/** A command: runs with its parsed flags and returns the exit code. */
export type Command = (inv: Invocation, ctx: CliContext) => Promise<number>;

/** Each command's function, its module loaded on first use. */
export const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  plan: async () => (await import("./plan_cmd.ts")).planCommand,
  drill: async () => (await import("./drill_cmd.ts")).drillCommand,
  run: async () => (await import("./run_cmd.ts")).runCommand,
  resume: async () => (await import("./run_cmd.ts")).resumeCommand,
  status: async () => (await import("./runs_cmd.ts")).statusCommand,
  approve: async () => (await import("./runs_cmd.ts")).approveCommand,
  done: async () => (await import("./runs_cmd.ts")).doneCommand,
  cancel: async () => (await import("./runs_cmd.ts")).cancelCommand,
  serve: async () => (await import("./serve.ts")).serveCommand,
  standby: async () => (await import("./standby.ts")).standbyCommand,
  schema: async () => (await import("./plan_cmd.ts")).schemaCommand,
};

/** Every command name `thaw` knows, for "did you mean". */
export const COMMAND_NAMES: readonly string[] = [...Object.keys(COMMANDS), "help"];
