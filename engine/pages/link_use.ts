/**
 * The link's use over time as a report shows it: each fetch moving at its average rate from its
 * start to its end (or to `now` while it runs). A report keeps no finer record of the link; the
 * chart says so in its caption.
 *
 * @module
 */
import type { StepReport } from "../schedule/report.ts";

/** A step of the curve: from `t` on, `rate` bytes a second cross the link. */
export interface LinkPoint {
  readonly t: number;
  readonly rate: number;
}

/**
 * The link's use as a step curve, in time order, ending at 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linkUse } from "./link_use.ts";
 * const f = (start_s: number, end_s: number, bytes: number) =>
 *   ({ id: "f", kind: "fetch" as const, state: "done" as const, start_s, end_s, frozen_s: 0, bytes });
 * assert.deepEqual(linkUse([f(0, 2, 20), f(1, 3, 40)]), [
 *   { t: 0, rate: 10 }, { t: 1, rate: 30 }, { t: 2, rate: 20 }, { t: 3, rate: 0 },
 * ]);
 * ```
 */
export function linkUse(steps: readonly StepReport[], now?: number | null): LinkPoint[] {
  const deltas = new Map<number, number>();
  const add = (t: number, d: number) => deltas.set(t, (deltas.get(t) ?? 0) + d);
  for (const s of steps) {
    if (s.kind !== "fetch" || s.start_s === null || !s.bytes) continue;
    const end = s.end_s ?? (s.state === "running" ? now ?? null : null);
    if (end === null || !(end > s.start_s)) continue;
    const rate = s.bytes / (end - s.start_s);
    add(s.start_s, rate);
    add(end, -rate);
  }
  const out: LinkPoint[] = [];
  let rate = 0;
  for (const t of [...deltas.keys()].sort((a, b) => a - b)) {
    rate += deltas.get(t)!;
    if (Math.abs(rate) < 1e-6) rate = 0;
    out.push({ t, rate });
  }
  return out;
}
