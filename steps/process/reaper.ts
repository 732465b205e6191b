/**
 * Waiting for the exit of children the native spawner started without pipes (their output goes
 * to a file or nowhere): `SIGCHLD`, delivered by Deno's event loop, then `waitpid(WNOHANG)` for
 * each child still waited for. No worker thread per child: a round trip through one of Deno's
 * FFI worker threads costs tens of microseconds, as much again as the step's own `sh -c true`.
 *
 * - Only the pids registered here are waited for: children started otherwise (`Deno.Command`,
 *   whose runtime reaps its own) are never taken from their owner.
 * - Signals coalesce: each `SIGCHLD` looks at every child waited for, and a timer looks again
 *   every {@linkcode SWEEP_MS} (a signal lost or taken by a handler installed elsewhere). The
 *   timer also keeps the event loop alive while a child is waited for (a signal listener does
 *   not).
 * - A child that cannot be waited for (`ECHILD`: reaped by someone else, `SIGCHLD` ignored) ends
 *   with code 255, as the pidfd watch does.
 *
 * @module
 */

import type { ExitStatus } from "./process.ts";
import { decode } from "./spawn_watch.ts";

/** `waitpid` with `WNOHANG` on this thread: the pid, 0 while it runs, -1 on error. */
export type WaitNow = (pid: number, status: Uint8Array, options: number) => number;

/** How often every child is looked at without a signal (ms). */
export const SWEEP_MS = 250;
const WNOHANG = 1;

interface Waiter {
  readonly waitNow: WaitNow;
  readonly resolve: (status: ExitStatus) => void;
}

const waiting = new Map<number, Waiter>();
const word = new Int32Array(1);
const wordBytes = new Uint8Array(word.buffer);
let listening = false;
let sweeper: ReturnType<typeof setInterval> | undefined;

/** Whether child `pid` has ended; if so, it is reaped and its waiter told. */
function check(pid: number, w: Waiter): boolean {
  const r = w.waitNow(pid, wordBytes, WNOHANG);
  if (r === 0) return false;
  waiting.delete(pid);
  w.resolve(r === pid ? decode(word[0]!) : { code: 255, signal: null });
  return true;
}

/** Looks at every child waited for; stops the sweep once none is left. */
function sweep(): void {
  for (const [pid, w] of waiting) check(pid, w);
  if (waiting.size === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

/**
 * Resolves with the exit status of child `pid` (started by this process, not yet waited for),
 * reaping it. `waitNow` is libc's `waitpid`, called with `WNOHANG` only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reap } from "./reaper.ts";
 * import { nativeSpawner } from "./spawn_native.ts";
 *
 * // The native spawner reaps this way a child whose output is not piped.
 * const child = nativeSpawner()?.spawn(["sh", "-c", "exit 3"], { cwd: "/", env: {} });
 * if (child) assert.deepEqual(await child.status, { code: 3, signal: null });
 * assert.equal(typeof reap, "function");
 * ```
 */
export function reap(pid: number, waitNow: WaitNow): Promise<ExitStatus> {
  return new Promise((resolve) => {
    const w = { waitNow, resolve };
    if (check(pid, w)) return;
    waiting.set(pid, w);
    if (!listening) {
      listening = true;
      Deno.addSignalListener("SIGCHLD", sweep);
    }
    sweeper ??= setInterval(sweep, SWEEP_MS);
  });
}

/** How many children are waited for (tests). */
export function waitingFor(): number {
  return waiting.size;
}
