/**
 * thaw against ninja on the same DAG, like for like: 1,000 steps, each needing up to three earlier
 * steps, run with parallelism 2 on both sides. Prints the median wall time of each (the whole
 * command, start-up included), the ratio, the start-up of each on a 1-step DAG, the CPU time of
 * thaw's engine thread (less sensitive than wall time to other work on the machine) and the load
 * average before and after; exits 1 if thaw takes more than 2x ninja.
 *
 * What each side does per step:
 * - ninja (`ninja -j2`): rule `command = true`; ninja runs it as `/bin/sh -c true` (one fork and
 *   exec of `sh`; `true` is a shell builtin). The outputs are never written, so ninja has no
 *   stamps to stat afterwards beyond its own log (`.ninja_log`), which it appends per edge.
 * - thaw (`thaw run dag.yaml --store s.db`): `run: "true"`, `shell: sh`: one process (`sh -c
 *   true`), started with posix_spawn through FFI (on a worker thread) as the leader of a new
 *   session and process group (`steps/process/spawn_native.ts`) and, where cgroup2 is writable
 *   (root), placed in a cgroup of its own before its command runs (`steps/process/cgroup.ts`: with
 *   glibc 2.39+ born there, else the shell's first command writes its pid to the cgroup,
 *   `self_place.ts`); its output piped to the engine (as ninja's is); its pid recorded in the
 *   SQLite store, and each state change (`running`, `done`) committed to the store before a step
 *   that needs it starts.
 *
 * Both sides wait in posix_spawn until the new process has exec'd (glibc uses vfork): on a busy
 * machine that wait grows with the queue for a CPU, and thaw needs more CPU besides its steps'
 * (its engine thread, V8's compiler and collector threads). Compare figures taken with the same
 * load average; the ratio of each round (ninja and thaw run one after the other) is printed too.
 *
 * ```sh
 * deno run -A tests/bench/ninja_dag.ts [--steps 1000] [--rounds 5]
 * ```
 *
 * Needs `ninja` (Debian: ninja-build).
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { mulberry32 } from "../gen.ts";
import { fromFileUrl } from "../paths.ts";

const MAIN = fromFileUrl(new URL("../../engine/main.ts", import.meta.url));
const MAX_RATIO = 2;

/** The DAG: for each step, the earlier steps it needs. */
export function dag(steps: number, seed = 1): number[][] {
  const rnd = mulberry32(seed);
  return Array.from({ length: steps }, (_, i) => {
    const needs = new Set<number>();
    const k = i === 0 ? 0 : Math.floor(rnd() * 4);
    for (let j = 0; j < k; j++) needs.add(Math.max(0, i - 1 - Math.floor(rnd() * 20)));
    return [...needs];
  });
}

/** The runbook: one `run: "true"` step (`shell: sh`) per node, parallelism 2. */
export function runbook(d: number[][]): string {
  const lines = ["runbook: 1", "name: dag", "parallelism: 2", "steps:"];
  d.forEach((needs, i) => {
    const n = needs.length ? `, needs: [${needs.map((j) => `s${j}`).join(", ")}]` : "";
    lines.push(`  - { id: s${i}, run: "true", shell: sh${n} }`);
  });
  return lines.join("\n") + "\n";
}

/** The ninja file: one edge per node running `true`, order the same as the runbook's needs. */
export function ninja(d: number[][]): string {
  // The outputs are never written: a fresh directory each round makes every edge run.
  const lines = ["rule t", "  command = true"];
  d.forEach((needs, i) => {
    const deps = needs.length ? ` | ${needs.map((j) => `s${j}`).join(" ")}` : "";
    lines.push(`build s${i}: t${deps}`);
  });
  return lines.join("\n") + "\n";
}

/** Wall time of `cmd` (ms), and the CPU time of its main thread (ms, read from /proc). */
async function time(cmd: string, args: string[], cwd: string): Promise<[number, number]> {
  const t0 = performance.now();
  const child = new Deno.Command(cmd, { args, cwd, stdout: "null", stderr: "piped" }).spawn();
  let cpu = 0, done = false;
  const output = child.output().finally(() => done = true);
  while (!done) {
    cpu = threadCpu(child.pid) ?? cpu;
    await new Promise((r) => setTimeout(r, 10));
  }
  const out = await output;
  const ms = performance.now() - t0;
  if (!out.success) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
  return [ms, cpu];
}

/** CPU time (ms) of the main thread of `pid` so far; undefined once it is gone. */
function threadCpu(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in USER_HZ (100)
  } catch {
    return undefined;
  }
}

/** The 1, 5 and 15 minute load averages. */
function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** One round: both sides on a fresh directory each; [ninja ms, thaw ms, thaw engine CPU ms]. */
async function round(d: number[][]): Promise<[number, number, number]> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-ninja-" });
  try {
    await Deno.writeTextFile(join(dir, "dag.yaml"), runbook(d));
    await Deno.writeTextFile(join(dir, "build.ninja"), ninja(d));
    const [n] = await time("ninja", ["-j2", "-C", dir], dir);
    const args = ["run", "-A", MAIN, "run", "dag.yaml", "--store", "s.db"];
    const [t, cpu] = await time(Deno.execPath(), args, dir);
    return [n, t, cpu];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      steps: { type: "string", default: "1000" },
      rounds: { type: "string", default: "5" },
    },
  });
  const rounds = Number(values.rounds);
  const d = dag(Number(values.steps));
  const one = dag(1);
  const thawMs: number[] = [], ninjaMs: number[] = [], thawCpu: number[] = [];
  const thawStart: number[] = [], ninjaStart: number[] = [], ratios: number[] = [];
  const loadBefore = loadAverage();
  await round(d); // warm-up: deno's module cache, the page cache
  for (let r = 0; r < rounds; r++) {
    const [n, t, cpu] = await round(d);
    ninjaMs.push(n);
    thawMs.push(t);
    thawCpu.push(cpu);
    ratios.push(t / n);
    const [n1, t1] = await round(one);
    ninjaStart.push(n1);
    thawStart.push(t1);
  }
  const t = median(thawMs), n = median(ninjaMs);
  const t1 = median(thawStart), n1 = median(ninjaStart);
  const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");
  console.log(
    `${values.steps}-step DAG of \`true\` through sh, parallelism 2, median of ${rounds}`,
  );
  console.log(`  ninja -j2  ${n.toFixed(0)} ms  (${list(ninjaMs)})`);
  console.log(`  thaw run   ${t.toFixed(0)} ms  (${list(thawMs)})`);
  console.log(`  thaw's engine thread CPU ${median(thawCpu).toFixed(0)} ms  (${list(thawCpu)})`);
  console.log(`  1-step DAG (start-up): ninja ${n1.toFixed(0)} ms, thaw ${t1.toFixed(0)} ms`);
  console.log(
    `  per step without start-up: ninja ${((n - n1) / d.length).toFixed(2)} ms, ` +
      `thaw ${((t - t1) / d.length).toFixed(2)} ms`,
  );
  console.log(`  thaw / ninja: ${(t / n).toFixed(2)} (target <= ${MAX_RATIO})`);
  const paired = ratios.map((r) => r.toFixed(2)).join(", ");
  console.log(`  thaw / ninja in each round: median ${median(ratios).toFixed(2)} (${paired})`);
  console.log(`  load average before: ${loadBefore}, after: ${loadAverage()}`);
  Deno.exit(t / n <= MAX_RATIO ? 0 : 1);
}
