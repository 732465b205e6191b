/**
 * Fetches that start slowly under a 10 MB/s `bandwidth:` cap, with `thaw run` in a child process:
 * a `run:` source silent for 2.5 s (`sleep 2.5; head -c 20000000 /dev/zero`), an HTTP server on
 * 127.0.0.1 that answers after 2.5 s, and a fetch approved 2.5 s after it started (HTTP). Each
 * moves 20 MB: 2.5 s of silence plus 2 s of link is the best possible, about 4.5 s. Prints each
 * run's time (from start to the fetch landing) and how many `TimeoutOverflowWarning`s Node
 * printed; a run still going after `--cap` seconds is killed and reported as stalled.
 *
 * ```sh
 * deno run -A tests/bench/slow_start.ts [--cap 60]
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startBackupServer } from "../http_backup_server.ts";
import { fromFileUrl } from "../paths.ts";

const MAIN = fromFileUrl(new URL("../../engine/main.ts", import.meta.url));
const SIZE = 20_000_000;

interface Outcome {
  seconds: number | null;
  warnings: number;
}

/** Runs `rb.yaml` in `dir`; `during` steers it (approves). Killed after `cap` seconds. */
async function run(
  dir: string,
  cap: number,
  during?: (dir: string) => Promise<void>,
): Promise<Outcome> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "run", "rb.yaml", "--store", join(dir, "s.db"), "--json"],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  const timer = setTimeout(() => {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch { /* gone */ }
  }, cap * 1000);
  const [out] = await Promise.all([child.output(), during?.(dir).catch(() => {})]);
  clearTimeout(timer);
  const stderr = new TextDecoder().decode(out.stderr);
  const warnings = stderr.match(/TimeoutOverflowWarning/g)?.length ?? 0;
  if (out.signal !== null) return { seconds: null, warnings };
  const report = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
  const f = report.steps.find((s: { id: string }) => s.id === "f");
  return { seconds: f?.end_s ?? (performance.now() - started) / 1000, warnings };
}

async function inDir<T>(runbook: string, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "rb.yaml"), runbook);
    return await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Approves step `f` of the run in `dir` 2.5 s after it starts waiting. */
async function approveLater(dir: string): Promise<void> {
  const db = join(dir, "s.db");
  for (let k = 0; k < 300; k++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const status = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "status", "--json", "--store", db],
      cwd: dir,
      stdout: "piped",
      stderr: "null",
    }).output();
    const runs = JSON.parse(new TextDecoder().decode(status.stdout).trim() || "[]");
    const id = runs[0]?.run;
    if (id === undefined) continue;
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "approve", id, "f", "--store", db],
      cwd: dir,
      stdout: "null",
      stderr: "null",
    }).output();
    return;
  }
}

const head = (name: string) => `runbook: 1\nname: ${name}\nbandwidth: 10MB/s\nsteps:\n`;

if (import.meta.main) {
  const args = parseArgs({ args: Deno.args, options: { cap: { type: "string", default: "60" } } });
  const cap = Number(args.values.cap);
  const served = await Deno.makeTempDir();
  await Deno.writeFile(join(served, "f.bin"), new Uint8Array(SIZE).fill(7));
  const slow = startBackupServer(served, { firstByteMs: 2500 });
  const fast = startBackupServer(served);
  try {
    const cases: [string, () => Promise<Outcome>][] = [
      ["run: source silent for 2.5 s", () =>
        inDir(
          head("slow-run") +
            `  - id: f\n    fetch:\n      run: sleep 2.5; head -c ${SIZE} /dev/zero > "$THAW_TO"\n` +
            `      to: ./out/f.bin\n`,
          (dir) => run(dir, cap),
        )],
      ["HTTP server answering after 2.5 s", () =>
        inDir(
          head("slow-http") +
            `  - { id: f, fetch: { from: "${slow.url}f.bin", to: ./out/f.bin } }\n`,
          (dir) => run(dir, cap),
        )],
      ["approved 2.5 s after it started", () =>
        inDir(
          head("gated") +
            `  - id: f\n    approval: go?\n    fetch: { from: "${fast.url}f.bin", to: ./out/f.bin }\n`,
          (dir) => run(dir, cap, approveLater),
        )],
    ];
    for (const [name, measure] of cases) {
      const o = await measure();
      const time = o.seconds === null
        ? `stalled (killed after ${cap} s)`
        : `${o.seconds.toFixed(2)} s`;
      console.log(`${name}: ${time}, ${o.warnings} TimeoutOverflowWarning(s)`);
    }
  } finally {
    await slow.close();
    await fast.close();
    await Deno.remove(served, { recursive: true });
  }
}
