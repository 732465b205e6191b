/**
 * What a runbook's live drill needs from the machine, so that `thaw drill` rehearses the runbooks
 * whose tools are installed and says which it skipped, and why, instead of failing the others.
 *
 * A runbook states it in one of the comments that open the file (not a format key: the contract
 * is untouched):
 *
 * ```yaml
 * # drill needs: tools/needs.sh restic
 * ```
 *
 * The text after `drill needs:` is a shell command (`sh -c`, in the runbook's directory). Exit 0:
 * the drill goes ahead. Anything else: the runbook is skipped, with the last line the command
 * printed as the reason. Several such lines must all pass. Only live drills ask; `--simulate`,
 * `plan` and `run` never do.
 *
 * @module
 */
import { dirname, resolve } from "node:path";

/** How long a `drill needs:` command may take, milliseconds. */
const NEEDS_TIMEOUT_MS = 10_000;

/** A runbook the drill skips, and why. */
export interface Skipped {
  readonly file: string;
  readonly reason: string;
}

/**
 * The `# drill needs:` commands in the comments that open a runbook's text (before its first
 * line of YAML), with their 1-based line numbers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { drillNeeds } from "./drill_needs.ts";
 *
 * const text = "# drill needs: command -v restic\nrunbook: 1\n# drill needs: not this\n";
 * assert.deepEqual(drillNeeds(text), [{ line: 1, command: "command -v restic" }]);
 * ```
 */
export function drillNeeds(text: string): { line: number; command: string }[] {
  const out: { line: number; command: string }[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length && /^\s*(#.*)?$/.test(lines[i]!); i++) {
    const m = /^\s*#\s*drill needs:\s*(.*?)\s*$/.exec(lines[i]!);
    if (m && m[1]) out.push({ line: i + 1, command: m[1] });
  }
  return out;
}

/** Why `command` says the drill cannot go ahead, or undefined when it can. */
async function unmet(command: string, cwd: string): Promise<string | undefined> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("sh", {
      args: ["-c", command],
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(NEEDS_TIMEOUT_MS),
    }).output();
  } catch (e) {
    return `cannot run "${command}": ${(e as Error).message}`;
  }
  if (out.success) return undefined;
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const last = text.split("\n").map((l) => l.trim()).filter((l) => l !== "").at(-1);
  if (out.signal) return `"${command}" took longer than ${NEEDS_TIMEOUT_MS / 1000}s`;
  return last ?? `"${command}" exited with code ${out.code}`;
}

/**
 * Splits `files` (paths as typed, resolved against `cwd`) into those whose `drill needs:`
 * commands all pass and those skipped, with the reason and the line that asked.
 */
export async function checkDrillNeeds(
  files: string[],
  cwd: string,
): Promise<{ ready: string[]; skipped: Skipped[] }> {
  const ready: string[] = [], skipped: Skipped[] = [];
  for (const file of files) {
    const path = resolve(cwd, file);
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch {
      ready.push(file); // the drill itself says what is wrong with it
      continue;
    }
    let reason: string | undefined;
    for (const need of drillNeeds(text)) {
      const why = await unmet(need.command, dirname(path));
      if (why !== undefined) {
        reason = `${why} (${file}:${need.line}: drill needs: ${need.command})`;
        break;
      }
    }
    if (reason === undefined) ready.push(file);
    else skipped.push({ file, reason });
  }
  return { ready, skipped };
}

/** The lines that say which runbooks a drill skipped. */
export function renderSkipped(skipped: Skipped[]): string {
  return skipped.map((s) => `thaw: skipped ${s.file}: ${s.reason}\n`).join("");
}
