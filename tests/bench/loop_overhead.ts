/**
 * The live engine's own work per step, without processes: the ninja DAG (`ninja_dag.ts`) with
 * every step drill-skipped (`estimate` 0), so `thaw drill` runs the scheduler, the commit per
 * turn, the live view and the reports, and spawns nothing. Prints the median CPU time of the
 * engine's main thread (read from /proc while it runs) and the wall time, over `--rounds` runs.
 *
 * With `--against DIR`, runs the `engine/main.ts` of another checkout too (a `git worktree` of an
 * earlier commit), alternating the two so that both see the same load.
 *
 * ```sh
 * deno run -A tests/bench/loop_overhead.ts [--steps 1000] [--rounds 7] [--against /tmp/old]
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { dag, runbook } from "./ninja_dag.ts";
import { fromFileUrl } from "../paths.ts";

const MAIN = fromFileUrl(new URL("../../engine/main.ts", import.meta.url));

/** The DAG's runbook with every step drill-skipped. */
function skipped(steps: number): string {
  const d = dag(steps);
  const skip = d.map((_, i) => `s${i}`).join(", ");
  return runbook(d).replace("steps:\n", `drill:\n  skip: [${skip}]\nsteps:\n`);
}

/** CPU ms of the main thread of process `pid` so far (utime + stime), or undefined once gone. */
function threadCpu(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms
  } catch {
    return undefined;
  }
}

/** One `thaw drill` of `text` with `main`: [engine thread CPU ms, wall ms]. */
async function once(main: string, text: string): Promise<[number, number]> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-loop-" });
  try {
    await Deno.writeTextFile(join(dir, "dag.yaml"), text);
    const t0 = performance.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "drill", "dag.yaml", "--store", "s.db"],
      cwd: dir,
      stdout: "null",
      stderr: "null",
    }).spawn();
    let cpu = 0, done = false;
    const status = child.status.then((s) => (done = true, s));
    for (let k = 0; !done && k < 60_000; k++) { // bounded: 20 minutes at most
      cpu = threadCpu(child.pid) ?? cpu;
      await new Promise((r) => setTimeout(r, 20));
    }
    const s = await status;
    if (!s.success) throw new Error(`thaw drill exited ${s.code}`);
    return [cpu, performance.now() - t0];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      steps: { type: "string", default: "1000" },
      rounds: { type: "string", default: "7" },
      against: { type: "string" },
    },
  });
  const steps = Number(values.steps), text = skipped(steps);
  const mains: [string, string][] = [["this checkout", MAIN]];
  if (values.against) mains.unshift([values.against, join(values.against, "engine/main.ts")]);
  const cpu = mains.map(() => [] as number[]), wall = mains.map(() => [] as number[]);
  for (const [, main] of mains) await once(main, text); // warm-up: module cache, page cache
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const [k, [, main]] of mains.entries()) {
      const [c, w] = await once(main, text);
      cpu[k]!.push(c);
      wall[k]!.push(w);
    }
  }
  console.log(`${steps} drill-skipped steps, parallelism 2, median of ${values.rounds}:`);
  for (const [k, [name]] of mains.entries()) {
    const c = median(cpu[k]!);
    console.log(
      `  ${name}: engine thread CPU ${c.toFixed(0)} ms (${(c / steps).toFixed(2)} ms a step, ` +
        `start-up included), wall ${median(wall[k]!).toFixed(0)} ms`,
    );
  }
}
