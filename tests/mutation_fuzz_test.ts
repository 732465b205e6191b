/**
 * The mutation fuzz test: a few thousand mutants of the bundled runbooks (fixed seed) through
 * load, plan and simulate; none may throw anything but positioned problems, none may hang. A
 * longer run is `deno run -A tests/bench/mutation_fuzz.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fuzzInWorker } from "./mutation_fuzz.ts";

const SEED = 20261130;
const MUTANTS = 3000;

Deno.test("load, plan and simulate refuse every mutant with positioned problems or run it, when the bundled runbooks are mutated", async () => {
  const result = await fuzzInWorker(SEED, MUTANTS, 20_000);
  if ("stalled" in result) {
    const { file, index, text } = result.stalled;
    assert.fail(`mutant ${index} of ${file} did not finish (seed ${SEED}):\n${text}`);
  }
  const { counts } = result;
  const shown = counts.bad.slice(0, 3).map((b) => `mutant ${b.index} of ${b.seed}: ${b.problem}`);
  assert.deepEqual(shown, []);
  assert.equal(counts.mutants, MUTANTS);
  // The mutations reach both sides: some mutants still run, most are refused.
  assert.ok(counts.ran > MUTANTS / 20, `only ${counts.ran} mutants ran`);
  assert.ok(counts.refused > MUTANTS / 2, `only ${counts.refused} mutants were refused`);
});
