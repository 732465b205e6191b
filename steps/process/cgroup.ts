/**
 * A cgroup per process group, so that stopping a step's command stops everything it started,
 * even a process that left its process group and session with `setsid` (Linux, cgroup v2).
 *
 * - Each group {@linkcode withinCgroup} starts is placed in a cgroup of its own
 *   (`thaw-ENGINEPID-N`, under the engine's own cgroup on the cgroup2 mount) before anything of the
 *   step's runs, so nothing can fork outside it. Three ways, the first that applies:
 *   1. born inside it: glibc 2.39 or later starts the process there (`CLONE_INTO_CGROUP`, see
 *      `spawn_native.ts`);
 *   2. it places itself: a step run by `sh`/`bash` as root writes its own pid to the cgroup's
 *      `cgroup.procs` as its first command (`self_place.ts`; {@linkcode withinCgroupAsync} starts
 *      such a process with `posix_spawn` on a worker thread, the engine going on meanwhile);
 *   3. the engine steps into the cgroup for the moment of the spawn (children are born where
 *      their parent is) and back out (a `user:` step, another shell): two moves of every thread
 *      of the engine, with the engine's one thread blocked in `posix_spawn` between them.
 *   Cgroups are pooled: an empty one serves the next group, not a mkdir; the files of each move
 *   (`cgroup.procs`), of the emptiness check (`cgroup.events`) and the directory for
 *   `CLONE_INTO_CGROUP` are kept open, so a step costs one to three system calls here, no path
 *   lookups.
 * - {@linkcode stopCgroupOf} stops the cgroup of a group whose leader still runs (a timeout, a
 *   cancel, a service stopped, a resumed engine cleaning up after a killed one: it finds the
 *   cgroup from the leader's `/proc/PID/cgroup`; for a group this engine started, the cgroup it
 *   gave it, which a child that places itself may not have reached yet): SIGTERM to every member,
 *   then `cgroup.kill` after the grace. A command that exited on its own is not followed: what
 *   it left with `setsid` (a daemon) lives on, as documented for run steps.
 * - Needs a writable cgroup2 hierarchy (root, or a delegated subtree) and Linux 5.14 or later
 *   (`cgroup.kill`). Elsewhere, or with `THAW_CGROUPS=off`, it does nothing: stopping a step
 *   stops its process group only, and a process that called `setsid` escapes.
 *
 * @module
 */

import { nativeSpawner } from "./spawn_native.ts";

/** Where step cgroups go: `<cgroup2 mount><the engine's cgroup>`, and the engine's own procs. */
interface Place {
  readonly mount: string;
  readonly base: string;
  /** The engine's own `cgroup.procs`, open for writing. */
  readonly home: Deno.FsFile;
}

interface Cgroup {
  readonly path: string;
  /** Spawns, leaders and stops that hold it; reused only at 0 and when empty. */
  users: number;
  /** Its `cgroup.procs` (open for writing) and `cgroup.events`, opened on first use. */
  procs?: Deno.FsFile;
  events?: Deno.FsFile;
  /** The directory, open for starting a process in it (`CLONE_INTO_CGROUP`); -1 if it failed. */
  dirFd?: number;
  /** Its `cgroup.events`, opened through FFI where there is the native spawner; -1 if it failed. */
  eventsFd?: number;
}

/** Whether processes may be started inside a cgroup; off once that failed where moving worked. */
let intoCgroups = true;

const PREFIX = "thaw-";
/** What a process writes to a `cgroup.procs` to move itself there. */
const SELF = new TextEncoder().encode("0");
/** Where `cgroup.events` is read into (it is about 30 bytes). */
const eventsBuffer = new Uint8Array(256);
const decoder = new TextDecoder();
const POPULATED = /^populated 1$/m;
let place: Place | null | undefined;
const pool: Cgroup[] = [];
const byPath = new Map<string, Cgroup>();
/**
 * The cgroup given to each child this engine started that has not exited: a child that places
 * itself may not be there yet when it is stopped, and must be followed there all the same.
 */
const assigned = new Map<number, Cgroup>();

/** The cgroup2 mount point, from `/proc/self/mountinfo`. */
function cgroup2Mount(): string | undefined {
  for (const line of Deno.readTextFileSync("/proc/self/mountinfo").split("\n")) {
    const [left, right] = line.split(" - ");
    if (right?.split(" ")[0] === "cgroup2") return left!.split(" ")[4];
  }
  return undefined;
}

/** The cgroup2 path of `pid` (`/a/b`), or undefined when it is gone or has none. */
function cgroupPathOf(pid: number | "self"): string | undefined {
  try {
    const line = Deno.readTextFileSync(`/proc/${pid}/cgroup`).split("\n")
      .find((l) => l.startsWith("0::"));
    return line?.slice(3);
  } catch {
    return undefined;
  }
}

/** Finds (once) where this engine may make cgroups; null when it may not. */
function placeOf(): Place | null {
  if (place !== undefined) return place;
  place = null;
  try {
    if (Deno.build.os !== "linux" || Deno.env.get("THAW_CGROUPS") === "off") return place;
    const mount = cgroup2Mount();
    const self = cgroupPathOf("self");
    if (!mount || self === undefined) return place;
    const base = mount + (self === "/" ? "" : self);
    sweep(base);
    const home = Deno.openSync(`${base}/cgroup.procs`, { write: true });
    const probe: Place = { mount, base, home };
    try {
      const first = create(probe);
      Deno.statSync(`${first.path}/cgroup.kill`); // Linux 5.14+
    } catch (e) {
      home.close();
      throw e;
    }
    place = probe;
  } catch {
    place = null; // not root, read-only, no cgroup2, an old kernel: process groups only
  }
  return place;
}

/** Removes empty pooled cgroups left by engines that are gone. */
function sweep(base: string): void {
  for (const e of Deno.readDirSync(base)) {
    const m = /^thaw-(\d+)-\d+$/.exec(e.name);
    if (!e.isDirectory || !m || Number(m[1]) === Deno.pid) continue;
    try {
      Deno.statSync(`/proc/${m[1]}`);
    } catch {
      try {
        Deno.removeSync(`${base}/${e.name}`); // fails (EBUSY) while something runs in it
      } catch { /* a daemon a step left lives there */ }
    }
  }
}

function create(p: Place): Cgroup {
  for (let n = byPath.size;; n++) {
    const path = `${p.base}/${PREFIX}${Deno.pid}-${n}`;
    if (byPath.has(path)) continue;
    try {
      Deno.mkdirSync(path);
    } catch (e) {
      // Left by an engine that had our pid: reused only if nothing runs in it.
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      if (populated(path)) continue;
    }
    const cg = { path, users: 0 };
    byPath.set(path, cg);
    pool.push(cg);
    return cg;
  }
}

function populated(path: string): boolean {
  try {
    return /^populated 1$/m.test(Deno.readTextFileSync(`${path}/cgroup.events`));
  } catch {
    return false;
  }
}

/** Whether something runs in pooled `cg`, read from its open `cgroup.events`. */
function busy(cg: Cgroup): boolean {
  const spawner = nativeSpawner();
  if (spawner) {
    // One pread through FFI: a fresh read of the file, a few microseconds less than Deno's ops.
    cg.eventsFd ??= spawner.openRead(`${cg.path}/cgroup.events`);
    const n = cg.eventsFd >= 0 ? spawner.readStart(cg.eventsFd, eventsBuffer) : -1;
    if (n >= 0) return POPULATED.test(decoder.decode(eventsBuffer.subarray(0, n)));
    return populated(cg.path);
  }
  try {
    cg.events ??= Deno.openSync(`${cg.path}/cgroup.events`);
    cg.events.seekSync(0, Deno.SeekMode.Start); // a fresh read of the file
    const n = cg.events.readSync(eventsBuffer) ?? 0;
    return POPULATED.test(decoder.decode(eventsBuffer.subarray(0, n)));
  } catch {
    return populated(cg.path);
  }
}

/** A pooled cgroup nobody uses and nothing runs in, or a new one. */
function take(p: Place): Cgroup {
  const free = pool.find((c) => c.users === 0 && !busy(c));
  const cg = free ?? create(p);
  cg.users++;
  return cg;
}

/** Moves this process into `cg`. */
function enter(cg: Cgroup): void {
  cg.procs ??= Deno.openSync(`${cg.path}/cgroup.procs`, { write: true });
  cg.procs.writeSync(SELF);
}

/** Closes the files kept open for `cg`. */
function closeFiles(cg: Cgroup): void {
  for (const f of [cg.procs, cg.events]) {
    try {
      f?.close();
    } catch { /* closed already */ }
  }
  cg.procs = cg.events = undefined;
  if (cg.dirFd !== undefined && cg.dirFd >= 0) nativeSpawner()?.closeFd(cg.dirFd);
  if (cg.eventsFd !== undefined && cg.eventsFd >= 0) nativeSpawner()?.closeFd(cg.eventsFd);
  cg.dirFd = cg.eventsFd = undefined;
}

/**
 * Where step cgroups go and a pooled cgroup for a new child; undefined without cgroups, or when
 * the hierarchy changed under us (process groups only, then).
 */
function takeCgroup(): { p: Place; cg: Cgroup } | undefined {
  const p = placeOf();
  if (!p) return undefined;
  try {
    return { p, cg: take(p) };
  } catch {
    return undefined;
  }
}

/** `cg`'s directory fd for starting a process in it, or undefined where that cannot be done. */
function intoFd(cg: Cgroup): number | undefined {
  const spawner = nativeSpawner();
  if (!intoCgroups || !spawner?.placesInCgroups) return undefined;
  cg.dirFd ??= spawner.openDirectory(cg.path);
  return cg.dirFd >= 0 ? cg.dirFd : undefined;
}

/**
 * Runs `spawn` (which must start one process synchronously) so that the child runs in a fresh
 * cgroup before it runs anything of the step's: `spawn` is given the cgroup's directory fd where
 * the native spawner can start a process inside it; else, when `placesItself`, the path of the
 * cgroup's `cgroup.procs`, which the child must write its pid to before anything else (see
 * `self_place.ts`); else it is called with this process inside the cgroup (and nothing). The
 * cgroup is held until the child's `status` settles. Without cgroups, just runs `spawn()`.
 */
export function withinCgroup<
  T extends { readonly status: Promise<unknown>; readonly pid?: number },
>(
  spawn: (cgroupFd?: number, procs?: string) => T,
  placesItself = false,
): T {
  const got = takeCgroup();
  if (!got) return spawn();
  const { p, cg } = got;
  const fd = intoFd(cg);
  if (fd === undefined && placesItself) {
    return held(
      cg,
      born(cg, () => spawn(undefined, `${cg.path}/cgroup.procs`)),
    );
  }
  if (fd === undefined) return held(cg, moved(p, cg, spawn));
  let child: T;
  try {
    child = spawn(fd);
  } catch {
    // A failure the old way repeats is the command's (a missing directory): it is thrown. If the
    // old way works, starting inside a cgroup does not on this system (a kernel before 5.7).
    child = moved(p, cg, spawn);
    intoCgroups = false;
  }
  return held(cg, child);
}

/**
 * {@linkcode withinCgroup} for a child that places itself (`self_place.ts`) and is started
 * asynchronously (`posix_spawn` on a worker thread): `spawn` is given the path of the cgroup's
 * `cgroup.procs`, which the child must write its pid to before anything else. Without cgroups,
 * just runs `spawn()`.
 */
export async function withinCgroupAsync<
  T extends { readonly status: Promise<unknown>; readonly pid?: number },
>(spawn: (procs?: string) => Promise<T>): Promise<T> {
  const cg = takeCgroup()?.cg;
  if (!cg) return spawn();
  let child: T;
  try {
    child = await spawn(`${cg.path}/cgroup.procs`);
  } catch (e) {
    cg.users--;
    throw e;
  }
  return held(cg, child);
}

/** Whether a step's process can be started inside its cgroup (no need to place itself). */
export function bornInCgroups(): boolean {
  return intoCgroups && nativeSpawner()?.placesInCgroups === true;
}

/** Holds `cg` until `child` exits; until then, stopping `child` stops `cg` (see `assigned`). */
function held<T extends { readonly status: Promise<unknown>; readonly pid?: number }>(
  cg: Cgroup,
  child: T,
): T {
  const pid = child.pid;
  if (pid !== undefined) assigned.set(pid, cg);
  child.status.finally(() => {
    cg.users--;
    if (pid !== undefined && assigned.get(pid) === cg) assigned.delete(pid);
  }).catch(() => {});
  return child;
}

/** Runs `spawn` (a child that places itself in `cg`); releases `cg` if `spawn` throws. */
function born<T>(cg: Cgroup, spawn: () => T): T {
  try {
    return spawn();
  } catch (e) {
    cg.users--;
    throw e;
  }
}

/** Runs `spawn` with this process inside `cg` (taken; released if `spawn` throws). */
function moved<T>(p: Place, cg: Cgroup, spawn: () => T): T {
  let inside = false;
  try {
    try {
      enter(cg);
      inside = true;
    } catch { /* the hierarchy changed under us: process groups only */ }
    return spawn();
  } catch (e) {
    cg.users--;
    throw e;
  } finally {
    if (inside) goHome(p, cg);
  }
}

/** Moves this process back to its own cgroup; if it cannot, stops using cgroups at all. */
function goHome(p: Place, cg: Cgroup): void {
  try {
    p.home.writeSync(SELF);
  } catch {
    place = null;
    cg.users = Infinity; // the engine is in it: never reused, never stopped
  }
}

/** Whether step cgroups are in use on this machine (for tests and docs). */
export function cgroupsAvailable(): boolean {
  return placeOf() !== null;
}

/**
 * The thaw cgroup of the process `leader` while it runs (not a zombie), else undefined. Works
 * for a group another engine started.
 */
function cgroupOfLeader(leader: number, alive: boolean): string | undefined {
  if (!alive) return undefined;
  const mine = assigned.get(leader);
  if (mine) return mine.path;
  const p = placeOf();
  const path = cgroupPathOf(leader);
  if (!p || path === undefined || !/\/thaw-\d+-\d+$/.test(path)) return undefined;
  return p.mount + path;
}

/**
 * Starts stopping the cgroup of group leader `leader` (when `alive` and it has one): SIGTERM and
 * SIGCONT to every member now; the returned `finish` waits for the members to go, at most
 * `graceMs`, then kills what is left (`cgroup.kill`) and waits up to 2 s for it. Without one,
 * `finish` does nothing.
 */
export function stopCgroupOf(
  leader: number,
  alive: boolean,
): { finish(graceMs: number): Promise<void> } {
  const path = cgroupOfLeader(leader, alive);
  if (path === undefined || members(path).includes(Deno.pid)) {
    return { finish: () => Promise.resolve() };
  }
  const mine = byPath.get(path);
  if (mine) mine.users++;
  for (const signal of ["SIGTERM", "SIGCONT"] as const) {
    for (const pid of members(path)) {
      try {
        Deno.kill(pid, signal);
      } catch { /* gone already */ }
    }
  }
  return {
    finish: async (graceMs) => {
      try {
        if (!(await emptied(path, graceMs))) {
          try {
            Deno.writeTextFileSync(`${path}/cgroup.kill`, "1");
          } catch { /* removed meanwhile */ }
          await emptied(path, 2000);
        }
        if (!mine) {
          try {
            Deno.removeSync(path); // another engine's cgroup: ours to tidy now
          } catch { /* still busy, or gone */ }
        }
      } finally {
        if (mine) mine.users--;
      }
    },
  };
}

function members(path: string): number[] {
  try {
    return Deno.readTextFileSync(`${path}/cgroup.procs`).split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function emptied(path: string, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  let pause = 5;
  while (populated(path)) {
    const left = deadline - performance.now();
    if (left <= 0) return false;
    await new Promise((r) => setTimeout(r, Math.min(pause, left)));
    pause = Math.min(pause * 2, 100);
  }
  return true;
}

/** Removes this engine's empty pooled cgroups (at exit; a cgroup in use stays). */
export function removeEmptyCgroups(): void {
  for (const cg of pool.splice(0)) {
    byPath.delete(cg.path);
    closeFiles(cg);
    try {
      Deno.removeSync(cg.path);
    } catch { /* a daemon a step left lives there */ }
  }
}

globalThis.addEventListener("unload", removeEmptyCgroups);
