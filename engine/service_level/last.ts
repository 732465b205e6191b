/**
 * The last live drill's service level, for a simulated drill (contract revision 4: "A simulated
 * drill has no samples; it shows the last live drill's service level as last measured"): read
 * from the store's newest live drill of the same runbook that measured one, marked
 * `last_measured`, never the simulated run's own outcome.
 *
 * @module
 */
import type { RunRecord, Store } from "../store/types.ts";
import { lastMeasured, type ServiceLevelReport } from "./report.ts";

/** How many of the newest runs are looked through for the last live drill. */
export const LAST_MEASURED_SCAN = 200;

/**
 * The service level the newest ended live drill of `runbook` measured, as last measured (only
 * the probes named in `probes`); undefined when no drill measured one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lastMeasuredOf } from "./last.ts";
 * const sl = { api: { kind: "http", from_s: 1, recovery: { samples: 2, success: 1 },
 *   normal: { samples: 0, success: null }, degradation: null, below_objective_s: null,
 *   outcome: "met", objective: {}, samples: [] } };
 * const runs = [{ id: "r1", runbook: "shop", mode: "live", drill: true, state: "done",
 *   endedAt: 0, report: JSON.stringify({ service_level: sl }) }];
 * const store = { listRuns: () => Promise.resolve(runs) } as never;
 * const got = await lastMeasuredOf(store, "shop", ["api"]);
 * assert.equal(got!.api!.last_measured!.run, "r1");
 * assert.equal(got!.api!.samples, undefined);
 * ```
 */
export async function lastMeasuredOf(
  store: Pick<Store, "listRuns">,
  runbook: string,
  probes: readonly string[],
): Promise<ServiceLevelReport | undefined> {
  if (!probes.length) return undefined;
  for (const run of await store.listRuns(LAST_MEASURED_SCAN)) {
    const sl = measured(run, runbook, probes);
    if (sl) {
      const ended = run.endedAt === null ? null : new Date(run.endedAt).toISOString();
      return lastMeasured(sl, run.id, ended);
    }
  }
  return undefined;
}

/** The service level of `run` when it is an ended live drill of `runbook` that measured one. */
function measured(
  run: RunRecord,
  runbook: string,
  probes: readonly string[],
): ServiceLevelReport | undefined {
  if (run.runbook !== runbook || !run.drill || run.mode !== "live") return undefined;
  if (run.state === "running" || !run.report) return undefined;
  let sl: ServiceLevelReport | undefined;
  try {
    sl = (JSON.parse(run.report) as { service_level?: ServiceLevelReport }).service_level;
  } catch {
    return undefined;
  }
  if (!sl) return undefined;
  const kept = Object.fromEntries(Object.entries(sl).filter(([name]) => probes.includes(name)));
  return Object.keys(kept).length ? kept : undefined;
}

/**
 * `report` (a simulated drill's) with the last live drill's service level, when there is one:
 * its outcome is left as simulated.
 */
export function withLastMeasured<R extends object>(
  report: R,
  sl: ServiceLevelReport | undefined,
): R & { service_level?: ServiceLevelReport } {
  return sl ? { ...report, service_level: sl } : report;
}
