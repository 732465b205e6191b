/**
 * Watching a command started by `spawn_native.ts`: its exit by `SIGCHLD` (`reaper.ts`), its
 * output pipes by `poll` (on a worker thread of Deno's FFI once it has run a while), read once
 * data is there.
 *
 * @module
 */

import type { ExitStatus } from "./process.ts";
import type { NativeChild } from "./spawn_native.ts";
import { reap } from "./reaper.ts";

/** The libc functions a {@linkcode Watch} calls (bound by `spawn_native.ts`). */
export interface WatchLibc {
  close(fd: number): number;
  read(fd: number, buffer: Uint8Array, size: bigint): number | bigint;
  /** `poll` on a worker thread. */
  poll(fds: Uint8Array, n: bigint, ms: number): Promise<number>;
  /** `poll` on this thread (used with a zero timeout). */
  poll_now(fds: Uint8Array, n: bigint, ms: number): number;
  /** `waitpid` on this thread (used with `WNOHANG`). */
  waitpid_now(pid: number, status: Uint8Array, options: number): number;
}

const POLLIN = 0x1, POLLERR = 0x8, POLLHUP = 0x10, POLLNVAL = 0x20;
/** How often a poll comes back to see whether its reader was cancelled (ms). */
const POLL_MS = 100;
/** How long a child runs before a worker thread polls its pipes (ms); sooner, read at its exit. */
export const LAZY_MS = 20;
const CHUNK = 65536;
/** Where every read lands first (reads are synchronous, each chunk is copied out at once). */
const chunk = new Uint8Array(CHUNK);
/** `pollfd` arrays for a child's pipes (two at most), reused once a watch ended. */
const pollBuffers: { poll: Uint8Array; view: DataView }[] = [];
function newPollBuffer(): { poll: Uint8Array; view: DataView } {
  const poll = new Uint8Array(128);
  return { poll, view: new DataView(poll.buffer) };
}

const SIGNALS: (Deno.Signal | undefined)[] = [
  undefined,
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGILL",
  "SIGTRAP",
  "SIGABRT",
  "SIGBUS",
  "SIGFPE",
  "SIGKILL",
  "SIGUSR1",
  "SIGSEGV",
  "SIGUSR2",
  "SIGPIPE",
  "SIGALRM",
  "SIGTERM",
  "SIGSTKFLT",
  "SIGCHLD",
  "SIGCONT",
  "SIGSTOP",
  "SIGTSTP",
  "SIGTTIN",
  "SIGTTOU",
  "SIGURG",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGVTALRM",
  "SIGPROF",
  "SIGWINCH",
  "SIGIO",
  "SIGPWR",
  "SIGSYS",
];

/** `waitpid` status word to an {@linkcode ExitStatus}. */
export function decode(word: number): ExitStatus {
  const sig = word & 0x7f;
  if (sig === 0) return { code: (word >> 8) & 0xff, signal: null };
  return { code: 128 + sig, signal: SIGNALS[sig] ?? null };
}

/**
 * Watches a child: its exit by `SIGCHLD` (`reaper.ts`, no worker thread), and its output pipes.
 * The pipes are polled on a worker thread only once the child has run {@linkcode LAZY_MS}: a
 * command that ends sooner (most checks, probes and small steps) has its output read at once when
 * it exits, with no thread hand-over at all. Either way its output is read as it comes after that
 * (a pipe holds 64 KiB: a command writing more in its first milliseconds waits that long once).
 */
export class Watch implements NativeChild {
  readonly pid: number;
  readonly status: Promise<ExitStatus>;
  readonly drained: Promise<void>;
  /** Settles once the outputs' pipes are closed, though the child may still run. */
  readonly #closed: Promise<void>;
  readonly #c: WatchLibc;
  readonly #outputs: Output[];
  #outputsClosed: () => void = () => {};
  /** Whether a worker thread polls the pipes (from then on it alone closes them). */
  #pumping = false;

  constructor(c: WatchLibc, pid: number, outputs: Output[]) {
    this.#c = c;
    this.pid = pid;
    this.#outputs = outputs;
    this.drained = Promise.all(outputs.map((o) => o.ended)).then(() => {});
    this.#closed = new Promise((resolve) => this.#outputsClosed = resolve);
    if (outputs.length === 0) {
      this.#outputsClosed();
      this.status = reap(pid, c.waitpid_now);
      return;
    }
    const timer = setTimeout(() => this.#startPump(), LAZY_MS);
    this.status = reap(pid, c.waitpid_now).then((status) => {
      clearTimeout(timer);
      // What it wrote is in the pipes; a pipe still open is held by a process it left behind.
      if (!this.#pumping && !this.#drainNow()) this.#startPump();
      return status;
    });
  }

  closeOutput(): Promise<void> {
    for (const o of this.#outputs) o.cancel();
    if (!this.#pumping) this.#closeAll();
    return this.#closed;
  }

  /** Closes every pipe still open (no worker thread reads them). */
  #closeAll(): void {
    for (const o of this.#outputs) {
      if (o.closed) continue;
      o.end();
      this.#c.close(o.fd);
      o.closed = true;
    }
    this.#outputsClosed();
  }

  #startPump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    void this.#pump();
  }

  /**
   * Reads what the pipes hold until each is at its end, without waiting (the child has exited);
   * false if a pipe has nothing to read yet is not at its end (another process holds it).
   */
  #drainNow(): boolean {
    const c = this.#c;
    const { poll, view } = pollBuffers.pop() ?? newPollBuffer();
    try {
      let open = this.#outputs.filter((o) => !o.closed);
      while (open.length) {
        setPollFds(view, open);
        if (c.poll_now(poll, BigInt(open.length), 0) <= 0) return false;
        open = open.filter((o, i) => !this.#readReady(o, view.getInt16(8 * i + 6, true)));
      }
      this.#outputsClosed();
      return true;
    } finally {
      if (pollBuffers.length < 16) pollBuffers.push({ poll, view });
    }
  }

  /** Reads `o` once if `revents` says so; true once it is at its end and closed. */
  #readReady(o: Output, revents: number): boolean {
    if ((revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) === 0) return false;
    const n = Number(this.#c.read(o.fd, chunk, BigInt(CHUNK)));
    if (n > 0) {
      o.push(chunk.slice(0, n));
      return false;
    }
    o.end();
    this.#c.close(o.fd);
    o.closed = true;
    return true;
  }

  /** Reads the pipes on a worker thread until each ends or its reader cancels. */
  async #pump(): Promise<void> {
    // Off the JS heap (over 64 bytes): a worker thread writes into it while the engine goes on.
    const { poll, view } = pollBuffers.pop() ?? newPollBuffer();
    try {
      await this.#watch(poll, view);
    } finally {
      if (pollBuffers.length < 16) pollBuffers.push({ poll, view });
    }
  }

  /** The loop of {@linkcode Watch.#pump}, polling through `poll`. */
  async #watch(poll: Uint8Array, view: DataView): Promise<void> {
    const c = this.#c;
    let open = this.#outputs.filter((o) => !o.closed);
    for (;;) {
      for (const o of open) {
        if (!o.cancelled || o.closed) continue;
        o.end();
        c.close(o.fd);
        o.closed = true;
      }
      open = open.filter((o) => !o.closed);
      if (!open.length) {
        this.#outputsClosed();
        return;
      }
      setPollFds(view, open);
      // What is ready already (the pipes' ends, just after the exit) costs no worker thread.
      const n = BigInt(open.length);
      if (c.poll_now(poll, n, 0) <= 0 && await c.poll(poll, n, POLL_MS) <= 0) continue;
      open = open.filter((o, i) => !this.#readReady(o, view.getInt16(8 * i + 6, true)));
    }
  }
}

/** Fills `view`'s `pollfd` array with the fds of `outputs`, asking for input. */
function setPollFds(view: DataView, outputs: readonly Output[]): void {
  outputs.forEach(({ fd }, i) => {
    view.setInt32(8 * i, fd, true);
    view.setInt16(8 * i + 4, POLLIN, true);
    view.setInt16(8 * i + 6, 0, true);
  });
}

/** One output of a command: its pipe, where its bytes go, whether it ended. */
export class Output {
  cancelled = false;
  /** Its pipe is closed (read to its end, or given up). */
  closed = false;
  readonly ended: Promise<void>;
  readonly fd: number;
  readonly #sink: (chunk: Uint8Array) => void;
  #end: () => void = () => {};

  constructor(fd: number, sink: (chunk: Uint8Array) => void) {
    this.fd = fd;
    this.#sink = sink;
    this.ended = new Promise((resolve) => this.#end = resolve);
  }

  push(chunk: Uint8Array): void {
    if (this.cancelled) return;
    try {
      this.#sink(chunk);
    } catch {
      // A failing sink must not stop the pipe from being drained.
    }
  }

  /** No more reading: what is still in the pipe is dropped. */
  cancel(): void {
    this.cancelled = true;
    this.#end();
  }

  end(): void {
    this.#end();
  }
}
