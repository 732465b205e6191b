/**
 * The `run:` source of a fetch on a {@linkcode Target} other than this machine (a host, `on:`):
 * the command starts there, through the target, and writes the data set at `$THAW_TO` (the
 * temporary name on that target), as `user:` when set.
 *
 * - Never resumed: a leftover tmp is removed before the command starts.
 * - On abort or timeout the command's process group on the target gets SIGKILL; so does what it
 *   left behind when it exits.
 * - Pacing: every {@linkcode REMOTE_POLL_MS} ms the bytes under tmp are measured on the target
 *   (`find`), and their growth is taken on the link (and counted as transferred). While the link
 *   holds the fetch back, the group is stopped there (SIGSTOP) and goes on (SIGCONT) once the link
 *   allows what it wrote: a remote command runs ahead of its share by at most one measure.
 * - Exit 0: done (a single file is hashed on the target when `sha256` is set; a directory with
 *   `sha256` set fails). Non-zero: fails with the exit code and the last lines of stderr.
 *
 * @module
 */

import { dirname } from "node:path";
import type { Process, Target } from "../../kind.ts";
import { describeError, SourceFailure } from "../attempt.ts";
import type { Attempt, Outcome } from "../attempt.ts";
import { shellWord, targetSh } from "../../targets/target_sh.ts";

/** The pause between two measures of tmp on the target, milliseconds. */
export const REMOTE_POLL_MS = 250;
/** Stderr kept for the failure message, bytes. */
const TAIL_BYTES = 4096;

/** Bytes under `path` on the target (a file, or a tree), 0 when nothing is there. */
async function measure(target: Target, path: string): Promise<number> {
  // Files only (as `sizeUnder` counts them here): a directory's own entry is not data.
  const out = await targetSh(
    target,
    `find ${
      shellWord(path)
    } -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'`,
  );
  const n = Number(out.trim());
  return Number.isFinite(n) ? n : 0;
}

function signalGroup(target: Target, pgid: number, signal: "STOP" | "CONT"): Promise<void> {
  return targetSh(target, `kill -${signal} -- -${pgid} 2>/dev/null || true`).then(() => {});
}

/** Measures tmp until `stop` aborts, holding the group to the link (see the module's doc). */
async function watch(
  target: Target,
  attempt: Attempt,
  group: Process,
  stop: AbortSignal,
): Promise<number> {
  const { spec, ctx } = attempt;
  let seen = 0;
  for (;;) {
    await ctx.clock.sleep(REMOTE_POLL_MS, stop).catch(() => {});
    if (stop.aborted) return seen;
    const bytes = await measure(target, spec.tmp).catch(() => seen);
    if (stop.aborted) return seen;
    ctx.progress(bytes, spec.size);
    if (bytes <= seen) continue;
    attempt.call.transferred += bytes - seen;
    const taking = attempt.take(bytes - seen);
    seen = bytes;
    // Held back by the link: stop the group there until its bytes may cross.
    const held = await Promise.race([taking.then(() => false, () => false), pause(1)]);
    if (held) await signalGroup(target, group.pgid, "STOP").catch(() => {});
    try {
      await taking;
    } catch {
      return seen; // aborted: the group is being killed
    } finally {
      if (held) await signalGroup(target, group.pgid, "CONT").catch(() => {});
    }
  }
}

function pause(ms: number): Promise<true> {
  return new Promise((resolve) => setTimeout(() => resolve(true), ms));
}

/**
 * One attempt of a `run:` source into `spec.tmp` on `target`. Throws a
 * {@linkcode SourceFailure}, or the abort reason of `attempt.signal`.
 */
export async function fetchRunOn(
  target: Target,
  source: { readonly command: string; readonly shell: string; readonly user?: string },
  attempt: Attempt,
): Promise<Outcome> {
  const { spec, ctx } = attempt;
  await target.remove(spec.tmp);
  await target.mkdir(dirname(spec.tmp));
  attempt.signal.throwIfAborted();
  const decoder = new TextDecoder();
  let stderr = "";
  let group: Process;
  try {
    group = await target.spawn({
      shell: source.shell,
      command: source.command,
      cwd: ctx.cwd,
      env: { ...ctx.env, THAW_TO: spec.tmp },
      user: source.user,
      stderr: (c) => stderr = (stderr + decoder.decode(c, { stream: true })).slice(-TAIL_BYTES),
    });
  } catch (error) {
    throw new SourceFailure(
      `cannot start ${source.shell} on ${target.name}: ${describeError(error)}`,
      true,
    );
  }
  const kill = () => void target.killGroup(group.pgid, 0).catch(() => {});
  attempt.signal.addEventListener("abort", kill, { once: true });
  if (attempt.signal.aborted) kill();
  const stop = new AbortController();
  const watching = watch(target, attempt, group, stop.signal);
  let status;
  try {
    status = await group.status;
  } finally {
    attempt.signal.removeEventListener("abort", kill);
    stop.abort();
    // Whatever it left running must not write under tmp after this.
    await target.killGroup(group.pgid, 0).catch(() => {});
  }
  const seen = await watching;
  await group.drained;
  attempt.signal.throwIfAborted();

  const info = await target.stat(spec.tmp);
  const bytes = await measure(target, spec.tmp);
  ctx.progress(bytes, spec.size);
  if (bytes > seen) {
    attempt.call.transferred += bytes - seen;
    await attempt.take(bytes - seen); // written ahead of the link: done only when it allows them
  }
  if (status.code !== 0 || status.signal !== null) {
    const how = status.signal === null ? `exit code ${status.code}` : `killed by ${status.signal}`;
    const lines = stderr.split("\n").map((l) => l.trim()).filter((l) => l !== "").slice(-3);
    throw new SourceFailure(lines.length ? `${how}: ${lines.join(" | ")}` : how, true);
  }
  if (info === null) {
    throw new SourceFailure(
      `exit code 0, but nothing was written at $THAW_TO (${target.name}:${spec.tmp})`,
      false,
    );
  }
  if (info.type === "directory") {
    if (spec.sha256 !== undefined) {
      throw new SourceFailure(
        "wrote a directory, but sha256 is set (only a single file can be checked)",
        false,
      );
    }
    return { ok: true, bytes, resumed: false, synced: false };
  }
  const digest = spec.sha256 === undefined
    ? undefined
    : await target.sha256(spec.tmp, attempt.signal);
  return { ok: true, bytes, digest, resumed: false, synced: false };
}
