/**
 * The service level in the terminal report: one line per probe, the recovery window against
 * normal, the degradation, the time below objective and the outcome ("last measured" for a
 * simulated drill, which shows the last live drill's).
 *
 * @module
 */
import type { WindowFigures } from "./measures.ts";
import type { ServiceLevelReport, SlProbeReport } from "./report.ts";

const r1 = (x: number) => String(Math.round(x * 10) / 10);

/** A window in a few words: `p95 48ms, 212 samples, 100% ok`. */
function windowWords(kind: SlProbeReport["kind"], w: WindowFigures): string {
  if (!w.samples) return "no samples";
  const level = kind === "run"
    ? (typeof w.mean === "number" ? `mean ${r1(w.mean)}` : "no value")
    : (typeof w.p95_ms === "number" ? `p95 ${r1(w.p95_ms)}ms` : "no answer");
  const ok = w.success === null ? "" : `, ${r1(w.success * 100)}% ok`;
  return `${level}, ${w.samples} samples${ok}`;
}

/**
 * The lines of the report's service level (none without one).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { slLines } from "./text.ts";
 * const lines = slLines({ api: { kind: "http", from_s: 1,
 *   recovery: { samples: 4, success: 1, p95_ms: 96 }, normal: { samples: 2, success: 1, p95_ms: 48 },
 *   degradation: 1, below_objective_s: 2, outcome: "missed", objective: {} } });
 * assert.equal(lines[0], "service level");
 * assert.match(lines[1]!, /api: recovery p95 96ms, 4 samples, 100% ok; normal p95 48ms.*degradation 100%.*missed/);
 * ```
 */
export function slLines(sl: ServiceLevelReport | undefined): string[] {
  const probes = Object.entries(sl ?? {});
  if (!probes.length) return [];
  const out = ["service level"];
  for (const [name, p] of probes) {
    const d = p.degradation === null ? "" : `; degradation ${r1(p.degradation * 100)}%`;
    const below = p.below_objective_s === null
      ? ""
      : `; below objective ${r1(p.below_objective_s)}s`;
    const outcome = p.last_measured
      ? `last measured: ${p.outcome} (drill ${p.last_measured.run})`
      : p.outcome + (p.missed?.length ? ` (${p.missed.join(", ")})` : "");
    out.push(
      `  ${name}: recovery ${windowWords(p.kind, p.recovery)}; normal ${
        windowWords(p.kind, p.normal)
      }${d}${below}; ${outcome}`,
    );
  }
  return out;
}
