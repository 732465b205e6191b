/**
 * The `run:` source of a fetch: `SHELL -c COMMAND` writes a file or a directory at `$THAW_TO`
 * (the temporary name), in the runbook's directory, with the step's environment.
 *
 * - Never resumed: a leftover tmp is removed before the command starts.
 * - The command leads its own process group (a new session), reported through `onSpawn`; on
 *   abort or timeout the whole group gets SIGKILL, and so do stragglers it left behind when it
 *   exits.
 * - Pacing: the command's own transfer cannot be paced byte by byte, so it is held to its share
 *   of the link in small steps. At each measure the process group is stopped (SIGSTOP), the bytes
 *   under tmp are measured, their growth is taken on the link (and counted as transferred), and
 *   the group goes on (SIGCONT) only once the link allows those bytes: while the link holds the
 *   fetch back (paced, or paused by the scheduler) the command stays stopped, and it can never
 *   run ahead of its share by more than one step. The pause between measures adapts: about
 *   {@linkcode TARGET_WAIT_MS} ms of waiting per step while paced (down to
 *   {@linkcode MIN_POLL_MS} ms for a fast writer, timed by spinning rather than by a timer that
 *   may fire late), doubling up to {@linkcode POLL_MS} ms while the link never holds it, at most
 *   {@linkcode IDLE_POLL_MS} ms while it writes nothing, and never under twice what a measure
 *   takes once measures are slow (a large directory, which is then measured while the command
 *   runs on: it is stopped only while the link holds it back) (see {@linkcode nextPoll}). A writer some 50 times faster than its
 *   share stays within a few % of it over any 5 s (`tests/bench/run_source_pacing.ts`); one a
 *   thousand times faster (`head -c` from `/dev/zero`, gigabytes a second) moves megabytes in the
 *   shortest step, so a small share sees it in bursts.
 * - What it wrote after the last measure is taken on the link too before the fetch is done: a
 *   command that writes everything at once and exits does not beat the link.
 * - Exit 0: done (a single file is hashed when `sha256` is set; a directory with `sha256` set
 *   fails). Non-zero: fails with the exit code and the last lines of stderr.
 *
 * @module
 */

import { ensureParent, lstatOrNull, removeQuietly, sizeUnder } from "../atomic.ts";
import { describeError, SourceFailure } from "../attempt.ts";
import type { Attempt, Outcome } from "../attempt.ts";
import { hashFile } from "../sink.ts";
import { asUser } from "../../process/user.ts";
import { remoteTargetOf } from "../place.ts";

/** The longest pause between two measures of tmp (progress, when the link never holds it), ms. */
export const POLL_MS = 250;
/** The shortest pause between two measures, milliseconds (a fast command held to its share). */
export const MIN_POLL_MS = 0.25;
/** The pause between measures the pacing starts from, milliseconds. */
const FIRST_POLL_MS = MIN_POLL_MS;
/**
 * A measure of tmp this slow (smoothed; a large tree), milliseconds, or slower: the command runs on
 * while it is measured, and the pause between measures is at least twice a measure.
 */
export const SLOW_MEASURE_MS = 5;
/** Steps this short or shorter are timed by spinning rather than by a timer, milliseconds. */
export const SPIN_MS = 2;
/** Steps in a row written without being held back before the pause between measures grows. */
export const FREE_STEPS = 3;
/** The longest pause between measures while the command writes nothing, milliseconds. */
export const IDLE_POLL_MS = 50;
/** The wait for the link per measure that pacing aims at while held back, milliseconds. */
export const TARGET_WAIT_MS = 20;
/** Stderr kept for the failure message, bytes. */
const TAIL_BYTES = 4096;
/** Lines of stderr in the failure message. */
const TAIL_LINES = 3;

function signalGroup(pgid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pgid, signal);
  } catch {
    // The group is gone.
  }
}

/** The last bytes of a stream, read to its end. */
async function tail(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  let kept = new Uint8Array(0);
  for await (const chunk of stream) {
    const joined = new Uint8Array(Math.min(kept.length + chunk.length, TAIL_BYTES));
    const fromChunk = Math.min(chunk.length, joined.length);
    const fromKept = joined.length - fromChunk;
    joined.set(kept.subarray(kept.length - fromKept), 0);
    joined.set(chunk.subarray(chunk.length - fromChunk), fromKept);
    kept = joined;
  }
  return kept;
}

/** The last lines of stderr, on one line. */
function lastLines(bytes: Uint8Array): string {
  const lines = new TextDecoder().decode(bytes).split(/\r?\n/).map((line) => line.trim())
    .filter((line) => line !== "");
  const text = lines.slice(-TAIL_LINES).join(" | ");
  return text.length > 300 ? `…${text.slice(-299)}` : text;
}

/** What the last step of a `run:` source showed, for {@linkcode nextPoll}. */
export interface PacingStep {
  /** It wrote something since the measure before. */
  readonly wrote: boolean;
  /** Milliseconds the link held what it wrote back. */
  readonly waitedMs: number;
  /** Steps in a row, this one included, that it wrote in without being held back. */
  readonly freeSteps: number;
  /** Milliseconds a measure of tmp takes (smoothed). */
  readonly measureMs: number;
}

/**
 * The pause before the next measure, milliseconds: after a step the link held back, the one that
 * makes about {@linkcode TARGET_WAIT_MS} of waiting (growing by half at most: a writer starting
 * up speeds up); after {@linkcode FREE_STEPS} steps in a row
 * it wrote without being held, twice the last (up to {@linkcode POLL_MS}; one such step is credit
 * saved while it was slow, not a change of pace); after a step it wrote nothing in, half as long
 * again, up to {@linkcode IDLE_POLL_MS} (it may not have been scheduled yet, or be starting a
 * process: measuring every few ms would only hinder it; a first burst after a silence stays
 * short). Never under twice a measure once a measure is slow ({@linkcode SLOW_MEASURE_MS}: a
 * large tree under tmp), even beyond {@linkcode POLL_MS}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nextPoll } from "./run.ts";
 * const step = { wrote: true, waitedMs: 200, freeSteps: 0, measureMs: 0 };
 * assert.equal(nextPoll(10, step), 1); // held 200 ms after 10 ms: run 1 ms, then measure
 * assert.equal(nextPoll(10, { ...step, waitedMs: 2 }), 15); // held 2 ms: grow, but by half
 * assert.equal(nextPoll(10, { ...step, waitedMs: 0, freeSteps: 1 }), 10); // not held once
 * assert.equal(nextPoll(10, { ...step, waitedMs: 0, freeSteps: 3 }), 20); // not held: measure less
 * assert.equal(nextPoll(2, { ...step, wrote: false }), 3); // let go, not writing yet
 * assert.equal(nextPoll(250, { ...step, wrote: false }), 50); // silent: ready for a burst
 * assert.equal(nextPoll(1, { ...step, waitedMs: 20, measureMs: 2 }), 1); // 2 ms: noise
 * assert.equal(nextPoll(1, { ...step, measureMs: 300 }), 600); // a slow one sets the pace
 * ```
 */
export function nextPoll(poll: number, step: PacingStep): number {
  const next = step.wrote
    ? step.waitedMs >= 1
      ? poll * Math.min(1.5, TARGET_WAIT_MS / step.waitedMs)
      : step.freeSteps >= FREE_STEPS
      ? poll * 2
      : poll
    : Math.min(IDLE_POLL_MS, poll * 1.5);
  const floor = step.measureMs >= SLOW_MEASURE_MS ? 2 * step.measureMs : MIN_POLL_MS;
  return Math.max(floor, Math.min(POLL_MS, next));
}

/**
 * Spins for `ms` milliseconds of real time (the command runs in real time, whatever the clock):
 * a timer could fire many ms late while the engine is busy.
 */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    /* a fast writer runs ahead of its share while we are late */
  }
}

/**
 * Measures tmp until `stop` aborts, holding the process group to the link: stopped while it is
 * measured (when that is quick) and while the link holds back what it wrote (see the module's
 * doc).
 */
async function watch(attempt: Attempt, pgid: number, stop: AbortSignal): Promise<number> {
  const { spec, ctx } = attempt;
  let seen = 0;
  let poll = FIRST_POLL_MS;
  let measureMs = 0;
  let freeSteps = 0;
  for (;;) {
    if (poll <= SPIN_MS) spin(poll);
    else await ctx.clock.sleep(poll, stop).catch(() => {});
    if (stop.aborted) return seen;
    // Stopped while measured, unless a measure is slow (a large tree): it runs on meanwhile.
    const slow = measureMs >= SLOW_MEASURE_MS;
    if (!slow) signalGroup(pgid, "SIGSTOP");
    const measuring = ctx.clock.now();
    const bytes = await sizeUnder(spec.tmp).catch(() => seen);
    const measured = ctx.clock.now();
    measureMs = 0.7 * measureMs + 0.3 * (measured - measuring);
    ctx.progress(bytes, spec.size);
    const wrote = bytes > seen;
    if (wrote && slow) signalGroup(pgid, "SIGSTOP");
    if (wrote) {
      attempt.call.transferred += bytes - seen;
      const taking = attempt.take(bytes - seen);
      seen = bytes;
      try {
        await taking;
      } catch {
        return seen; // aborted: the group is being killed
      }
    }
    const now = ctx.clock.now();
    if (wrote || !slow) signalGroup(pgid, "SIGCONT");
    const waitedMs = now - measured;
    if (wrote) freeSteps = waitedMs >= 1 ? 0 : freeSteps + 1;
    poll = nextPoll(poll, { wrote, waitedMs, freeSteps, measureMs });
  }
}

/**
 * One attempt of a `run:` source into `spec.tmp`. Throws a {@linkcode SourceFailure}, or the
 * abort reason of `attempt.signal`.
 *
 * @example
 * ```ts ignore
 * const outcome = await fetchRun({ command: 'pg_dump db > "$THAW_TO"', shell: "bash" }, attempt);
 * ```
 */
export async function fetchRun(
  source: { readonly command: string; readonly shell: string; readonly user?: string },
  attempt: Attempt,
): Promise<Outcome> {
  const { spec, ctx } = attempt;
  const remote = remoteTargetOf(ctx);
  if (remote !== undefined) {
    const { fetchRunOn } = await import("./run_remote.ts");
    return await fetchRunOn(remote, source, attempt);
  }
  await removeQuietly(spec.tmp);
  await ensureParent(spec.tmp);
  attempt.signal.throwIfAborted();
  let child: Deno.ChildProcess;
  try {
    // `user:` runs the command as that user (setpriv, in the same new session).
    const env = { ...ctx.env, THAW_TO: spec.tmp };
    const run = source.user === undefined
      ? { argv: [source.shell, "-c", source.command], env }
      : asUser([source.shell, "-c", source.command], env, source.user);
    child = new Deno.Command(run.argv[0]!, {
      args: run.argv.slice(1),
      cwd: ctx.cwd ?? Deno.cwd(),
      env: run.env,
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      detached: true,
    }).spawn();
  } catch (error) {
    throw new SourceFailure(`cannot start ${source.shell}: ${describeError(error)}`, false);
  }
  const pgid = child.pid;
  const kill = () => signalGroup(pgid, "SIGKILL");
  attempt.signal.addEventListener("abort", kill, { once: true });
  ctx.onSpawn?.({ pid: child.pid, pgid });
  if (attempt.signal.aborted) kill();
  const stderr = tail(child.stderr).catch(() => new Uint8Array(0));
  const stop = new AbortController();
  const watching = watch(attempt, pgid, stop.signal);
  let status: Deno.CommandStatus;
  try {
    status = await child.status;
  } finally {
    attempt.signal.removeEventListener("abort", kill);
    kill(); // whatever it left running must not write under tmp after this
    stop.abort();
  }
  const seen = await watching;
  const errors = lastLines(await stderr);
  attempt.signal.throwIfAborted();

  const info = await lstatOrNull(spec.tmp);
  const bytes = await sizeUnder(spec.tmp);
  ctx.progress(bytes, spec.size);
  if (bytes > seen) {
    attempt.call.transferred += bytes - seen;
    await attempt.take(bytes - seen); // written ahead of the link: done only when it allows them
  }
  if (!status.success) {
    const how = status.signal === null ? `exit code ${status.code}` : `killed by ${status.signal}`;
    throw new SourceFailure(errors === "" ? how : `${how}: ${errors}`, true);
  }
  if (info === null) {
    throw new SourceFailure(
      `exit code 0, but nothing was written at $THAW_TO (${spec.tmp})`,
      false,
    );
  }
  if (info.isDirectory) {
    if (spec.sha256 !== undefined) {
      throw new SourceFailure(
        "wrote a directory, but sha256 is set (only a single file can be checked)",
        false,
      );
    }
    return { ok: true, bytes, resumed: false, synced: false };
  }
  const digest = spec.sha256 === undefined ? undefined : await hashFile(spec.tmp, attempt.signal);
  return { ok: true, bytes, digest, resumed: false, synced: false };
}
