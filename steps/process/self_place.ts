/**
 * A step's command that puts itself into its cgroup: the shell's first command writes its own
 * pid to the cgroup's `cgroup.procs`, before anything of the step's runs. The engine then neither
 * moves itself into the cgroup around the spawn (two migrations of every engine thread per step,
 * each behind the kernel's cgroup lock) nor has to spawn on its own thread (see `cgroup.ts`).
 *
 * Only for shells known to run nothing of the user's before the command (`sh`, `dash`, `bash`,
 * `ash`; not when `ENV` or `BASH_ENV` would make them read a file first, or `SHELLOPTS` set an
 * option such as `xtrace`), and only where the first process is that shell, as the engine's user
 * (a `user:` step drops privileges first through `setpriv`, and that user could not write the
 * engine's cgroup files): elsewhere the engine places the child as before. The write shows in the
 * command line (`ps`), not in the step's output.
 *
 * The window before the shell's first command runs nothing of the step's; a stop in it reaches
 * the shell through its process group, and the engine follows the cgroup it gave the child even
 * before the child is there (`cgroup.ts`).
 *
 * @module
 */

/** Shells that read no start-up file when run as `SHELL -c COMMAND` (without `ENV`/`BASH_ENV`). */
const SHELLS = new Set(["sh", "dash", "bash", "ash"]);

/** Single-quoted for a POSIX shell. */
function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * Whether `argv` (with `env`) starts a shell that can place itself: `[SHELL, "-c", COMMAND, …]`
 * with a shell of {@linkcode SHELLS} and no start-up file to read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { placesItself } from "./self_place.ts";
 *
 * assert.equal(placesItself(["sh", "-c", "true"], {}), true);
 * assert.equal(placesItself(["/usr/bin/bash", "-c", "true"], { BASH_ENV: "/x" }), false);
 * assert.equal(placesItself(["setpriv", "--reuid=1", "--", "sh", "-c", "true"], {}), false);
 * ```
 */
export function placesItself(
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
): boolean {
  if (argv.length < 3 || argv[1] !== "-c") return false;
  // A file read first would run before the move; bash options from outside (xtrace) would show it.
  if (env.ENV !== undefined || env.BASH_ENV !== undefined || env.SHELLOPTS !== undefined) {
    return false;
  }
  const name = argv[0]!.slice(argv[0]!.lastIndexOf("/") + 1);
  return SHELLS.has(name);
}

/**
 * `argv` (which {@linkcode placesItself}) with its command prefixed by a write of the shell's pid
 * to `procs`. The prefix is on the command's first line (line numbers stay), silent, and leaves
 * `$?` at 0 whether or not the write worked (a cgroup removed meanwhile: the step still runs, in
 * the engine's cgroup, as where there are no cgroups); `>|` writes even under `set -C`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { placedArgv } from "./self_place.ts";
 *
 * assert.deepEqual(placedArgv(["sh", "-c", "exit 3", "x"], "/cg/a/cgroup.procs"), [
 *   "sh",
 *   "-c",
 *   "echo $$ 2>/dev/null >|'/cg/a/cgroup.procs' || :; exit 3",
 *   "x",
 * ]);
 * ```
 */
export function placedArgv(argv: readonly string[], procs: string): string[] {
  const [shell, c, command, ...rest] = argv;
  return [shell!, c!, `echo $$ 2>/dev/null >|${quote(procs)} || :; ${command}`, ...rest];
}
