/**
 * The daemons of one lazy fetch, started and stopped together: nbdkit in front of the HTTP backup
 * (`nbdkit.ts`), qemu-storage-daemon with the qcow2 overlay and copy-on-read (`qsd.ts`), and the
 * file at `to`: qemu-storage-daemon's read-only FUSE export, or (`writable`) its NBD export
 * mounted by nbdfuse (`nbdfuse.ts`). Their process groups are written to `daemons.json` in the
 * fetch's run directory, so that a later attempt of the same run and step (`thaw resume` after a
 * `kill -9` of the engine) stops what the killed engine left before it starts again on the same
 * overlay.
 *
 * @module
 */
import { join } from "node:path";
import { type Group, groupAlive, killGroup, spawnGroup } from "../../process/process.ts";
import { chownTree } from "../../process/user.ts";
import { shellQuote } from "../../../engine/runbook/shell.ts";
import type { Service } from "../../types.ts";
import { type Backing, startBacking } from "./nbdkit.ts";
import { type MountedFile, mountFile } from "./nbdfuse.ts";
import { LazyVolume } from "./qsd.ts";
import { overlayInfo } from "./qsd_daemon.ts";
import { NODES } from "./qsd_args.ts";

/** Where one lazy fetch keeps its files. */
export interface Layout {
  /** The HTTP(S) backup. */
  readonly url: string;
  /** The file the volume is presented at. */
  readonly to: string;
  /** The qcow2 overlay (the fetch's temporary name: a cancelled run removes it). */
  readonly overlay: string;
  readonly size: number;
  readonly writable: boolean;
  /**
   * The fetch's `user:`: `to` is given to it (read-only), or opened to every user (`writable`:
   * nbdfuse cannot give the file away). Without it, a read-only `to` is readable by every user,
   * a writable one only by root.
   */
  readonly user?: string;
  /**
   * What nbdkit may fetch from the backup at most, stream and demanded reads together, bytes a
   * second (absent or Infinity: no cap).
   */
  readonly bandwidth?: number;
  /** A short directory for the unix sockets and `daemons.json`. */
  readonly runDir: string;
  /** Log files are `${logs}.nbdkit.log`, `.qsd.log`, `.nbdfuse.log`. */
  readonly logs: string;
}

/** The process groups `daemons.json` keeps, by program. */
type Recorded = Partial<Record<"keeper" | "nbdkit" | "qemu-storage-daemon" | "nbdfuse", number>>;

/** The running daemons of one lazy fetch. */
export class VolumeSet {
  readonly volume: LazyVolume;
  #backing: Backing | undefined;
  readonly #mount: MountedFile | undefined;
  readonly #layout: Layout;
  /** The keeper (see {@linkcode keeperScript}): the process the engine records for the step. */
  readonly keeper: Group;
  #stopping = false;

  private constructor(l: Layout, v: LazyVolume, b?: Backing, m?: MountedFile) {
    this.#layout = l;
    this.volume = v;
    this.#backing = b;
    this.#mount = m;
    const script = keeperScript(l.to, l.runDir, m?.pid, v.pid, b?.pid);
    this.keeper = spawnGroup("/bin/sh", script, {
      cwd: "/",
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
      log: `${l.logs}.keeper.log`,
    });
  }

  /**
   * Stops what an earlier attempt left, then starts the daemons (the overlay is created, or
   * resumed where it is) and resolves once `to` can be opened. Throws with what to do; what it
   * started is stopped again first (never half-started).
   */
  static async start(l: Layout): Promise<VolumeSet> {
    await Deno.mkdir(l.runDir, { recursive: true, mode: 0o700 });
    const dir = await Deno.stat(l.runDir);
    if (dir.uid !== Deno.uid()) {
      throw new Error(`${l.runDir} belongs to another user (uid ${dir.uid}): remove it first`);
    }
    await stopRecorded(l.runDir);
    await prepareTo(l.to).catch(async (e) => {
      await Deno.remove(l.runDir, { recursive: true }).catch(() => {}); // nothing of ours runs
      throw e;
    });
    const home = await isHome(l.overlay);
    let backing: Backing | undefined, volume: LazyVolume | undefined;
    let mount: MountedFile | undefined, set: VolumeSet | undefined;
    try {
      if (!home) {
        backing = await startBacking({
          url: l.url,
          socket: join(l.runDir, "b.sock"),
          log: `${l.logs}.nbdkit.log`,
          bandwidth: Number.isFinite(l.bandwidth ?? Infinity) ? l.bandwidth : 0,
        });
        await record(l.runDir, { nbdkit: backing.pid });
      }
      const socket = join(l.runDir, "v.sock");
      volume = await LazyVolume.start({
        backing: backing?.uri ?? "",
        overlay: l.overlay,
        size: l.size,
        export: l.writable ? { kind: "nbd", socket, writable: true } : { kind: "fuse", file: l.to },
        runDir: l.runDir,
        log: `${l.logs}.qsd.log`,
      });
      await record(l.runDir, { "qemu-storage-daemon": volume.pgid });
      if (!l.writable) await openToUsers(l.to, l.user);
      else {
        mount = await mountFile({
          socket,
          file: l.to,
          writable: true,
          allowOther: l.user !== undefined,
          log: `${l.logs}.nbdfuse.log`,
          pidFile: join(l.runDir, "nbdfuse.pid"),
        });
        await record(l.runDir, { nbdfuse: mount.pid });
      }
      set = new VolumeSet(l, volume, backing, mount);
      await record(l.runDir, { keeper: set.keeper.pgid });
      return set;
    } catch (e) {
      // The volume could not attach: what the backup answered nbdkit says why (a HEAD request
      // refused: the backup is down or the URL wrong), which qemu-storage-daemon does not.
      const why = volume === undefined ? await backing?.lastMessage() : undefined;
      if (set) await set.stop(); // every daemon, its keeper, `to` and the run directory
      else {
        await mount?.stop().catch(() => {});
        await volume?.stop().catch(() => {});
        await backing?.stop().catch(() => {});
        await removeEmpty(l.to);
        // Everything this attempt started is stopped: its sockets, read log and daemons.json go.
        await Deno.remove(l.runDir, { recursive: true }).catch(() => {});
      }
      if (why === undefined) throw e;
      throw new Error(`${(e as Error).message}; the backup ${l.url}, per nbdkit: ${why}`);
    }
  }

  /** Bytes fetched from the backup by this attempt (0 once the backup is let go). */
  async fetched(): Promise<number> {
    return await this.#backing?.fetchedBytes() ?? this.#fetchedAtRelease;
  }
  #fetchedAtRelease = 0;

  /** Why a daemon has gone away, if one has (a promise that settles only then). */
  get lost(): Promise<string> {
    const { to } = this.#layout;
    const why = (who: string, log: string) => () =>
      `${who} (serving ${to}) exited on its own; see ${this.#layout.logs}.${log}.log`;
    const all: Promise<string>[] = [
      this.volume.qmp.done.then(why("qemu-storage-daemon", "qsd")),
    ];
    if (this.#mount) all.push(this.#mount.exited.then(why("nbdfuse", "nbdfuse")));
    if (this.#backing) all.push(this.#backing.exited.then(why("nbdkit", "nbdkit")));
    return Promise.race(all).then((w) => this.#stopping ? new Promise<string>(() => {}) : w);
  }

  /**
   * Home: the backup is no longer needed. Drops the daemon's backing node and stops nbdkit.
   */
  async releaseBacking(): Promise<void> {
    if (!this.#backing) return;
    this.#fetchedAtRelease = await this.#backing.fetchedBytes();
    await this.volume.qmp.execute("blockdev-del", { "node-name": NODES.backing }).catch(() => {});
    const b = this.#backing;
    this.#backing = undefined;
    await b.stop();
    await Deno.remove(`${b.socket}.reads`).catch(() => {});
    await record(this.#layout.runDir, { nbdkit: undefined });
  }

  /**
   * The volume as a service that outlives the step (a real run leaves it served at `to`): its
   * process is the keeper, whose group, stopped as any service's is (`thaw cancel`, the end of a
   * drill, `kill -TERM -PGID`), unmounts `to` and stops the daemons in order.
   */
  service(): Service {
    return {
      pid: this.keeper.pid,
      pgid: this.keeper.pgid,
      exited: this.keeper.status.then((s) => s.code),
      lost: this.lost,
      stop: () => this.stop(),
    };
  }

  /** Stops every daemon (nbdfuse, then qemu-storage-daemon, then nbdkit); `to` is detached. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#mount?.stop().catch(() => {});
    await this.volume.stop().catch(() => {});
    await this.#backing?.stop().catch(() => {});
    await killGroup(this.keeper.pgid, 2000).catch(() => {});
    await this.keeper.closeOutput();
    await removeEmpty(this.#layout.to);
    // The run directory holds only sockets, the nbdkit read log and daemons.json by now.
    await Deno.remove(this.#layout.runDir, { recursive: true }).catch(() => {});
  }
}

/**
 * Makes the read-only FUSE file at `to` (mounted with `allow-other`) readable by every user
 * (0444), owned by `user` when the fetch has one: services with another `user:` can read it.
 */
async function openToUsers(to: string, user: string | undefined): Promise<void> {
  await Deno.chmod(to, 0o444);
  if (user !== undefined) await chownTree(to, user);
}

/** Whether `overlay` exists and no longer needs its backing. */
async function isHome(overlay: string): Promise<boolean> {
  try {
    await Deno.stat(overlay);
  } catch {
    return false;
  }
  return (await overlayInfo(overlay)).backing === undefined;
}

/** `to` must be absent or an empty file (an earlier attempt's mount point): never hide data. */
async function prepareTo(to: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(to);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      await Deno.mkdir(join(to, ".."), { recursive: true });
      await Deno.writeFile(to, new Uint8Array(0), { mode: 0o600 });
      return;
    }
    // A mount whose daemon is gone ("not connected"): the daemons clear it as they start.
    return;
  }
  if (!info.isFile || info.size > 0) {
    throw new Error(
      `${to} already holds ${info.isFile ? `${info.size} bytes` : "a directory"}` +
        ` (or is served by a volume still running): a lazy fetch would hide it; move it away, ` +
        `or stop what serves it (thaw status lists a run's services)`,
    );
  }
}

/** Removes `to` when it is an empty file nothing is mounted on (the mount point). */
async function removeEmpty(to: string): Promise<void> {
  const info = await Deno.stat(to).catch(() => undefined);
  if (info?.isFile && info.size === 0) await Deno.remove(to).catch(() => {});
}

/** Adds `groups` to `daemons.json` in `runDir` (undefined: forgets that one). */
async function record(runDir: string, groups: Recorded): Promise<void> {
  const file = join(runDir, "daemons.json");
  const now = await readRecorded(file);
  await Deno.writeTextFile(file, JSON.stringify({ ...now, ...groups }));
}

async function readRecorded(file: string): Promise<Recorded> {
  try {
    return JSON.parse(await Deno.readTextFile(file)) as Recorded;
  } catch {
    return {};
  }
}

/**
 * Stops the daemons an earlier attempt recorded in `runDir` that still run that program (a
 * number reused by another program is left alone): nbdfuse first, the backup last.
 */
async function stopRecorded(runDir: string): Promise<void> {
  const file = join(runDir, "daemons.json");
  const groups = await readRecorded(file);
  for (const name of ["keeper", "nbdfuse", "qemu-storage-daemon", "nbdkit"] as const) {
    const pgid = groups[name];
    if (typeof pgid !== "number" || !groupAlive(pgid)) continue;
    const cmd = await Deno.readTextFile(`/proc/${pgid}/cmdline`).catch(() => "");
    // The keeper and nbdkit's parent shell name runDir (nbdkit's socket is there).
    const ours = cmd.includes(runDir) || cmd.split("\0")[0]?.endsWith(name);
    if (ours) await killGroup(pgid, 3000).catch(() => {});
  }
  await Deno.remove(file).catch(() => {});
}

/**
 * A shell script that stays while qemu-storage-daemon (`qsd`) runs, and on SIGTERM unmounts `to`
 * (nbdfuse, when `fuse` is its pid), stops the daemon's group (waiting up to 10 s for it), then
 * nbdkit's group (`backing`, when the volume is not home yet and that group is still nbdkit's:
 * its command line names `runDir`), and removes `runDir` (its sockets).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keeperScript } from "./volume_set.ts";
 *
 * assert.match(keeperScript("/r/disk.img", "/tmp/thaw-lazy-1", undefined, 20, 10), /kill -TERM -10/);
 * ```
 */
export function keeperScript(
  to: string,
  runDir: string,
  fuse: number | undefined,
  qsd: number,
  backing?: number,
): string {
  const q = shellQuote;
  const unmount = fuse === undefined ? ":" : `fusermount3 -u ${q(to)} || kill -TERM ${fuse}`;
  const wait = (pid: number) =>
    `n=0; while kill -0 ${pid} 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done;`;
  const nbdkit = backing === undefined ? "" : [
    `  if grep -qaF -- ${q(runDir)} /proc/${backing}/cmdline 2>/dev/null; then`,
    `    kill -TERM -${backing} 2>/dev/null; ${wait(backing)} fi;`,
  ].join("\n");
  return [
    `stop() { ${unmount}; kill -TERM -${qsd} 2>/dev/null;`,
    `  ${wait(qsd)}`,
    ...(nbdkit ? [nbdkit] : []),
    `  rm -rf ${q(runDir)}; exit 0; }`,
    `trap stop TERM INT HUP`,
    `while kill -0 ${qsd} 2>/dev/null; do sleep 1 & wait $!; done`,
  ].join("\n");
}
