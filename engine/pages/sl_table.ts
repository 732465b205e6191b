/**
 * The service level's table on a run's page: per probe, the recovery window against normal, the
 * degradation and the time below objective. Nothing when the report carries no service level
 * (see service_level.ts).
 *
 * @module
 */
import { esc } from "./escape.ts";
import { type MaybeSl, slOutcome, slSummaries, type SlWindow } from "./service_level.ts";

/**
 * One window's figures in a few words: `212 samples, 100% ok, p95 48ms`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { windowText } from "./sl_table.ts";
 * assert.equal(windowText({ samples: 3, success: 1, p95_ms: 48 }), "3 samples, 100% ok, p95 48ms");
 * assert.equal(windowText(undefined), "-");
 * ```
 */
export function windowText(w: SlWindow | undefined): string {
  if (!w) return "-";
  const parts: string[] = [];
  if (typeof w.samples === "number") parts.push(`${w.samples} samples`);
  if (typeof w.success === "number") parts.push(`${pct(w.success)} ok`);
  if (typeof w.p95_ms === "number") parts.push(`p95 ${num(w.p95_ms)}ms`);
  if (typeof w.mean === "number") parts.push(`mean ${num(w.mean)}`);
  if (typeof w.min === "number") parts.push(`min ${num(w.min)}`);
  return parts.join(", ") || "-";
}

/** A ratio as a percentage. */
export function pct(x: number): string {
  return `${num(x * 100)}%`;
}

function num(x: number): string {
  return String(Math.round(x * 10) / 10);
}

/** The table (empty string without a service level). */
export function slTable(report: MaybeSl): string {
  const probes = slSummaries(report);
  if (!probes.length) return "";
  const rows = probes.map(([name, p]) =>
    `<tr><td>${esc(name)}</td><td>${esc(windowText(p.recovery))}</td>` +
    `<td>${esc(windowText(p.normal))}</td>` +
    `<td class="num">${typeof p.degradation === "number" ? esc(pct(p.degradation)) : "-"}</td>` +
    `<td class="num">${
      typeof p.below_objective_s === "number" ? esc(`${num(p.below_objective_s)}s`) : "-"
    }</td><td>${esc(slOutcome(p))}</td></tr>`
  );
  return `<h3>Service level</h3><table class="service-level"><thead><tr><th>probe</th>` +
    `<th>during recovery</th><th>normal</th><th class="num">degradation</th>` +
    `<th class="num">below objective</th><th>outcome</th></tr></thead><tbody>${
      rows.join("")
    }</tbody></table>`;
}
