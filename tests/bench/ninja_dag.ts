/**
 * thaw against ninja on the same DAG, like for like: 1,000 steps, each needing up to three earlier
 * steps, run with parallelism 2 on both sides. Prints the median wall time of each (the whole
 * command, start-up included), the ratio, and the start-up of each on a 1-step DAG; exits 1 if
 * thaw takes more than 2x ninja.
 *
 * What each side does per step:
 * - ninja (`ninja -j2`): rule `command = true`; ninja runs it as `/bin/sh -c true` (one fork and
 *   exec of `sh`; `true` is a shell builtin). The outputs are never written, so ninja has no
 *   stamps to stat afterwards beyond its own log (`.ninja_log`), which it appends per edge.
 * - thaw (`thaw run dag.yaml --store s.db`): `run: "true"`, `shell: sh`: one process, started
 *   through `setsid` (`setsid sh -c true`: setsid execs sh in the same process, no extra fork),
 *   in its own process group; its pid recorded in the SQLite store, and each state change
 *   (`running`, `done`) committed to the store before a step that needs it starts.
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

async function time(cmd: string, args: string[], cwd: string): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "null", stderr: "piped" }).output();
  const ms = performance.now() - t0;
  if (!out.success) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** One round: both sides on a fresh directory each; [ninja ms, thaw ms]. */
async function round(d: number[][]): Promise<[number, number]> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-ninja-" });
  try {
    await Deno.writeTextFile(join(dir, "dag.yaml"), runbook(d));
    await Deno.writeTextFile(join(dir, "build.ninja"), ninja(d));
    const n = await time("ninja", ["-j2", "-C", dir], dir);
    const args = ["run", "-A", MAIN, "run", "dag.yaml", "--store", "s.db"];
    const t = await time(Deno.execPath(), args, dir);
    return [n, t];
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
  const thawMs: number[] = [], ninjaMs: number[] = [];
  const thawStart: number[] = [], ninjaStart: number[] = [];
  await round(d); // warm-up: deno's module cache, the page cache
  for (let r = 0; r < rounds; r++) {
    const [n, t] = await round(d);
    ninjaMs.push(n);
    thawMs.push(t);
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
  console.log(`  1-step DAG (start-up): ninja ${n1.toFixed(0)} ms, thaw ${t1.toFixed(0)} ms`);
  console.log(
    `  per step without start-up: ninja ${((n - n1) / d.length).toFixed(2)} ms, ` +
      `thaw ${((t - t1) / d.length).toFixed(2)} ms`,
  );
  console.log(`  thaw / ninja: ${(t / n).toFixed(2)} (target <= ${MAX_RATIO})`);
  Deno.exit(t / n <= MAX_RATIO ? 0 : 1);
}
