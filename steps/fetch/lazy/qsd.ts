/**
 * One lazily restored volume, served by `qemu-storage-daemon`: a qcow2 overlay over the backup
 * (its backing), a `copy-on-read` filter so each read of a part not yet home is fetched once and
 * kept, and an export (NBD on a unix socket, or a read-only FUSE file). `block-stream` brings the
 * rest home in the background at a speed that can change live; {@linkcode LazyVolume.flush}
 * makes what came home survive a `kill -9`, and starting again on the same overlay resumes.
 *
 * @example Stream a file-backed volume home
 * ```ts ignore
 * const vol = await LazyVolume.start({
 *   backing: "/srv/backup/disk.img", overlay: "/restore/disk.qcow2", size: 32 << 20,
 *   export: { kind: "nbd", socket: "/run/thaw/disk.sock" },
 *   runDir: "/run/thaw", log: "/var/log/thaw/disk-qsd.log",
 * });
 * await vol.stream(8 << 20);  // 8 MiB/s
 * await vol.waitHome(60_000);
 * await vol.stop();
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { killGroup } from "../../process/process.ts";
import type { Group } from "../../process/process.ts";
import { QmpClient, QmpError, type QmpEvent } from "./qmp.ts";
import { daemonArgs, nbdUri, NODES, type VolumeExport } from "./qsd_args.ts";
import {
  checkFuse,
  clearStaleMount,
  createOverlay,
  findTool,
  overlayInfo,
  refuseLiveDaemon,
  removeQuietly,
  spawnDaemon,
  startFailure,
  unmount,
} from "./qsd_daemon.ts";
import { fuseFlush, nbdFlush } from "./qsd_flush.ts";

export type { VolumeExport } from "./qsd_args.ts";

/** How to start a {@linkcode LazyVolume}. */
export interface LazyVolumeOptions {
  /** The backup: an absolute file path, or `nbd+unix:///NAME?socket=PATH` (nbdkit). */
  readonly backing: string;
  /** The qcow2 overlay: created when absent, resumed when present. */
  readonly overlay: string;
  /** Bytes of the volume (a multiple of 512). */
  readonly size: number;
  readonly export: VolumeExport;
  /** Directory for the QMP socket (`qsd-qmp.sock`); unix socket paths must stay short. */
  readonly runDir: string;
  /** The daemon's output is appended here. */
  readonly log: string;
  /** The daemon's program (default `qemu-storage-daemon` on PATH). */
  readonly binary?: string;
  /** Seconds a lost NBD backing connection is waited for before reads fail (default 30). */
  readonly reconnectDelayS?: number;
  /** How long the daemon may take to answer QMP (default 10 s). */
  readonly startTimeoutMs?: number;
}

/** Where the background stream is. */
export interface StreamProgress {
  /** `idle` before {@linkcode LazyVolume.stream}; `home` once every byte is local. */
  readonly state: "idle" | "running" | "paused" | "home" | "failed" | "cancelled";
  /** Bytes of the volume the stream has covered (already local ones count). */
  readonly offset: number;
  /** Bytes of the volume. */
  readonly len: number;
  /** Bytes per second the stream is held to; 0 for unlimited. */
  readonly speed: number;
  readonly paused: boolean;
  /** Why the stream failed, in qemu's words. */
  readonly error?: string;
}

interface QueriedJob {
  device: string;
  offset: number;
  len: number;
  speed: number;
  paused: boolean;
}

interface NamedNode {
  "node-name": string;
  backing_file?: string;
}

const JOB = "thaw-stream";

/** A running daemon serving one volume. Make it with {@linkcode LazyVolume.start}. */
export class LazyVolume {
  /** Milliseconds from {@linkcode LazyVolume.start} to the export answering. */
  readonly attachMs: number;
  readonly #options: LazyVolumeOptions;
  readonly #group: Group;
  readonly #qmp: QmpClient;
  readonly #qmpSocket: string;
  readonly #homeAtStart: boolean;
  #ended: QmpEvent | undefined;
  #started = false;
  #speed = 0;
  #zeroShare = false;
  #userPaused = false;
  #stopped = false;
  #pausedByUs = false;
  #endWaiters = new Set<() => void>();

  private constructor(
    options: LazyVolumeOptions,
    group: Group,
    qmp: QmpClient,
    qmpSocket: string,
    homeAtStart: boolean,
    attachMs: number,
  ) {
    this.#options = options;
    this.#group = group;
    this.#qmp = qmp;
    this.#qmpSocket = qmpSocket;
    this.#homeAtStart = homeAtStart;
    this.attachMs = attachMs;
    qmp.onEvent((e) => {
      const ends = ["BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"];
      if (!ends.includes(e.event) || e.data?.device !== JOB) return;
      this.#ended = e;
      for (const wake of this.#endWaiters) wake();
    });
  }

  /**
   * Creates the overlay if needed, starts the daemon and resolves once the export answers
   * (attached). Throws an `Error` saying what to do when a tool is missing, the daemon exits at
   * start (its last log line), or the overlay does not match `size`.
   */
  static async start(options: LazyVolumeOptions): Promise<LazyVolume> {
    const began = performance.now();
    const binary = findTool(options.binary ?? "qemu-storage-daemon");
    let backing: string | undefined = options.backing;
    let exists = true;
    try {
      Deno.statSync(options.overlay);
    } catch {
      exists = false;
    }
    if (!exists) await createOverlay(options.overlay, options.backing, options.size);
    else {
      const info = await overlayInfo(options.overlay);
      if (info.size !== options.size) {
        throw new Error(
          `${options.overlay} holds ${info.size} bytes, not the ${options.size} asked: ` +
            `remove it to restore afresh`,
        );
      }
      if (info.backing === undefined) backing = undefined; // home: the backup is not needed
    }
    if (options.export.kind === "fuse") {
      checkFuse();
      await clearStaleMount(options.export.file);
    }
    const qmpSocket = join(options.runDir, "qsd-qmp.sock");
    await refuseLiveDaemon(qmpSocket);
    removeQuietly(qmpSocket);
    if (options.export.kind === "nbd") removeQuietly(options.export.socket);
    const args = daemonArgs({
      qmpSocket,
      overlay: options.overlay,
      backing,
      export: options.export,
      reconnectDelayS: options.reconnectDelayS ?? 30,
    });
    const { group, logFrom } = spawnDaemon(binary, args, options.runDir, options.log);
    const exited = group.status.then(() => "exited" as const);
    const timeoutMs = options.startTimeoutMs ?? 10_000;
    const connecting = QmpClient.connect(qmpSocket, timeoutMs);
    let first = await Promise.race([connecting, exited]).catch((e: Error) => e);
    // A daemon that fails at start may take the QMP connection down first: wait for its exit.
    if (first instanceof Error) first = (await within(exited, 1000)) ?? first;
    if (first === "exited" || first instanceof Error) {
      connecting.then((q) => q.close(), () => {});
      if (first instanceof Error) await killGroup(group.pgid, 1000).catch(() => {});
      const reason = first === "exited" ? await startFailure(options.log, logFrom, group) : first;
      await group.closeOutput();
      throw reason;
    }
    const attachMs = performance.now() - began;
    return new LazyVolume(options, group, first, qmpSocket, backing === undefined, attachMs);
  }

  /** The daemon's pid; it leads its own process group (`pgid`), which stops it. */
  get pid(): number {
    return this.#group.pid;
  }

  /** The daemon's process group id. */
  get pgid(): number {
    return this.#group.pgid;
  }

  /** The NBD URI of the export (NBD exports only). */
  get uri(): string | undefined {
    const exp = this.#options.export;
    return exp.kind === "nbd" ? nbdUri(exp.socket, exp.name ?? "") : undefined;
  }

  /** The QMP session, for what this class does not wrap. */
  get qmp(): QmpClient {
    return this.#qmp;
  }

  /**
   * Starts `block-stream` at `speed` bytes/s (`Infinity` for unlimited; 0 starts it paused, see
   * {@linkcode setSpeed}). Parts already local (a resumed overlay, demanded reads) are skipped.
   * Does nothing once home.
   */
  async stream(speed: number): Promise<void> {
    if (this.#homeAtStart || this.#ended?.event === "BLOCK_JOB_COMPLETED" && !this.#failure()) {
      return;
    }
    this.#ended = undefined;
    const args: Record<string, unknown> = { "job-id": JOB, device: NODES.overlay };
    if (speed > 0 && Number.isFinite(speed)) args.speed = Math.round(speed);
    await this.#qmp.execute("block-stream", args);
    this.#started = true;
    this.#speed = speed;
    this.#zeroShare = speed === 0;
    this.#userPaused = false;
    this.#pausedByUs = false;
    await this.#applyPause();
  }

  /**
   * Holds the stream to `bps` bytes/s from now on (seen within a second). `Infinity` lifts the
   * limit. 0 (a zero share of the link) pauses the stream until a later non-zero speed; in QMP
   * itself 0 would mean unlimited.
   */
  async setSpeed(bps: number): Promise<void> {
    if (!(bps >= 0)) throw new RangeError(`a stream speed is bytes/s >= 0, not ${bps}`);
    this.#speed = bps;
    this.#zeroShare = bps === 0;
    if (!this.#running()) return;
    if (bps > 0) {
      const speed = Number.isFinite(bps) ? Math.round(bps) : 0;
      if (!await this.#job("block-job-set-speed", { device: JOB, speed })) return;
    }
    await this.#applyPause();
  }

  /** Pauses the stream (demanded reads still work). */
  async pause(): Promise<void> {
    this.#userPaused = true;
    if (this.#running()) await this.#applyPause();
  }

  /** Resumes a stream paused with {@linkcode pause} (it stays paused while the speed is 0). */
  async resume(): Promise<void> {
    this.#userPaused = false;
    if (this.#running()) await this.#applyPause();
  }

  /** Where the stream is now (`query-block-jobs`, or how it ended). */
  async progress(): Promise<StreamProgress> {
    const len = this.#options.size;
    const speed = Number.isFinite(this.#speed) ? this.#speed : 0;
    if (this.#homeAtStart) return { state: "home", offset: len, len, speed, paused: false };
    const jobs = await this.#qmp.execute<QueriedJob[]>("query-block-jobs");
    const job = jobs.find((j) => j.device === JOB);
    if (job && !this.#ended) {
      const paused = job.paused;
      const state = paused ? "paused" : "running";
      return { state, offset: job.offset, len: job.len, speed: job.speed, paused };
    }
    if (!this.#ended) return { state: "idle", offset: 0, len, speed, paused: false };
    const data = this.#ended.data ?? {};
    const offset = Number(data.offset ?? 0);
    const error = this.#failure();
    if (this.#ended.event === "BLOCK_JOB_CANCELLED") {
      return { state: "cancelled", offset, len, speed, paused: false };
    }
    if (error !== undefined) return { state: "failed", offset, len, speed, paused: false, error };
    return { state: "home", offset: len, len, speed, paused: false };
  }

  /**
   * True when every byte is local: the stream completed without error (or the overlay was home
   * when the daemon started) and the overlay node has no backing any more.
   */
  async home(): Promise<boolean> {
    const done = this.#homeAtStart ||
      (this.#ended?.event === "BLOCK_JOB_COMPLETED" && this.#failure() === undefined);
    if (!done) return false;
    const nodes = await this.#qmp.execute<NamedNode[]>("query-named-block-nodes", { flat: true });
    const overlay = nodes.find((n) => n["node-name"] === NODES.overlay);
    return overlay !== undefined && !overlay.backing_file;
  }

  /**
   * Resolves true once home, false when the stream failed or was cancelled; throws after
   * `timeoutMs`.
   */
  async waitHome(timeoutMs: number): Promise<boolean> {
    if (!this.#homeAtStart && !this.#ended) {
      let done!: () => void;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ended = new Promise<void>((resolve, reject) => {
        done = resolve;
        this.#endWaiters.add(done);
        timer = setTimeout(
          () => reject(new Error(`the volume was not home within ${timeoutMs} ms`)),
          timeoutMs,
        );
        this.#qmp.done.then(() =>
          reject(new Error("qemu-storage-daemon went away before the volume was home"))
        );
      });
      try {
        await ended;
      } finally {
        clearTimeout(timer);
        this.#endWaiters.delete(done);
      }
    }
    return await this.home();
  }

  /**
   * Makes the overlay durable (qcow2 tables and data on disk): what came home before survives a
   * `kill -9` of the daemon. Through the export: an NBD flush, or fsync of the FUSE file.
   */
  async flush(): Promise<void> {
    const exp = this.#options.export;
    if (exp.kind === "nbd") await nbdFlush(exp.socket, exp.name ?? "");
    else await fuseFlush(exp.file);
  }

  /**
   * Stops the daemon: `quit` over QMP (the overlay is flushed and closed), then SIGTERM and
   * SIGKILL to its group if it lingers; then removes its sockets and a FUSE mount it left.
   * Safe to call twice, and after the daemon died.
   */
  async stop(graceMs = 3000): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const exited = this.#group.status.then(() => true);
    await Promise.race([this.#qmp.execute("quit").catch(() => {}), exited]);
    const gone = (await within(exited, graceMs)) ?? false;
    if (!gone) await killGroup(this.#group.pgid, 2000).catch(() => {});
    this.#qmp.close();
    await this.#group.closeOutput();
    removeQuietly(this.#qmpSocket);
    const exp = this.#options.export;
    if (exp.kind === "nbd") removeQuietly(exp.socket);
    else await unmount(exp.file);
  }

  #running(): boolean {
    return this.#started && !this.#ended;
  }

  #failure(): string | undefined {
    const error = this.#ended?.data?.error;
    return typeof error === "string" ? error : undefined;
  }

  /** Pauses or resumes the job so that it runs only with a share and no pause asked. */
  async #applyPause(): Promise<void> {
    const want = this.#zeroShare || this.#userPaused;
    if (want === this.#pausedByUs) return;
    if (!await this.#job(want ? "block-job-pause" : "block-job-resume", { device: JOB })) return;
    this.#pausedByUs = want;
  }

  /**
   * A command to the stream's job: false when the job had already ended (it may end while the
   * command is on its way, and the daemon then knows no such job: its end event follows).
   */
  async #job(command: string, args: Record<string, unknown>): Promise<boolean> {
    try {
      await this.#qmp.execute(command, args);
      return true;
    } catch (e) {
      if (!(e instanceof QmpError) || e.errorClass !== "DeviceNotActive") throw e;
      let wake = () => {};
      const ended = new Promise<void>((resolve) => this.#endWaiters.add(wake = resolve));
      try {
        if (!this.#ended) await within(ended, JOB_END_WAIT_MS);
      } finally {
        this.#endWaiters.delete(wake);
      }
      if (!this.#ended) throw e;
      return false;
    }
  }
}

/** How long a command to a job that is gone waits for the job's end event before it fails. */
const JOB_END_WAIT_MS = 2000;

/** What `promise` resolves to, or undefined once `ms` have passed first. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) =>
    timer = setTimeout(() => resolve(undefined), ms)
  );
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
