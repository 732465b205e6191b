/**
 * Background services: their output goes straight to their log file (opened, in append mode, by
 * the service's own first process, never pumped through the engine), so a service keeps working
 * once the engine has exited; and the last line of that log says why a service died.
 *
 * @module
 */

import { dirname } from "node:path";
import type { Target } from "../kind.ts";
import { shellWord, targetSh } from "../targets/target_sh.ts";

/** Bytes of a log read back for a failure reason. */
const TAIL_BYTES = 16 * 1024;

/**
 * `argv` with its stdout and stderr appended to `log`: `/bin/sh` opens the file, then execs
 * `argv` (same pid, so a process group started on it keeps its id).
 *
 * @example
 * ```ts
 * import { loggedArgv } from "./service.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const [cmd, ...args] = loggedArgv(["sh", "-c", "echo hi; echo oops >&2"], `${dir}/s.log`);
 * await new Deno.Command(cmd!, { args }).output();
 * assert.equal(await Deno.readTextFile(`${dir}/s.log`), "hi\noops\n");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function loggedArgv(argv: readonly string[], log: string): string[] {
  return ["/bin/sh", "-c", 'exec >>"$0" 2>&1 && exec "$@"', log, ...argv];
}

/**
 * Makes sure `log` exists (created readable by its owner only) and returns its size: where the
 * output of the process about to start will begin.
 */
export function openLog(log: string): number {
  const file = Deno.openSync(log, { append: true, create: true, mode: 0o600 });
  try {
    return file.statSync().size;
  } finally {
    file.close();
  }
}

// deno-lint-ignore no-control-regex
const CONTROL = /\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x1f\x7f]+/g;

/** The last line with something on it that `log` gained after byte `from`, cleaned to one line. */
export async function lastLogLine(log: string, from: number): Promise<string | undefined> {
  try {
    using file = await Deno.open(log, { read: true });
    const size = (await file.stat()).size;
    const start = Math.max(from, size - TAIL_BYTES);
    if (size <= start) return undefined;
    await file.seek(start, Deno.SeekMode.Start);
    const buf = new Uint8Array(size - start);
    let got = 0;
    while (got < buf.length) {
      const n = await file.read(buf.subarray(got));
      if (n === null) break;
      got += n;
    }
    return lastLineOf(new TextDecoder().decode(buf.subarray(0, got)));
  } catch {
    return undefined;
  }
}

/** The last line with something on it, cleaned for a one-line reason. */
function lastLineOf(text: string): string | undefined {
  const lines = text.split("\n")
    .map((l) => l.slice(l.lastIndexOf("\r") + 1).replace(CONTROL, " ").trim())
    .filter((l) => l !== "");
  const last = lines.pop();
  return last === undefined ? undefined : last.length > 300 ? `${last.slice(0, 299)}…` : last;
}

/**
 * Prepares a service's log file on a target that is not this machine (a host): its directory
 * made there; the size it has, to read only what the service wrote after it.
 */
export async function openTargetLog(target: Target, log: string): Promise<number> {
  await target.mkdir(dirname(log));
  return (await target.stat(log))?.size ?? 0;
}

/** {@linkcode lastLogLine} of a log file on a target (`tail` there); undefined when unreadable. */
export async function lastTargetLogLine(
  target: Target,
  log: string,
  from: number,
): Promise<string | undefined> {
  try {
    const out = await targetSh(
      target,
      `tail -c +${from + 1} -- ${shellWord(log)} | tail -c ${TAIL_BYTES}`,
    );
    return lastLineOf(out);
  } catch {
    return undefined;
  }
}
