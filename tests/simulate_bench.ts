/**
 * Benchmarks of the simulator: the 100,000-step runbook parsed and simulated in process, the
 * simulation alone on it, and a small random runbook.
 *
 * ```sh
 * deno bench -A tests/simulate_bench.ts
 * ```
 *
 * @module
 */
import { parseRunbook } from "../engine/runbook/load.ts";
import { simulate } from "../engine/simulate/simulate.ts";
import { bigRunbook, randomRunbook } from "./gen.ts";

const bigText = bigRunbook();
const big = parseRunbook(bigText, "big.yaml");
const smallText = randomRunbook(7, { fetches: [10, 12], runs: [10, 12] });
const small = parseRunbook(smallText, "small.yaml");

Deno.bench({
  name: "parse + simulate, 100,000 steps",
  group: "100k",
  baseline: true,
  n: 5,
  warmup: 1,
  fn() {
    simulate(parseRunbook(bigText, "big.yaml"), { strategy: "aggressive" });
  },
});

Deno.bench({
  name: "simulate() alone, 100,000 steps",
  group: "100k",
  n: 10,
  warmup: 2,
  fn() {
    simulate(big, { strategy: "aggressive" });
  },
});

Deno.bench({
  name: `simulate() alone, small random runbook (${small.steps.length} steps)`,
  group: "small",
  baseline: true,
  fn() {
    simulate(small, { strategy: "aggressive" });
  },
});

Deno.bench({
  name: `parse + simulate, small random runbook (${small.steps.length} steps)`,
  group: "small",
  fn() {
    simulate(parseRunbook(smallText, "small.yaml"), { strategy: "aggressive" });
  },
});
