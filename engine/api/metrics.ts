/**
 * `GET /metrics`: the store in the Prometheus text format (version 0.0.4): runs by state, and for
 * the recent runs (the last {@link RECENT}, and every run still going) their steps by state, bytes
 * fetched, TTR, BTN, predicted TTR and start time. Run ids are labels, so the number of series
 * stays bounded by {@link RECENT}.
 *
 * @module
 */
import type { Report } from "../schedule/report.ts";
import { stateOf } from "../live/runs.ts";
import { STATES } from "../schedule/scheduler.ts";
import type { RunRecord, RunState, Store } from "../store/types.ts";
import { gaugeLines, type ServiceLevelReport, slMetricLines } from "../service_level/mod.ts";

/** How many of the newest runs have per-run series. */
export const RECENT = 20;

/** The content type of the answer. */
export const METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const RUN_STATES: readonly RunState[] = ["running", "interrupted", "done", "failed", "cancelled"];

/** One recent run, with what the metrics need of it. */
export interface MetricsRun {
  readonly record: RunRecord;
  readonly state: RunState;
  readonly report: Report | null;
  /** The predicted TTR of a run still going, when there is one. */
  readonly predictedTtr: number | null;
}

/**
 * Reads what the metrics show from `store`; `predicted(id)` gives a running run's predicted TTR.
 */
export async function collect(
  store: Store,
  predicted: (id: string) => Promise<number | null>,
  now = Date.now(),
): Promise<{ counts: Record<RunState, number>; runs: MetricsRun[] }> {
  const stored = await store.countRuns();
  const counts: Record<RunState, number> = { ...stored, interrupted: 0 };
  const running = await store.listRuns(undefined, "running");
  for (const r of running) {
    if (await stateOf(store, r, now) === "interrupted") {
      counts.running--;
      counts.interrupted++;
    }
  }
  const recent = await store.listRuns(RECENT);
  const seen = new Set(recent.map((r) => r.id));
  const records = [...recent, ...running.filter((r) => !seen.has(r.id))];
  const runs: MetricsRun[] = [];
  for (const record of records) {
    const state = await stateOf(store, record, now);
    runs.push({
      record,
      state,
      report: record.report ? JSON.parse(record.report) as Report : null,
      predictedTtr: record.state === "running" ? await predicted(record.id) : null,
    });
  }
  return { counts, runs };
}

/**
 * Renders the metrics.
 *
 * @example
 * ```ts
 * import { render } from "./metrics.ts";
 * import assert from "node:assert/strict";
 * const text = render({
 *   counts: { running: 1, interrupted: 0, done: 2, failed: 0, cancelled: 0 },
 *   runs: [],
 * });
 * assert(text.includes('thaw_runs{state="done"} 2\n'));
 * ```
 */
export function render(
  input: { counts: Record<RunState, number>; runs: readonly MetricsRun[] },
): string {
  const out: string[] = [];
  const family = (name: string, help: string, rows: [Record<string, string>, number][]) =>
    out.push(...gaugeLines(name, help, rows));
  family(
    "thaw_runs",
    "Runs in the store, by state (interrupted: running, but its engine is gone).",
    RUN_STATES.map((s) => [{ state: s }, input.counts[s]]),
  );
  type Row = [Record<string, string>, number];
  const per = (f: (r: MetricsRun, id: Record<string, string>) => Row[]) =>
    input.runs.flatMap((r) => f(r, { run: r.record.id, runbook: r.record.runbook }));
  family(
    "thaw_run_info",
    "Recent runs: 1, with the run's state, kind, strategy and outcome as labels.",
    per((r, id) => [[{
      ...id,
      state: r.state,
      kind: r.record.drill ? "drill" : "run",
      strategy: r.record.strategy,
      outcome: r.record.outcome ?? "",
    }, 1]]),
  );
  family(
    "thaw_run_start_time_seconds",
    "Recent runs: when the run started, seconds since the Unix epoch.",
    per((r, id) => [[id, r.record.startedAt / 1000]]),
  );
  family(
    "thaw_run_steps",
    "Recent runs: steps by state.",
    per((r, id) => {
      const count = new Map<string, number>(STATES.map((s) => [s, 0]));
      if (r.report?.steps.length) {
        for (const s of r.report.steps) count.set(s.state, (count.get(s.state) ?? 0) + 1);
      } else count.set("pending", r.record.steps.length);
      return [...count].map(([state, n]): Row => [{ ...id, state }, n]);
    }),
  );
  family(
    "thaw_run_fetched_bytes",
    "Recent runs: bytes fetched, on demand (for a frozen step) or prefetched.",
    per((r, id) =>
      r.report
        ? [[{ ...id, kind: "on_demand" }, r.report.bytes.on_demand], [
          { ...id, kind: "prefetched" },
          r.report.bytes.prefetched,
        ]]
        : []
    ),
  );
  const measure = (key: "ttr_s" | "btn_s") =>
    per((r, id) => {
      const v = r.report?.[key];
      return v === null || v === undefined ? [] : [[id, v]];
    });
  family("thaw_run_ttr_seconds", "Recent runs: time to recovery, once reached.", measure("ttr_s"));
  family("thaw_run_btn_seconds", "Recent runs: back to normal, once reached.", measure("btn_s"));
  family(
    "thaw_run_predicted_ttr_seconds",
    "Runs still going: the TTR predicted by simulating the rest from where the run stands.",
    per((r, id) => r.predictedTtr === null ? [] : [[id, r.predictedTtr]]),
  );
  // The service level of the recent runs that have one (`engine/service_level/metrics.ts`).
  out.push(...slMetricLines(input.runs.flatMap((r) => {
    const sl = (r.report as { service_level?: ServiceLevelReport } | null)?.service_level;
    return sl ? [{ run: r.record.id, runbook: r.record.runbook, service_level: sl }] : [];
  })));
  return out.join("\n") + "\n";
}
