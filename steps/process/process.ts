/**
 * Process groups: commands are started in a group of their own (the process leads a new session),
 * so the whole group (the shell, its children, their children) can be stopped with one signal, by
 * this engine or, from the pgid recorded in the store, by another one after a crash.
 *
 * Whether a group is alive and stopping it: `kill.ts` (re-exported here).
 *
 * @module
 */

import { bornInCgroups, withinCgroup, withinCgroupAsync } from "./cgroup.ts";
import { loggedArgv } from "../run/service.ts";
import type { Spawned } from "../types.ts";
import { type NativeOptions, type NativeSpawner, nativeSpawner } from "./spawn_native.ts";
import { placedArgv, placesItself } from "./self_place.ts";
import { asUser } from "./user.ts";

export { groupAlive, killGroup, type KillOutcome, processAlive } from "./kill.ts";

/** How a process ended. */
export interface ExitStatus {
  /** The exit code; `128 + N` when killed by signal N, as shells report it. */
  readonly code: number;
  /** The signal that killed it, if any. */
  readonly signal: Deno.Signal | null;
}

/** Where and how {@linkcode spawnGroup} runs a command. */
export interface SpawnOptions {
  /** Absolute directory the command runs in. */
  readonly cwd: string;
  /** The complete environment: nothing else is inherited. */
  readonly env: Readonly<Record<string, string>>;
  /** Receives stdout (discarded when absent). */
  readonly stdout?: (chunk: Uint8Array) => void;
  /** Receives stderr (discarded when absent). */
  readonly stderr?: (chunk: Uint8Array) => void;
  /** Run as this system user (see `user.ts`): `setpriv` inside the new group. */
  readonly user?: string | undefined;
  /**
   * Append stdout and stderr to this file, opened by the group's first process (see
   * `service.ts`): nothing is piped through the engine, so the group outlives it.
   */
  readonly log?: string | undefined;
}

/** The program, arguments and environment that run `shell -c command` as `options` ask. */
function commandLine(
  shell: string,
  command: string,
  options: SpawnOptions,
): { argv: string[]; env: Record<string, string> } {
  let argv = [shell, "-c", command];
  let env = { ...options.env };
  if (options.user !== undefined) ({ argv, env } = asUser(argv, env, options.user));
  // The native spawner opens the log itself; elsewhere a shell does, then runs the command.
  if (options.log !== undefined && !nativeSpawner()) argv = loggedArgv(argv, options.log);
  return { argv, env };
}

/** A command running as the leader of its own process group. */
export interface Group extends Spawned {
  /** Settles when the leader exits (other members of the group may still run). */
  readonly status: Promise<ExitStatus>;
  /** Settles when stdout and stderr have both closed (at once if neither was read). */
  readonly drained: Promise<void>;
  /**
   * Stops reading stdout and stderr. Call it once the group is done with: a process that left the
   * group (a daemon calling `setsid`) may hold the pipes open forever.
   */
  closeOutput(): Promise<void>;
}

const found = new Map<string, boolean>();
/** Whether `shell` can be run: a path that exists, or a name found on `path`. */
function findShell(shell: string, path: string, cwd: string): boolean {
  const key = `${shell}\0${path}\0${shell.includes("/") ? cwd : ""}`;
  let ok = found.get(key);
  if (ok === undefined) {
    const candidates = shell.includes("/")
      ? [shell.startsWith("/") ? shell : `${cwd}/${shell}`]
      : path.split(":").filter(Boolean).map((dir) => `${dir}/${shell}`);
    ok = candidates.some((c) => {
      try {
        return Deno.statSync(c).isFile;
      } catch {
        return false;
      }
    });
    found.set(key, ok);
  }
  return ok;
}

let setsid: string | null | undefined;
/** Where `setsid` is, if this system has it (looked up once). */
function setsidPath(): string | undefined {
  if (setsid === undefined) {
    setsid = null;
    for (const dir of ["/usr/bin", "/bin", "/usr/local/bin"]) {
      try {
        if (Deno.statSync(`${dir}/setsid`).isFile) {
          setsid = `${dir}/setsid`;
          break;
        }
      } catch { /* not here */ }
    }
  }
  return setsid ?? undefined;
}

/**
 * Runs `shell -c command` as the leader of a new process group (pgid = pid), with exactly
 * `options.env`, stdin from `/dev/null`. Throws (as `Deno.Command` does) when it cannot start:
 * a missing shell or directory.
 *
 * @example Run a command and wait for it
 * ```ts
 * import { spawnGroup } from "./process.ts";
 * import assert from "node:assert/strict";
 *
 * const group = spawnGroup("sh", "exit 3", { cwd: Deno.cwd(), env: {} });
 * assert.equal((await group.status).code, 3);
 * await group.closeOutput();
 * ```
 */
export function spawnGroup(shell: string, command: string, options: SpawnOptions): Group {
  const { argv, env } = commandLine(shell, command, options);
  // A step's group is placed in a cgroup of its own, which stopping it stops too (cgroup.ts):
  // born there, or there before its first command (self_place.ts).
  if (options.env.THAW_STEP === undefined) return spawnInGroup(shell, argv, env, options);
  return withinCgroup(
    (cgroupFd, procs) =>
      spawnInGroup(shell, procs ? placedArgv(argv, procs) : argv, env, options, cgroupFd),
    placesItself(argv, env),
  );
}

/**
 * {@linkcode spawnGroup}, with `posix_spawn` itself on a worker thread where it can be (the native
 * spawner, and a step's command that places itself in its cgroup, or not a step's): the engine
 * goes on while the child is being started. Elsewhere the same as `spawnGroup`.
 *
 * @example
 * ```ts
 * import { spawnGroupAsync } from "./process.ts";
 * import assert from "node:assert/strict";
 *
 * const group = await spawnGroupAsync("sh", "exit 3", { cwd: Deno.cwd(), env: {} });
 * assert.equal((await group.status).code, 3);
 * await group.closeOutput();
 * ```
 */
export async function spawnGroupAsync(
  shell: string,
  command: string,
  options: SpawnOptions,
): Promise<Group> {
  const { argv, env } = commandLine(shell, command, options);
  const spawner = nativeSpawner();
  const step = options.env.THAW_STEP !== undefined;
  if (!spawner || (step && (bornInCgroups() || !placesItself(argv, env)))) {
    return spawnGroup(shell, command, options);
  }
  checkShell(shell, argv, options, spawner);
  const start = async (procs?: string) => {
    const native = await spawner.spawnAsync(procs ? placedArgv(argv, procs) : argv, {
      cwd: options.cwd,
      env,
      ...outputOf(options),
    });
    const { pid, status, drained } = native;
    return { pid, pgid: pid, status, drained, closeOutput: () => native.closeOutput() };
  };
  return step ? await withinCgroupAsync(start) : await start();
}

/**
 * Throws NotFound for a missing shell that would otherwise show as exit 127: started through
 * setsid, setpriv or the log wrapper. The native spawner finds a shell it runs itself.
 */
function checkShell(
  shell: string,
  argv: readonly string[],
  options: SpawnOptions,
  spawner: NativeSpawner | undefined,
): void {
  const viaSetsid = setsidPath() !== undefined;
  if (
    (viaSetsid || spawner) && !(spawner && argv[0] === shell) &&
    !findShell(shell, options.env.PATH ?? Deno.env.get("PATH") ?? "", options.cwd)
  ) {
    throw new Deno.errors.NotFound(`Failed to spawn '${shell}': entity not found`);
  }
}

/** Where the native spawner sends a group's output: its log file, else the sinks given. */
function outputOf(
  options: SpawnOptions,
): Pick<NativeOptions, "output" | "stdout" | "stderr"> {
  if (options.log !== undefined) return { output: options.log };
  return { stdout: options.stdout, stderr: options.stderr };
}

/** Starts the group; in cgroup `cgroupFd` if given (only where the native spawner can). */
function spawnInGroup(
  shell: string,
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
  options: SpawnOptions,
  cgroupFd?: number,
): Group {
  // `setsid` (util-linux) makes the command a session and group leader in the same process, and
  // lets Deno start it with posix_spawn; Deno's own `detached` forks the whole engine first, which
  // costs milliseconds per step once the engine's heap has grown.
  const viaSetsid = setsidPath() !== undefined;
  const spawner = nativeSpawner();
  checkShell(shell, argv, options, spawner);
  // Where FFI allows, posix_spawn does what setsid does without its exec (spawn_native.ts).
  const native = spawner?.spawn(argv, {
    cwd: options.cwd,
    env,
    ...outputOf(options),
    cgroupFd,
  });
  if (native) {
    const { pid, status, drained } = native;
    return { pid, pgid: pid, status, drained, closeOutput: () => native.closeOutput() };
  }
  const child = new Deno.Command(viaSetsid ? setsidPath()! : argv[0]!, {
    args: viaSetsid ? [...argv] : argv.slice(1),
    cwd: options.cwd,
    env,
    clearEnv: true,
    detached: !viaSetsid,
    stdin: "null",
    stdout: options.stdout ? "piped" : "null",
    stderr: options.stderr ? "piped" : "null",
  }).spawn();
  const readers: ReadableStreamDefaultReader<Uint8Array>[] = [];
  const pumps: Promise<void>[] = [];
  const pump = (stream: ReadableStream<Uint8Array>, sink: (chunk: Uint8Array) => void) => {
    const reader = stream.getReader();
    readers.push(reader);
    pumps.push((async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          try {
            sink(value);
          } catch {
            // A failing sink must not stop the pipe from being drained.
          }
        }
      } catch {
        // Cancelled, or the pipe broke: either way there is nothing more to read.
      }
    })());
  };
  if (options.stdout) pump(child.stdout, options.stdout);
  if (options.stderr) pump(child.stderr, options.stderr);
  const drained = Promise.all(pumps).then(() => {});
  return {
    pid: child.pid,
    pgid: child.pid,
    status: child.status.then((s) => ({ code: s.code, signal: s.signal })),
    drained,
    closeOutput: async () => {
      await Promise.all(readers.map((r) => r.cancel().catch(() => {})));
      await drained;
    },
  };
}
