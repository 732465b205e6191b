/**
 * Short `sh` programs on any {@linkcode Target} (this machine, or a host over ssh): for what the
 * target's file operations do not cover (the identity of a directory, `chown`, flushing, the tail
 * of a log file on a host).
 *
 * @module
 */
import type { Target } from "../kind.ts";

/** Quotes `text` for a POSIX shell: one word, nothing expanded. */
export function shellWord(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Runs a short `sh` program on `target` (as the login user, in `/`); its stdout, or an error with
 * the last line it wrote on stderr.
 */
export async function targetSh(target: Target, program: string): Promise<string> {
  const decoder = new TextDecoder();
  let out = "", err = "";
  const p = await target.spawn({
    shell: "sh",
    command: program,
    cwd: "/",
    env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
    stdout: (c) => out += decoder.decode(c, { stream: true }),
    stderr: (c) => err = (err + decoder.decode(c, { stream: true })).slice(-4096),
  });
  const status = await p.status;
  await p.drained;
  if (status.code !== 0) {
    const last = err.trim().split("\n").pop() ?? "";
    throw new Error(`${target.name}: ${last || `exit code ${status.code}`}`);
  }
  return out;
}
