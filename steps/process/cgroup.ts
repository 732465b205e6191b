/**
 * A cgroup per process group, so that stopping a step's command stops everything it started,
 * even a process that left its process group and session with `setsid` (Linux, cgroup v2).
 *
 * - Each group {@linkcode withinCgroup} starts is born in a cgroup of its own
 *   (`thaw-ENGINEPID-N`, under the engine's own cgroup on the cgroup2 mount): the engine steps
 *   into that cgroup for the moment of the spawn (children are born where their parent is) and
 *   back out, so nothing can fork before it is placed. Cgroups are pooled: an empty one serves
 *   the next group, so a step costs two cgroup moves of the engine (about 0.2 ms), not a mkdir.
 * - {@linkcode stopCgroupOf} stops the cgroup of a group whose leader still runs (a timeout, a
 *   cancel, a service stopped, a resumed engine cleaning up after a killed one: it finds the
 *   cgroup from the leader's `/proc/PID/cgroup`): SIGTERM to every member, then `cgroup.kill`
 *   after the grace. A command that exited on its own is not followed: what it left with
 *   `setsid` (a daemon) lives on, as documented for run steps.
 * - Needs a writable cgroup2 hierarchy (root, or a delegated subtree) and Linux 5.14 or later
 *   (`cgroup.kill`). Elsewhere, or with `THAW_CGROUPS=off`, it does nothing: stopping a step
 *   stops its process group only, and a process that called `setsid` escapes.
 *
 * @module
 */

/** Where step cgroups go: `<cgroup2 mount><the engine's cgroup>`, and the engine's own procs. */
interface Place {
  readonly mount: string;
  readonly base: string;
  readonly home: string;
}

interface Cgroup {
  readonly path: string;
  /** Spawns, leaders and stops that hold it; reused only at 0 and when empty. */
  users: number;
}

const PREFIX = "thaw-";
let place: Place | null | undefined;
const pool: Cgroup[] = [];
const byPath = new Map<string, Cgroup>();

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
    const probe: Place = { mount, base, home: `${base}/cgroup.procs` };
    sweep(base);
    const first = create(probe);
    Deno.statSync(`${first.path}/cgroup.kill`); // Linux 5.14+
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

/** A pooled cgroup nobody uses and nothing runs in, or a new one. */
function take(p: Place): Cgroup {
  const free = pool.find((c) => c.users === 0 && !populated(c.path));
  const cg = free ?? create(p);
  cg.users++;
  return cg;
}

/**
 * Runs `spawn` (which must start one process synchronously) with this process inside a fresh
 * cgroup, so the child is born there; the cgroup is held until `exited` settles. Without cgroups,
 * just runs `spawn`.
 */
export function withinCgroup<T extends { readonly status: Promise<unknown> }>(
  spawn: () => T,
): T {
  const p = placeOf();
  if (!p) return spawn();
  let cg: Cgroup;
  try {
    cg = take(p);
    Deno.writeTextFileSync(`${cg.path}/cgroup.procs`, "0");
  } catch {
    return spawn(); // the hierarchy changed under us: process groups only
  }
  let child: T;
  try {
    child = spawn();
  } catch (e) {
    cg.users--;
    throw e;
  } finally {
    goHome(p, cg);
  }
  child.status.finally(() => cg.users--).catch(() => {});
  return child;
}

/** Moves this process back to its own cgroup; if it cannot, stops using cgroups at all. */
function goHome(p: Place, cg: Cgroup): void {
  try {
    Deno.writeTextFileSync(p.home, "0");
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
    try {
      Deno.removeSync(cg.path);
    } catch { /* a daemon a step left lives there */ }
  }
}

globalThis.addEventListener("unload", removeEmptyCgroups);
