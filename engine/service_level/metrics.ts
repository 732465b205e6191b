/**
 * The service level in `GET /metrics` (Prometheus text format 0.0.4), pure: for each recent run
 * with a service level, per probe, the windows' sample counts, success ratios and levels (p95
 * latency in seconds, or mean value), the degradation, the time below objective, whether the
 * objective is met, and the last sample taken (the level now, while the run goes on). Labels:
 * `run`, `runbook`, `probe` (and `window`), so the series stay bounded by the recent runs.
 *
 * @module
 */
import type { WindowFigures } from "./measures.ts";
import type { ServiceLevelReport } from "./report.ts";

/** A recent run's service level, as the metrics show it. */
export interface SlMetricsRun {
  readonly run: string;
  readonly runbook: string;
  readonly service_level: ServiceLevelReport;
}

type Row = [Record<string, string>, number];

/** `{a="x",b="y"}`, values escaped as the format wants (backslash, quote, newline). */
function labelText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) =>
    `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`
  );
  return parts.length ? `{${parts.join(",")}}` : "";
}

function num(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "+Inf";
  if (x === -Infinity) return "-Inf";
  return String(x);
}

/**
 * One gauge family in the Prometheus text format: its HELP and TYPE lines, then a line per row
 * (labels escaped; NaN and the infinities as the format spells them). Also used by the rest of
 * `/metrics` (`engine/api/metrics.ts`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gaugeLines } from "./metrics.ts";
 * assert.deepEqual(gaugeLines("up", "Up.", [[{ job: 'a"b' }, Infinity]]), [
 *   "# HELP up Up.",
 *   "# TYPE up gauge",
 *   'up{job="a\\"b"} +Inf',
 * ]);
 * ```
 */
export function gaugeLines(name: string, help: string, rows: readonly Row[]): string[] {
  const out = [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`];
  for (const [labels, value] of rows) out.push(`${name}${labelText(labels)} ${num(value)}`);
  return out;
}

/**
 * The metric families of the service level (HELP and TYPE lines included), to append to the
 * rest of `/metrics`; no line at all when no run has a service level.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { slMetricLines } from "./metrics.ts";
 * const lines = slMetricLines([{ run: "r1", runbook: "shop", service_level: { api: {
 *   kind: "http", from_s: 1, recovery: { samples: 4, success: 1, p95_ms: 250 },
 *   normal: { samples: 2, success: 1, p95_ms: 50 }, degradation: 4, below_objective_s: 2,
 *   outcome: "missed", objective: {} } } }]);
 * assert(lines.includes('thaw_run_sl_degradation_ratio{run="r1",runbook="shop",probe="api"} 4'));
 * assert(lines.includes(
 *   'thaw_run_sl_p95_latency_seconds{run="r1",runbook="shop",probe="api",window="recovery"} 0.25',
 * ));
 * ```
 */
export function slMetricLines(runs: readonly SlMetricsRun[]): string[] {
  const probes = runs.flatMap((r) =>
    Object.entries(r.service_level).map(([probe, p]) => ({
      id: { run: r.run, runbook: r.runbook, probe },
      p,
    }))
  );
  if (!probes.length) return [];
  const out: string[] = [];
  const family = (name: string, help: string, rows: Row[]) =>
    out.push(...gaugeLines(name, help, rows));
  const windows = (f: (w: WindowFigures) => number | null | undefined) =>
    probes.flatMap(({ id, p }) =>
      (["recovery", "normal"] as const).flatMap((window): Row[] => {
        const v = f(p[window]);
        if (v === null || v === undefined) return [];
        return [[{ ...id, window }, v]];
      })
    );
  family(
    "thaw_run_sl_samples",
    "Service level: samples taken, by probe and window (recovery: until BTN; normal: after it).",
    windows((w) => w.samples),
  );
  family(
    "thaw_run_sl_success_ratio",
    "Service level: share of samples that succeeded, by probe and window.",
    windows((w) => w.success),
  );
  family(
    "thaw_run_sl_p95_latency_seconds",
    "Service level, http and tcp probes: 95th percentile latency of the window, in seconds.",
    windows((w) => typeof w.p95_ms === "number" ? w.p95_ms / 1000 : null),
  );
  family(
    "thaw_run_sl_value_mean",
    "Service level, run probes: mean of the numbers the probe printed in the window.",
    windows((w) => w.mean),
  );
  const per = (f: (p: (typeof probes)[number]["p"]) => number | null): Row[] =>
    probes.flatMap(({ id, p }) => {
      const v = f(p);
      return v === null ? [] : [[id, v]];
    });
  family(
    "thaw_run_sl_degradation_ratio",
    "Service level: how much worse the recovery window is than normal (0.2 = 20% worse).",
    per((p) => p.degradation),
  );
  family(
    "thaw_run_sl_below_objective_seconds",
    "Service level: seconds of the recovery window spent below the probe's objective.",
    per((p) => p.below_objective_s),
  );
  family(
    "thaw_run_sl_objective_met",
    "Service level: 1 while the probe's objective is met, 0 once missed.",
    per((p) => p.outcome === "met" ? 1 : 0),
  );
  family(
    "thaw_run_sl_last_value",
    "Service level: the last sample's value (latency in seconds for http and tcp probes).",
    per((p) => {
      const last = p.samples?.[p.samples.length - 1];
      if (!last || last.value === null) return null;
      return p.kind === "run" ? last.value : last.value / 1000;
    }),
  );
  family(
    "thaw_run_sl_last_ok",
    "Service level: whether the last sample succeeded (1) or failed (0).",
    per((p) => {
      const last = p.samples?.[p.samples.length - 1];
      return last ? (last.ok ? 1 : 0) : null;
    }),
  );
  return out;
}
