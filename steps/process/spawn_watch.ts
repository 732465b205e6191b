/**
 * Watching a command started by `spawn_native.ts`: its exit (a pidfd, else `waitpid`) and its
 * output pipes, in one `poll` on a worker thread of Deno's FFI, the pipes read once data is
 * there. A command with no pipe to read (its output goes to a file or nowhere) is waited for by
 * `SIGCHLD` instead (`reaper.ts`), with no worker thread.
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
  /** `waitpid` on a worker thread. */
  waitpid(pid: number, status: Uint8Array, options: number): Promise<number>;
  /** `waitpid` on this thread (used with `WNOHANG`). */
  waitpid_now(pid: number, status: Uint8Array, options: number): number;
  readonly pidfd_open: ((pid: number, flags: number) => number) | null;
}

const POLLIN = 0x1, POLLERR = 0x8, POLLHUP = 0x10, POLLNVAL = 0x20;
const WNOHANG = 1;
/** How often a poll comes back to see whether its reader was cancelled (ms). */
const POLL_MS = 100;
const CHUNK = 65536;
/** Where every read lands first (reads are synchronous, each chunk is copied out at once). */
const chunk = new Uint8Array(CHUNK);
/** `pollfd` arrays for a child's pipes and pidfd (three at most), reused once a watch ended. */
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
 * Watches a child: its outputs and its exit, in one `poll` on a worker thread where the system
 * has pidfds (one wake-up per step when it exits), else `waitpid` on a worker thread of its own.
 */
export class Watch implements NativeChild {
  readonly pid: number;
  readonly status: Promise<ExitStatus>;
  readonly drained: Promise<void>;
  /** Settles once the outputs' pipes are closed, though the child may still run. */
  readonly #closed: Promise<void>;
  readonly #c: WatchLibc;
  readonly #outputs: Output[];
  #exited: (status: ExitStatus) => void = () => {};
  #outputsClosed: () => void = () => {};

  constructor(c: WatchLibc, pid: number, outputs: Output[]) {
    this.#c = c;
    this.pid = pid;
    this.#outputs = outputs;
    this.drained = Promise.all(outputs.map((o) => o.ended)).then(() => {});
    this.#closed = new Promise((resolve) => this.#outputsClosed = resolve);
    if (outputs.length === 0) {
      // Nothing to read: SIGCHLD tells of the exit, no worker thread (reaper.ts).
      this.#outputsClosed();
      this.status = reap(pid, c.waitpid_now);
      return;
    }
    const pidfd = c.pidfd_open?.(pid, 0) ?? -1;
    if (pidfd >= 0) {
      this.status = new Promise((resolve) => this.#exited = resolve);
      void this.#pump(pidfd);
    } else {
      this.status = this.#wait();
      void this.#pump(-1);
    }
  }

  closeOutput(): Promise<void> {
    for (const o of this.#outputs) o.cancel();
    return this.#closed;
  }

  /** Waits for the child on a worker thread. */
  async #wait(): Promise<ExitStatus> {
    const word = new Int32Array(1);
    for (let tries = 0;; tries++) {
      const r = await this.#c.waitpid(this.pid, new Uint8Array(word.buffer), 0);
      if (r === this.pid) return decode(word[0]!);
      // -1: interrupted (try again), or not our child any more (nothing to learn).
      if (tries > 1000) return { code: 255, signal: null };
      await new Promise((resolve) => setTimeout(resolve, tries < 10 ? 0 : 10));
    }
  }

  /** Reaps the child once its pidfd said it exited; false if it is not reaped yet. */
  #reap(): boolean {
    const word = new Int32Array(1);
    const r = this.#c.waitpid_now(this.pid, new Uint8Array(word.buffer), WNOHANG);
    if (r === 0) return false;
    this.#exited(r === this.pid ? decode(word[0]!) : { code: 255, signal: null });
    return true;
  }

  /**
   * Reads `fds` into `outputs` until each ends or its reader cancels, and watches `pidfd` until
   * the child exits.
   */
  async #pump(pidfd: number): Promise<void> {
    // Off the JS heap (over 64 bytes): a worker thread writes into it while the engine goes on.
    const { poll, view } = pollBuffers.pop() ?? newPollBuffer();
    try {
      await this.#watch(pidfd, poll, view);
    } finally {
      if (pollBuffers.length < 16) pollBuffers.push({ poll, view });
    }
  }

  /** The loop of {@linkcode Watch.#pump}, polling through `poll`. */
  async #watch(pidfd: number, poll: Uint8Array, view: DataView): Promise<void> {
    const c = this.#c;
    const open = this.#outputs.map((out) => ({ fd: out.fd, out: out as Output | undefined }));
    if (pidfd >= 0) open.push({ fd: pidfd, out: undefined });
    for (;;) {
      for (let i = open.length - 1; i >= 0; i--) {
        if (!open[i]!.out?.cancelled) continue;
        open[i]!.out!.end();
        c.close(open[i]!.fd);
        open.splice(i, 1);
      }
      const reading = open.some((o) => o.out !== undefined);
      if (!reading) this.#outputsClosed();
      if (!open.length) return;
      open.forEach(({ fd }, i) => {
        view.setInt32(8 * i, fd, true);
        view.setInt16(8 * i + 4, POLLIN, true);
        view.setInt16(8 * i + 6, 0, true);
      });
      // Only the exit left to see: no reader to check on as often.
      const ms = reading ? POLL_MS : 10 * POLL_MS;
      // What is ready already (the pipes' ends, just after the exit) costs no worker thread.
      const n = BigInt(open.length);
      if (c.poll_now(poll, n, 0) <= 0 && await c.poll(poll, n, ms) <= 0) continue;
      for (let i = open.length - 1; i >= 0; i--) {
        if ((view.getInt16(8 * i + 6, true) & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) === 0) {
          continue;
        }
        const { fd, out } = open[i]!;
        if (out === undefined) {
          if (!this.#reap()) continue;
        } else {
          const n = Number(c.read(fd, chunk, BigInt(CHUNK)));
          if (n > 0) {
            out.push(chunk.slice(0, n));
            continue;
          }
          out.end();
        }
        c.close(fd);
        open.splice(i, 1);
      }
    }
  }
}

/** One output of a command: its pipe, where its bytes go, whether it ended. */
export class Output {
  cancelled = false;
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
