/**
 * The 100,000-step runbook through the real CLI: writes it to a temporary file, runs
 * `deno run -A engine/main.ts drill --simulate FILE --json` five times as a child process, and
 * reports the min and median wall time and the child's peak RSS; PASS when the median is under
 * 3 s (exit 0), FAIL otherwise (exit 1).
 *
 * Peak RSS comes from `/usr/bin/time -f %M` when it is installed, else from polling `VmHWM` in
 * `/proc/PID/status` (or with `--proc`).
 *
 * ```sh
 * deno run -A tests/bench/big_runbook.ts [--runs 5] [--limit 3] [--proc]
 * ```
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { bigRunbook } from "../gen.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = fileURLToPath(new URL("../../engine/main.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));

/** One run of the child: wall time, peak resident memory, exit code, output. */
export interface Sample {
  seconds: number;
  /** Peak RSS in bytes (NaN when it could not be measured). */
  peakRss: number;
  code: number;
  stdout: string;
  stderr: string;
}

/** The path of GNU time, if `which` finds one. */
async function findTime(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("which", { args: ["time"], stdout: "piped", stderr: "null" })
      .output();
    const path = new TextDecoder().decode(out.stdout).trim();
    return out.success && path.startsWith("/") ? path : undefined;
  } catch {
    return undefined;
  }
}

/** Runs `args` once, timing it and measuring its peak RSS. */
async function sample(args: string[], time: string | undefined): Promise<Sample> {
  const command = time ? time : Deno.execPath();
  const argv = time ? ["-f", "%M", Deno.execPath(), ...args] : args;
  const started = performance.now();
  const child = new Deno.Command(command, {
    args: argv,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let hwm = NaN;
  let polling = !time;
  const poll = (async () => {
    while (polling) {
      try {
        const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
        const m = /VmHWM:\s+(\d+) kB/.exec(status);
        if (m) hwm = Math.max(Number.isNaN(hwm) ? 0 : hwm, Number(m[1]) * 1024);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const out = await child.output();
  const seconds = (performance.now() - started) / 1000;
  polling = false;
  await poll;
  const decoder = new TextDecoder();
  let stderr = decoder.decode(out.stderr);
  let peakRss = hwm;
  if (time) {
    // GNU time appends the max RSS, in KiB, as the last line of stderr.
    const lines = stderr.trimEnd().split("\n");
    peakRss = Number(lines.pop()) * 1024;
    stderr = lines.join("\n");
  }
  return { seconds, peakRss, code: out.code, stdout: decoder.decode(out.stdout), stderr };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "5" },
      limit: { type: "string", default: "3" },
      proc: { type: "boolean", default: false },
    },
  });
  const runs = Number(values.runs), limit = Number(values.limit);
  const text = bigRunbook();
  const file = await Deno.makeTempFile({ prefix: "thaw-big-", suffix: ".yaml" });
  try {
    await Deno.writeTextFile(file, text);
    const steps = (text.match(/\n {2}- /g) ?? []).length;
    const time = values.proc ? undefined : await findTime();
    console.log(
      `${steps} steps, ${(text.length / 2 ** 20).toFixed(1)} MiB of YAML at ${file}\n` +
        `peak RSS from ${time ? `${time} -f %M` : "/proc/PID/status VmHWM (polled)"}\n`,
    );
    const args = ["run", "-A", "--config", CONFIG, MAIN, "drill", "--simulate", file, "--json"];
    console.log(`deno ${args.join(" ")}`);
    const samples: Sample[] = [];
    for (let i = 0; i < runs; i++) {
      const s = await sample(args, time);
      samples.push(s);
      let note = "";
      if (s.code !== 0 && s.code !== 3) note = `  exit ${s.code}: ${s.stderr.trim().slice(0, 500)}`;
      else {
        const report = JSON.parse(s.stdout.trim().split("\n")[0]!);
        if (report.steps?.length !== steps) note = `  report has ${report.steps?.length} steps`;
        else note = `  ttr ${report.ttr_s} s, btn ${report.btn_s} s`;
      }
      console.log(
        `  run ${i + 1}: ${s.seconds.toFixed(3)} s, peak RSS ${
          (s.peakRss / 2 ** 20).toFixed(0)
        } MiB` +
          note,
      );
    }
    const ok = samples.every((s) => s.code === 0 || s.code === 3);
    const secs = samples.map((s) => s.seconds), rss = samples.map((s) => s.peakRss);
    const med = median(secs);
    console.log(
      `\nwall time: min ${Math.min(...secs).toFixed(3)} s, median ${med.toFixed(3)} s; ` +
        `peak RSS: median ${(median(rss) / 2 ** 20).toFixed(0)} MiB, ` +
        `max ${(Math.max(...rss) / 2 ** 20).toFixed(0)} MiB`,
    );
    const pass = ok && med <= limit;
    console.log(
      `${pass ? "PASS" : "FAIL"}: median ${med.toFixed(3)} s against ${limit} s` +
        (ok ? "" : " (a run failed)"),
    );
    return pass ? 0 : 1;
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main());
