/**
 * How close the scheduler gets to the lower bounds (the contract's, revision 2), over seeded
 * random runbooks.
 *
 * Prints, per strategy, the median, 90th percentile and worst of TTR / lower-bound TTR and of
 * BTN / lower-bound BTN, and how aggressive compares with serial and lazy; lists the seeds
 * furthest from the bound; exits 1 if aggressive misses the target: TTR within 5% of the lower
 * bound at the median and within 25% at worst.
 *
 * ```sh
 * deno run -A tests/bench/quality.ts [--seeds 500] [--worst 10]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { Report } from "../../engine/schedule/report.ts";
import { STRATEGIES, type Strategy } from "../../engine/runbook/schema.ts";
import { planGraph, simulatedReport, simulateGraph } from "../../engine/simulate/simulate.ts";
import { randomRunbookParsed } from "../gen.ts";

/** The targets of the issue, for aggressive TTR / lower-bound TTR. */
export const TARGET = { median: 1.05, worst: 1.25 } as const;

/** A quantile (0..1) of numbers, by the nearest rank. */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
}

/** Measured over bound (1 when the bound is 0 and so is the measure). */
function ratio(measured: number | null, bound: number): number {
  if (measured === null) return Infinity;
  return bound > 0 ? measured / bound : measured > 0 ? Infinity : 1;
}

interface Row {
  seed: number;
  parallelism: number;
  steps: number;
  reports: Record<Strategy, Report>;
}

function main(): number {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seeds: { type: "string", default: "500" },
      worst: { type: "string", default: "10" },
      "small-parallelism": { type: "boolean", default: false },
    },
  });
  const seeds = Number(values.seeds), worstShown = Number(values.worst);
  const rows: Row[] = [];
  const t0 = performance.now();
  for (let seed = 0; seed < seeds; seed++) {
    const runbook = randomRunbookParsed(seed, {
      smallParallelism: values["small-parallelism"],
    });
    // Planned once; each strategy simulated over the same graph.
    const { graph, analysis } = planGraph(runbook);
    const reports = {} as Record<Strategy, Report>;
    for (const s of STRATEGIES) {
      const sim = simulateGraph(graph, analysis, s, runbook.parallelism);
      reports[s] = simulatedReport(runbook, analysis, sim, "q");
    }
    rows.push({ seed, parallelism: runbook.parallelism, steps: runbook.steps.length, reports });
  }
  const ms = performance.now() - t0;

  const ttr = (r: Row, s: Strategy) => ratio(r.reports[s].ttr_s, r.reports[s].lower_bound.ttr_s);
  const btn = (r: Row, s: Strategy) => ratio(r.reports[s].btn_s, r.reports[s].lower_bound.btn_s);
  const f = (x: number) => x.toFixed(3).padStart(8);
  console.log(`thaw scheduler quality: ${seeds} random runbooks, ${ms.toFixed(0)} ms\n`);
  console.log("strategy    TTR/LB: median     p90   worst   BTN/LB: median     p90   worst");
  for (const s of STRATEGIES) {
    const t = rows.map((r) => ttr(r, s)), b = rows.map((r) => btn(r, s));
    console.log(
      `${s.padEnd(10)}  ${" ".repeat(7)}${f(quantile(t, 0.5))}${f(quantile(t, 0.9))}` +
        `${f(quantile(t, 1))}  ${" ".repeat(7)}${f(quantile(b, 0.5))}${f(quantile(b, 0.9))}` +
        `${f(quantile(b, 1))}`,
    );
  }
  console.log("\naggressive / other   TTR: median    best   worst   BTN: median    best   worst");
  for (const other of ["serial", "lazy"] as const) {
    const rt = rows.map((r) => r.reports.aggressive.ttr_s! / r.reports[other].ttr_s!);
    const rb = rows.map((r) => r.reports.aggressive.btn_s! / r.reports[other].btn_s!);
    console.log(
      `${other.padEnd(18)}  ${f(quantile(rt, 0.5))}${f(quantile(rt, 0))}${f(quantile(rt, 1))}` +
        `       ${f(quantile(rb, 0.5))}${f(quantile(rb, 0))}${f(quantile(rb, 1))}`,
    );
  }
  const byTtr = [...rows].sort((a, b) => ttr(b, "aggressive") - ttr(a, "aggressive"));
  console.log(`\nfurthest from the bound (aggressive):`);
  console.log(
    "    seed  steps  par   TTR/LB       TTR    LB TTR  serial TTR   BTN/LB",
  );
  for (const r of byTtr.slice(0, worstShown)) {
    const a = r.reports.aggressive;
    const cells = [r.seed, r.steps, r.parallelism].map((x, k) => String(x).padStart([8, 7, 5][k]!));
    const serial = r.reports.serial.ttr_s!;
    console.log(
      `${cells.join("")}${f(ttr(r, "aggressive"))}  ${f(a.ttr_s!)}  ${f(a.lower_bound.ttr_s)}` +
        `    ${f(serial)} ${f(btn(r, "aggressive"))}`,
    );
  }
  const t = rows.map((r) => ttr(r, "aggressive"));
  const median = quantile(t, 0.5), worst = quantile(t, 1);
  const ok = median <= TARGET.median && worst <= TARGET.worst;
  console.log(
    `\naggressive TTR/LB median ${median.toFixed(4)} (target <= ${TARGET.median}), ` +
      `worst ${worst.toFixed(4)} (target <= ${TARGET.worst}): ${ok ? "PASS" : "FAIL"}`,
  );
  const within = (x: number) => t.filter((v) => v <= x).length;
  console.log(
    `aggressive runbooks within 1.01x of the bound: ${within(1.01)}, within 1.10x: ` +
      `${within(1.10)}, of ${seeds}`,
  );
  return ok ? 0 : 1;
}

if (import.meta.main) Deno.exit(main());
