/**
 * Estimates from history: a run step without `estimate`, or a fetch without `rate`, takes the
 * median of its past live runs in the store, so each drill sharpens the next prediction.
 *
 * Only runs that ended `done` teach (the store gives no other): a failed, cancelled or hung run
 * times what went wrong, not the step. A fetch's rate is its bytes over the seconds it was
 * actually moving, not over a time that includes pauses the scheduler imposed, waits for the
 * link or for an approval.
 *
 * @module
 */
import type { Estimates } from "./graph.ts";
import type { Runbook } from "../runbook/model.ts";
import type { HistorySample, Store } from "../store/types.ts";
import { stepKind } from "../../steps/kind.ts";

/** The median of numbers (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Estimates for the steps of `runbook` that the runbook does not time itself, from past samples:
 * the median duration of a run step without `estimate`; for a fetch without `rate`, the median
 * rate it achieved (bytes over its seconds moving, else over its start to its end), when that is
 * clearly below the link (else the link was the limit, not the source) and it is not lazy (its
 * stream's pace is the scheduler's, yielding to demand); for a fetch without
 * `size`, the median bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { estimatesFrom } from "./history.ts";
 * import { parseRunbook } from "../runbook/load.ts";
 * const rb = parseRunbook("runbook: 1\nname: x\nsteps:\n  - {id: a, run: 'true'}\n", "x.yaml");
 * const e = estimatesFrom(rb, [
 *   { run: "1", step: "a", seconds: 3, bytes: 0, endedAt: 1 },
 *   { run: "2", step: "a", seconds: 5, bytes: 0, endedAt: 2 },
 *   { run: "3", step: "a", seconds: 100, bytes: 0, endedAt: 3 },
 * ]);
 * assert.equal(e.duration?.get("a"), 5);
 * ```
 */
export function estimatesFrom(runbook: Runbook, samples: readonly HistorySample[]): Estimates {
  const byStep = new Map<string, HistorySample[]>();
  for (const s of samples) {
    const list = byStep.get(s.step);
    if (list) list.push(s);
    else byStep.set(s.step, [s]);
  }
  const duration = new Map<string, number>(), rate = new Map<string, number>();
  const size = new Map<string, number>();
  for (const step of runbook.steps) {
    const list = byStep.get(step.id);
    if (!list?.length) continue;
    const figures = stepKind(step.kind).figures(step);
    if (figures.type === "time") {
      if (figures.seconds === undefined) duration.set(step.id, median(list.map((s) => s.seconds)));
    } else {
      const rates = list.map((s) => s.bytes / (s.moving ?? s.seconds))
        .filter((r) => r > 0 && Number.isFinite(r));
      // A fetch that ran at the link's cap says nothing about its source: only a rate clearly
      // below the link's bandwidth is the source's own.
      const r = rates.length ? median(rates) : NaN;
      // A lazy fetch's stream yields to the service's reads and runs at the share it is given:
      // its pace is the scheduler's choice, not the source's (learning it slowed each next drill).
      const learns = figures.rate === undefined && !figures.lazy;
      if (learns && r < 0.9 * runbook.bandwidth) rate.set(step.id, r);
      if (figures.bytes === undefined) size.set(step.id, median(list.map((s) => s.bytes)));
    }
  }
  return { duration, rate, size };
}

/** {@link estimatesFrom} the store's history of the runbook. */
export async function historyEstimates(store: Store, runbook: Runbook): Promise<Estimates> {
  return estimatesFrom(runbook, await store.history(runbook.name));
}
