/**
 * The backup behind a lazy fetch, as an NBD export on a unix socket: `nbdkit` with its curl plugin
 * reads the HTTP backup with Range requests, the `retry-request` filter makes a read wait out a
 * backup outage instead of failing it, and the `log` filter (next to the plugin) records every read
 * the plugin answered, which is how {@linkcode Backing.fetchedBytes} counts the bytes fetched; the
 * `rate` filter (outermost) can cap all it fetches, changed live through a file.
 *
 * ```
 * client (qemu-storage-daemon) ─NBD─▶ nbdkit: rate ▶ retry-request ▶ log ▶ curl ─HTTP─▶ backup
 * ```
 *
 * No readahead: each NBD read is one Range request of exactly its bytes (the curl plugin has none,
 * and no readahead filter is put in), so what is fetched is what was asked for.
 *
 * @module
 */

import { startDaemon } from "./tools.ts";

/** What {@linkcode startBacking} needs. */
export interface BackingOptions {
  /** The backup: an http(s) URL served with Range requests. */
  readonly url: string;
  /** The unix socket nbdkit listens on (at most 107 bytes; a stale one is removed). */
  readonly socket: string;
  /** nbdkit's own messages (stderr) are appended here. */
  readonly log: string;
  /** The read log the byte count comes from (default `SOCKET.reads`; appended to). */
  readonly readLog?: string;
  /** How long a read waits for a backup that is down before it fails (default 300 s). */
  readonly outageS?: number;
  /**
   * Longest a single HTTP request may take before it is retried (default 15 s: a read is at most
   * a few hundred KiB). A backup that accepts connections but answers nothing holds a read this
   * long per attempt; one that is down (refused) costs a second per attempt.
   */
  readonly requestTimeoutS?: number;
  /**
   * A cap on what it fetches, in bytes a second, for all its reads together (demanded and
   * streamed); 0 or absent: none. Changed while it runs with {@linkcode Backing.setBandwidth}.
   */
  readonly bandwidth?: number;
  /**
   * Exit when the process that started it exits; default false: it outlives the engine (a real
   * run's volume keeps serving after thaw exits, a drill's after a `kill -9` of the engine).
   */
  readonly exitWithParent?: boolean;
  /** The environment nbdkit runs with (default: `PATH` only). */
  readonly env?: Readonly<Record<string, string>>;
  /** How long nbdkit may take to listen (default 10 s). */
  readonly readyMs?: number;
}

/** A running nbdkit in front of the backup. */
export interface Backing {
  /** NBD URI of the export: `nbd+unix:///?socket=SOCKET`. */
  readonly uri: string;
  readonly socket: string;
  /**
   * The process group id nbdkit runs in (its leader: nbdkit itself with `exitWithParent`, else a
   * shell that is its parent, so that nbdkit outlives the engine).
   */
  readonly pid: number;
  /** Settles with nbdkit's exit code when it exits. */
  readonly exited: Promise<number>;
  /**
   * Bytes fetched from the backup since this nbdkit started: the body bytes of every Range request
   * that succeeded (exact; HTTP headers and the bytes of a request cut off mid-way not counted).
   */
  fetchedBytes(): Promise<number>;
  /**
   * Caps what it fetches at `bytesPerS` from now on (0: no cap). nbdkit's `rate` filter reads the
   * new rate within about a second; a read may then burst for up to 2 s worth of the rate.
   */
  setBandwidth(bytesPerS: number): Promise<void>;
  /** Stops nbdkit (SIGTERM, SIGKILL after 5 s) and removes its socket. */
  stop(): Promise<void>;
  /** nbdkit's last message since it started (why a connection was refused), if any. */
  lastMessage(): Promise<string | undefined>;
}

/** The NBD URI of a unix socket. */
export function nbdUnixUri(socket: string): string {
  return `nbd+unix:///?socket=${socket.split("/").map(encodeURIComponent).join("/")}`;
}

/**
 * Removes a socket file nothing listens on (left by a process that was killed); throws when
 * something still serves there.
 */
export async function clearStaleSocket(socket: string, who: string): Promise<void> {
  if (new TextEncoder().encode(socket).length > 107) {
    throw new Error(`${socket}: a unix socket path must be at most 107 bytes; use a shorter one`);
  }
  try {
    await Deno.lstat(socket);
  } catch {
    return;
  }
  try {
    const conn = await Deno.connect({ transport: "unix", path: socket });
    conn.close();
  } catch {
    await Deno.remove(socket);
    return;
  }
  throw new Error(
    `${socket}: something already serves on this socket; stop it before starting ${who} again`,
  );
}

/**
 * Starts nbdkit serving `url` read-only on a unix socket; resolves once it accepts connections.
 *
 * A backup outage: each read is retried every second for `outageS`, so a read issued while the
 * backup is down completes (with the right bytes) about a second after it is back. A connection
 * opened while the backup does not answer is refused at once, saying why: the curl plugin asks the
 * size with a HEAD request when a client connects, which no nbdkit from 1.36 on retries, and which
 * an older one would retry for all of `outageS` (a lazy fetch started against a wrong URL or a
 * backup that was down hung 300 s, then said only "Requested export not available").
 *
 * @example Serve a backup as NBD and count what was fetched
 * ```ts ignore
 * const backing = await startBacking({ url, socket: `${dir}/b.sock`, log: `${dir}/nbdkit.log` });
 * // qemu-storage-daemon, nbdinfo, nbdcopy... read backing.uri
 * console.log(await backing.fetchedBytes());
 * await backing.stop();
 * ```
 */
export async function startBacking(options: BackingOptions): Promise<Backing> {
  const { socket } = options;
  await clearStaleSocket(socket, "nbdkit");
  const readLog = options.readLog ?? `${socket}.reads`;
  const counter = new ReadCounter(readLog);
  await counter.skipExisting();
  const pidFile = `${socket}.pid`;
  const rateFile = `${socket}.rate`;
  const setBandwidth = (bytesPerS: number) => writeRate(rateFile, bytesPerS);
  await setBandwidth(options.bandwidth ?? 0);
  const outage = Math.max(1, Math.ceil(options.outageS ?? 300));
  const argv = [
    "nbdkit",
    ...(options.exitWithParent ? ["--exit-with-parent"] : ["--foreground"]),
    "--readonly",
    "--unix",
    socket,
    "--pidfile",
    pidFile,
    // The first filter is the outermost: `rate` charges a read once, however often it is
    // retried; a retried read goes through `log` again, logged each time.
    "--filter=rate",
    "--filter=retry-request",
    "--filter=log",
    "curl",
    `url=${options.url}`,
    `retry-request-retries=${outage}`,
    "retry-request-delay=1",
    "retry-request-open=false", // a client connecting to a backup that is down is refused at once
    `timeout=${Math.max(1, Math.ceil(options.requestTimeoutS ?? 15))}`,
    `rate-file=${rateFile}`,
    `logfile=${readLog}`,
    "logappend=true",
  ];
  const daemon = await startDaemon(argv, {
    log: options.log,
    pidFile,
    ...(options.env ? { env: options.env } : {}),
    ...(options.readyMs ? { readyMs: options.readyMs } : {}),
    // nbdkit in --foreground sets PR_SET_PDEATHSIG(SIGTERM) on itself: with the engine as its
    // parent it would die with the engine, and reads of what is not home yet would stop. A shell
    // of its own group is its parent instead (stopped with it).
    keepParent: !options.exitWithParent,
  });
  return {
    uri: nbdUnixUri(socket),
    socket,
    pid: daemon.pid,
    exited: daemon.exited,
    fetchedBytes: () => counter.read(),
    setBandwidth,
    stop: async () => {
      await daemon.stop();
      for (const f of [socket, pidFile, rateFile]) await Deno.remove(f).catch(() => {});
    },
    lastMessage: () => daemon.lastLine(),
  };
}

/** Writes the rate nbdkit's `rate` filter reads (bits a second; 0 is none), atomically. */
async function writeRate(rateFile: string, bytesPerS: number): Promise<void> {
  if (!Number.isFinite(bytesPerS) || bytesPerS < 0) {
    throw new RangeError(`not a bandwidth in bytes a second: ${bytesPerS}`);
  }
  await Deno.writeTextFile(`${rateFile}.new`, `${Math.round(bytesPerS * 8)}\n`);
  await Deno.rename(`${rateFile}.new`, rateFile);
}

/**
 * Counts the bytes of the reads nbdkit's `log` filter logged as answered (`return=0`), reading
 * the log incrementally. A read is logged on two lines, matched by connection and id:
 *
 * ```
 * 2026-11-30 15:44:55.944744 connection=3 Read id=64 offset=0xfc0000 count=0x40000 ...
 * 2026-11-30 15:44:55.945227 connection=3 ...Read id=64 return=0
 * ```
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ReadCounter } from "./nbdkit.ts";
 *
 * const log = await Deno.makeTempFile();
 * await Deno.writeTextFile(log, [
 *   "t connection=1 Read id=1 offset=0x0 count=0x10000 ...",
 *   "t connection=1 Read id=2 offset=0x10000 count=0x200 ...",
 *   "t connection=1 ...Read id=2 return=-1 error=EIO",
 *   "t connection=1 ...Read id=1 return=0",
 *   "",
 * ].join("\n"));
 * assert.equal(await new ReadCounter(log).read(), 65536);
 * await Deno.remove(log);
 * ```
 */
export class ReadCounter {
  #offset = 0;
  #rest = "";
  #total = 0;
  readonly #pending = new Map<string, number>();
  constructor(readonly path: string) {}

  /** Counts only what is logged from now on (the log is appended to across restarts). */
  async skipExisting(): Promise<void> {
    try {
      this.#offset = (await Deno.stat(this.path)).size;
    } catch {
      this.#offset = 0;
    }
  }

  /** Bytes of the answered reads logged so far (after {@linkcode skipExisting}'s point). */
  async read(): Promise<number> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.path);
    } catch {
      return this.#total; // not written yet
    }
    try {
      await file.seek(this.#offset, Deno.SeekMode.Start);
      const buf = new Uint8Array(1 << 16);
      const decoder = new TextDecoder();
      for (;;) {
        const n = await file.read(buf);
        if (n === null) break;
        this.#offset += n;
        this.#take(decoder.decode(buf.subarray(0, n), { stream: true }));
      }
    } finally {
      file.close();
    }
    return this.#total;
  }

  #take(text: string): void {
    const lines = (this.#rest + text).split("\n");
    this.#rest = lines.pop() ?? "";
    for (const line of lines) {
      const call = / connection=(\d+) Read id=(\d+) offset=0x[0-9a-f]+ count=0x([0-9a-f]+) /
        .exec(line);
      if (call) {
        this.#pending.set(`${call[1]}:${call[2]}`, parseInt(call[3]!, 16));
        continue;
      }
      const done = / connection=(\d+) \.\.\.Read id=(\d+) return=(-?\d+)/.exec(line);
      if (!done) continue;
      const key = `${done[1]}:${done[2]}`;
      const count = this.#pending.get(key);
      this.#pending.delete(key);
      if (count !== undefined && done[3] === "0") this.#total += count;
    }
  }
}
