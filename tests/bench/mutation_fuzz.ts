/**
 * The long run of the mutation fuzzer (`tests/mutation_fuzz.ts`): many mutants of the bundled
 * runbooks through load, plan and simulate; prints how many ran, were refused (positioned
 * problems) or went wrong, and the time. Exits 1 on anything wrong or a hang.
 *
 *     deno run -A tests/bench/mutation_fuzz.ts [MUTANTS] [SEED]
 *
 * @module
 */
import { fuzzInWorker } from "../mutation_fuzz.ts";

const count = Number(Deno.args[0] ?? 50_000);
const seed = Number(Deno.args[1] ?? 1);
const start = performance.now();
const result = await fuzzInWorker(seed, count, 30_000);
const seconds = (performance.now() - start) / 1000;
if ("stalled" in result) {
  const { file, index, text } = result.stalled;
  console.log(`mutant ${index} of ${file} did not finish in 30s (seed ${seed}):\n${text}`);
  Deno.exit(1);
}
const { mutants, ran, refused, bad } = result.counts;
console.log(
  `mutation fuzz, seed ${seed}: ${mutants} mutants in ${seconds.toFixed(1)}s ` +
    `(${Math.round(mutants / seconds)}/s): ${ran} ran, ${refused} refused with positioned ` +
    `problems, ${bad.length} wrong`,
);
for (const b of bad.slice(0, 5)) {
  console.log(`\nmutant ${b.index} of ${b.seed}: ${b.problem}\n${b.text}`);
}
if (bad.length) Deno.exit(1);
