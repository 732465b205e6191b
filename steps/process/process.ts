/**
 * Process groups: commands are started in a group of their own (the process leads a new session),
 * so the whole group (the shell, its children, their children) can be stopped with one signal, by
 * this engine or, from the pgid recorded in the store, by another one after a crash.
 *
 * Liveness is read from `/proc` where there is one (Linux): a group whose members are all zombies
 * waiting for their reaper is gone. Elsewhere it asks `kill -0`.
 *
 * @module
 */

import { bornInCgroups, stopCgroupOf, withinCgroup, withinCgroupAsync } from "./cgroup.ts";
import { loggedArgv } from "../run/service.ts";
import type { Spawned } from "../types.ts";
import { existsNative } from "./exists_native.ts";
import { type NativeOptions, type NativeSpawner, nativeSpawner } from "./spawn_native.ts";
import { placedArgv, placesItself } from "./self_place.ts";
import { asUser } from "./user.ts";

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

/** What {@linkcode killGroup} found: nothing left, stopped by SIGTERM, or SIGKILL was needed. */
export type KillOutcome = "gone" | "terminated" | "killed";

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

/** The state letter and process group of a process, from `/proc/PID/stat`; undefined if absent. */
function procStat(pid: string | number): { state: string; pgrp: number } | undefined {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // `PID (COMM) STATE PPID PGRP ...`; COMM may hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0] ?? "", pgrp: Number(fields[2]) };
}

let procFs: boolean | undefined;
/** Whether `/proc` can be read (asked on first use, not on import). */
function hasProc(): boolean {
  if (procFs === undefined) {
    try {
      procFs = Deno.statSync("/proc/self/stat").isFile;
    } catch {
      procFs = false;
    }
  }
  return procFs;
}

const dead = (state: string) => state === "Z" || state === "X" || state === "x";

/** Asks `kill -0` (where there is no `/proc`): does the process or group (`-PGID`) exist? */
function kill0(target: string): boolean {
  return new Deno.Command("kill", { args: ["-0", "--", target], stdout: "null", stderr: "null" })
    .outputSync().success;
}

function assertGroupId(pgid: number): void {
  if (!Number.isSafeInteger(pgid) || pgid <= 1) {
    // -1 would signal every process we may signal, 0 our own group.
    throw new RangeError(`not a process group id: ${pgid}`);
  }
}

/**
 * Whether a process is alive (a zombie is not).
 *
 * @example
 * ```ts
 * import { processAlive } from "./process.ts";
 * import assert from "node:assert/strict";
 *
 * assert(processAlive(Deno.pid));
 * ```
 */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  // Gone (the common case: a leader already reaped) is known without an exception.
  if (existsNative(pid) === false) return false;
  if (hasProc()) {
    const s = procStat(pid);
    return s !== undefined && !dead(s.state);
  }
  return kill0(String(pid));
}

/**
 * Whether any live process (not a zombie) is in process group `pgid`. Works for any group, not
 * only those this process started. False for what cannot be a group id (0, 1, negatives).
 *
 * @example
 * ```ts
 * import { groupAlive, spawnGroup } from "./process.ts";
 * import assert from "node:assert/strict";
 *
 * const group = spawnGroup("sh", "exit 0", { cwd: Deno.cwd(), env: {} });
 * await group.status;
 * assert(!groupAlive(group.pgid));
 * ```
 */
export function groupAlive(pgid: number): boolean {
  if (!Number.isSafeInteger(pgid) || pgid <= 1) return false;
  if (!hasProc()) return kill0(`-${pgid}`);
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const s = procStat(entry.name);
    if (s && s.pgrp === pgid && !dead(s.state)) return true;
  }
  return false;
}

/** Our own process group, never to be killed. */
function ownGroup(): number | undefined {
  return hasProc() ? procStat("self")?.pgrp : undefined;
}

/** Sends a signal to a whole group; false when the group no longer exists. */
function signalGroup(pgid: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(-pgid, signal);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Polls until the group is gone or `ms` have passed (real time); true when gone. */
async function waitGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  let pause = 10;
  for (;;) {
    if (!groupAlive(pgid)) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    await new Promise((r) => setTimeout(r, Math.min(pause, left)));
    pause = Math.min(pause * 2, 100);
  }
}

/**
 * Stops every process in group `pgid`: SIGTERM (and SIGCONT, so stopped members act on it), then
 * SIGKILL if anything is still alive after `graceMs` (real time). Resolves once the group is gone
 * (or, after SIGKILL, after at most 2 s more: a process in uninterruptible sleep dies when it
 * wakes). Works on a group another process started, e.g. from a pgid in the store. Refuses
 * `pgid` 0, 1 and our own group.
 *
 * @example
 * ```ts
 * import { groupAlive, killGroup, spawnGroup } from "./process.ts";
 * import assert from "node:assert/strict";
 *
 * const group = spawnGroup("sh", "sleep 100 & sleep 100", { cwd: Deno.cwd(), env: {} });
 * await killGroup(group.pgid, 1000);
 * await group.status;
 * assert(!groupAlive(group.pgid));
 * ```
 */
export async function killGroup(pgid: number, graceMs = 5000): Promise<KillOutcome> {
  assertGroupId(pgid);
  // Leader reaped and nobody left in its group: what every step that ends cleanly finds.
  if (existsNative(pgid) === false && existsNative(-pgid) === false) return "gone";
  // A leader still running is being stopped: its step cgroup goes too, with whatever left the
  // group with setsid (cgroup.ts). After a leader that exited on its own, the group only.
  const started = performance.now();
  const cgroup = stopCgroupOf(pgid, processAlive(pgid));
  const outcome = await killProcessGroup(pgid, graceMs);
  await cgroup.finish(Math.max(0, graceMs - (performance.now() - started)));
  return outcome;
}

async function killProcessGroup(pgid: number, graceMs: number): Promise<KillOutcome> {
  assertGroupId(pgid);
  // The cheap probe first (no /proc scan): a group that no longer exists cannot be signalled.
  // SIGCONT is harmless to a running process, and wakes a stopped one for the SIGTERM.
  if (!signalGroup(pgid, "SIGCONT")) {
    // Started through setsid a moment ago, it may not lead its group yet: wait until it does.
    let waited = 0;
    while (processAlive(pgid) && !signalGroup(pgid, "SIGCONT")) {
      if (waited > 2000) return "gone";
      await new Promise((r) => setTimeout(r, 1));
      waited++;
    }
    if (!processAlive(pgid) && !signalGroup(pgid, "SIGCONT")) return "gone";
  }
  if (pgid === ownGroup()) throw new RangeError(`refusing to kill our own process group ${pgid}`);
  if (!groupAlive(pgid) || !signalGroup(pgid, "SIGTERM")) return "gone";
  signalGroup(pgid, "SIGCONT");
  if (await waitGone(pgid, Math.max(0, graceMs))) return "terminated";
  if (!signalGroup(pgid, "SIGKILL")) return "terminated";
  await waitGone(pgid, 2000);
  return "killed";
}
