/**
 * The `run:` source of a fetch: `SHELL -c COMMAND` writes a file or a directory at `$THAW_TO`
 * (the temporary name), in the runbook's directory, with the step's environment.
 *
 * - Never resumed: a leftover tmp is removed before the command starts.
 * - The command leads its own process group (a new session), reported through `onSpawn`; on
 *   abort or timeout the whole group gets SIGKILL, and so do stragglers it left behind when it
 *   exits.
 * - Progress: the bytes under tmp, polled every {@linkcode POLL_MS} ms. Their growth is taken on
 *   the link (and counted as transferred): when the link holds the fetch back (paced, or paused
 *   by the scheduler) for longer than a poll, the process group is stopped (SIGSTOP) until the
 *   link lets it go on (SIGCONT), since the command's own transfer cannot be paced otherwise.
 * - Exit 0: done (a single file is hashed when `sha256` is set; a directory with `sha256` set
 *   fails). Non-zero: fails with the exit code and the last lines of stderr.
 *
 * @module
 */

import { ensureParent, lstatOrNull, removeQuietly, sizeUnder } from "./atomic.ts";
import { describeError, SourceFailure } from "./fetch_attempt.ts";
import type { Attempt, Outcome } from "./fetch_attempt.ts";
import { hashFile } from "./fetch_sink.ts";

/** How often the bytes under tmp are measured, milliseconds. */
export const POLL_MS = 250;
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

/**
 * Measures tmp until `stop` aborts; takes its growth on the link, stopping the process group
 * while the link holds it back.
 */
async function watch(attempt: Attempt, pgid: number, stop: AbortSignal): Promise<number> {
  const { spec, ctx } = attempt;
  let seen = 0;
  for (;;) {
    try {
      await ctx.clock.sleep(POLL_MS, stop);
    } catch {
      return seen;
    }
    const bytes = await sizeUnder(spec.tmp).catch(() => seen);
    ctx.progress(bytes, spec.size);
    if (bytes <= seen) continue;
    attempt.call.transferred += bytes - seen;
    const taking = attempt.take(bytes - seen);
    seen = bytes;
    const held = new AbortController();
    let stopped = false;
    ctx.clock.sleep(POLL_MS, held.signal).then(() => {
      stopped = true;
      signalGroup(pgid, "SIGSTOP");
    }, () => {});
    try {
      await taking;
    } catch {
      return seen; // aborted: the group is being killed
    } finally {
      held.abort();
      if (stopped) signalGroup(pgid, "SIGCONT");
    }
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
  source: { readonly command: string; readonly shell: string },
  attempt: Attempt,
): Promise<Outcome> {
  const { spec, ctx } = attempt;
  await removeQuietly(spec.tmp);
  await ensureParent(spec.tmp);
  attempt.signal.throwIfAborted();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(source.shell, {
      args: ["-c", source.command],
      cwd: ctx.cwd,
      env: { ...ctx.env, THAW_TO: spec.tmp },
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
  if (bytes > seen) attempt.call.transferred += bytes - seen;
  ctx.progress(bytes, spec.size);
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
