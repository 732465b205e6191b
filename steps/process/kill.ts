/**
 * Whether a process or process group is alive, and stopping a group: SIGTERM, SIGKILL after a
 * grace, its step's cgroup with it (`cgroup.ts`). Works on a group another process started, from a
 * pgid in the store. Liveness is read from `/proc` where there is one (Linux): a group whose
 * members are all zombies waiting for their reaper is gone. Elsewhere it asks `kill -0`.
 *
 * @module
 */

import { stopCgroupOf } from "./cgroup.ts";
import { existsNative } from "./exists_native.ts";

/** What {@linkcode killGroup} found: nothing left, stopped by SIGTERM, or SIGKILL was needed. */
export type KillOutcome = "gone" | "terminated" | "killed";

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
 * import { processAlive } from "./kill.ts";
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
 * import { groupAlive } from "./kill.ts";
 * import { spawnGroup } from "./process.ts";
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
 * import { groupAlive, killGroup } from "./kill.ts";
 * import { spawnGroup } from "./process.ts";
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
