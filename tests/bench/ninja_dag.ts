/**
 * thaw against ninja on the same DAG: 1,000 steps of `true` (`shell: sh`), each needing up to
 * three earlier steps, run with parallelism 2 (`ninja -j2`). Prints the median wall time of each
 * (whole command, start-up included) and the ratio; exits 1 if thaw takes more than 1.5x ninja.
 *
 * ```sh
 * deno run -A tests/bench/ninja_dag.ts [--steps 1000] [--rounds 3]
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

function runbook(d: number[][]): string {
  const lines = ["runbook: 1", "name: dag", "parallelism: 2", "steps:"];
  d.forEach((needs, i) => {
    const n = needs.length ? `, needs: [${needs.map((j) => `s${j}`).join(", ")}]` : "";
    lines.push(`  - { id: s${i}, run: "true", shell: sh${n} }`);
  });
  return lines.join("\n") + "\n";
}

function ninja(d: number[][]): string {
  // Phony outputs would be skipped: each edge runs `true` and touches its stamp, as thaw's
  // steps have no outputs to check either; a fresh directory each round makes all of them run.
  const lines = ["rule t", "  command = sh -c true && touch $out"];
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

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      steps: { type: "string", default: "1000" },
      rounds: { type: "string", default: "3" },
    },
  });
  const d = dag(Number(values.steps));
  const thawMs: number[] = [], ninjaMs: number[] = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(join(dir, "dag.yaml"), runbook(d));
      await Deno.writeTextFile(join(dir, "build.ninja"), ninja(d));
      ninjaMs.push(await time("ninja", ["-j2", "-C", dir], dir));
      thawMs.push(
        await time(Deno.execPath(), ["run", "-A", MAIN, "run", "dag.yaml", "--store", "s.db"], dir),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  const t = median(thawMs), n = median(ninjaMs);
  console.log(`${values.steps}-step DAG of true, parallelism 2, median of ${values.rounds}`);
  console.log(`  ninja -j2  ${n.toFixed(0)} ms  (${ninjaMs.map((x) => x.toFixed(0)).join(", ")})`);
  console.log(`  thaw run   ${t.toFixed(0)} ms  (${thawMs.map((x) => x.toFixed(0)).join(", ")})`);
  console.log(`  thaw / ninja: ${(t / n).toFixed(2)} (target <= 1.5)`);
  Deno.exit(t / n <= 1.5 ? 0 : 1);
}
