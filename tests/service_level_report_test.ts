// The service level's report part, `/metrics` lines and `sl` events (engine/service_level/), read
// back by what consumes them: the pages' SL readers, the exit code, a real Prometheus parser, the
// zod schemas the API would check answers with.
import assert from "node:assert/strict";
import parsePrometheus from "parse-prometheus-text-format";
import { slSeries, slSummaries } from "../engine/pages/service_level.ts";
import { slTable, windowText } from "../engine/pages/sl_table.ts";
import { exitCode, type Report } from "../engine/schedule/report.ts";
import type { Sample } from "../engine/service_level/measures.ts";
import {
  lastMeasured,
  serviceLevelReport,
  ServiceLevelReportSchema,
  withServiceLevel,
} from "../engine/service_level/report.ts";
import { slMetricLines } from "../engine/service_level/metrics.ts";
import {
  sampleRow,
  samplesByProbe,
  slEvents,
  SlEventSchema,
} from "../engine/service_level/events.ts";
import { serviceLevelModel } from "../engine/service_level/schema.ts";

const probes = serviceLevelModel([
  {
    name: "search",
    after: "start-shop",
    http: "http://127.0.0.1:8080/search",
    every: "1s",
    normal: "2s",
    objective: { p95: "100ms", success: "90%" },
  },
  { name: "rate", after: "start-shop", run: "echo 1", every: "1s", normal: "2s", higher: "better" },
]);
// Sampling from 1 s, BTN at 4 s: search 250, 240 ms, then failed, then 50 and 40 ms after BTN.
const SAMPLES: Record<string, Sample[]> = {
  search: [
    { t_s: 1, value: 250.123456789, ok: true },
    { t_s: 2, value: 240, ok: true },
    { t_s: 3.0004, value: null, ok: false, error: "connection refused" },
    { t_s: 4, value: 50, ok: true },
    { t_s: 5, value: 40, ok: true },
  ],
  rate: [1, 2, 3, 4, 5].map((t) => ({ t_s: t, value: t < 4 ? 60 : 100, ok: true })),
};
const sl = () =>
  serviceLevelReport({
    probes,
    samples: (name) => SAMPLES[name] ?? [],
    from: () => 1,
    btn_s: 4,
  });

Deno.test("serviceLevelReport() gives the contract's shape per probe, figures rounded", () => {
  const r = sl();
  assert.deepEqual(Object.keys(r), ["search", "rate"]);
  const { samples, ...search } = r.search!;
  assert.deepEqual(search, {
    kind: "http",
    from_s: 1,
    // 3 samples, 2 ok: p50 = the ceil(0.5 * 2) = 1st of [240, 250.12] = 240.
    recovery: { samples: 3, success: 0.6667, p50_ms: 240, p95_ms: 250.123, max_ms: 250.123 },
    normal: { samples: 2, success: 1, p50_ms: 40, p95_ms: 50, max_ms: 50 },
    degradation: 4.002, // 250.123 / 50 - 1
    below_objective_s: 3, // 250, 240 ms and the failure: 1 s each
    outcome: "missed",
    missed: ["success 66.7% < 90%", "p95 250.1ms > 100ms"],
    objective: { p95_ms: 100, success: 0.9 },
  });
  assert.deepEqual(samples![2], { t_s: 3, value: null, ok: false, error: "connection refused" });
  assert.equal(samples![0]!.value, 250.123);
  const rate = r.rate!;
  assert.deepEqual(rate.recovery, { samples: 3, success: 1, mean: 60, min: 60, max: 60 });
  assert.equal(rate.degradation, 0.4); // 1 - 60 / 100
  assert.equal(rate.below_objective_s, null); // no objective
  assert.equal(rate.outcome, "met");
  ServiceLevelReportSchema.parse(r);
});

Deno.test("serviceLevelReport() leaves the samples out, when asked", () => {
  const r = serviceLevelReport({
    probes,
    samples: () => [],
    from: () => null,
    btn_s: null,
    withSamples: false,
  });
  assert.equal(r.search!.samples, undefined);
  assert.equal(r.search!.from_s, null);
  assert.deepEqual(r.search!.recovery, {
    samples: 0,
    success: null,
    p50_ms: null,
    p95_ms: null,
    max_ms: null,
  });
});

Deno.test("the pages read the report's service level: curve points and table", () => {
  const report = { service_level: sl() };
  const series = slSeries(report);
  assert.deepEqual(series.map((s) => s.name), ["rate", "search"]);
  const search = series.find((s) => s.name === "search")!;
  // The failed sample has no value: no point for it.
  assert.deepEqual(search.points.map((p) => p.t), [1, 2, 4, 5]);
  assert.equal(search.points[0]!.value, 250.123);
  const [, summary] = slSummaries(report).find(([n]) => n === "search")!;
  assert.equal(windowText(summary.recovery), "3 samples, 66.7% ok, p95 250.1ms");
  assert.match(
    slTable(report),
    /<td>search<\/td>.*<td class="num">400.2%<\/td><td class="num">3s<\/td><td>missed<\/td>/,
  );
});

Deno.test("withServiceLevel() turns a met run missed (exit 3), never a failed one met", () => {
  const base = { outcome: "met", missed: [] as string[] } as unknown as Report;
  const missed = withServiceLevel(base, sl());
  assert.equal(missed.outcome, "missed");
  assert.deepEqual(missed.missed, ["sl:search"]);
  assert.equal(exitCode(missed), 3);
  const failed = withServiceLevel({ ...base, outcome: "failed" as const }, sl());
  assert.equal(exitCode(failed), 1);
  const onlyRate = withServiceLevel(base, { rate: sl().rate! });
  assert.equal(exitCode(onlyRate), 0);
  // Applied twice, the list does not grow.
  assert.deepEqual(withServiceLevel(missed, sl()).missed, ["sl:search"]);
});

Deno.test("lastMeasured() marks a live drill's service level for a simulated one", () => {
  const last = lastMeasured(sl(), "01JLIVE", "2026-11-30T12:00:00.000Z");
  assert.equal(last.search!.samples, undefined);
  assert.deepEqual(last.search!.last_measured, {
    run: "01JLIVE",
    ended_at: "2026-11-30T12:00:00.000Z",
  });
  assert.equal(last.search!.degradation, 4.002);
  ServiceLevelReportSchema.parse(last);
  // A simulated drill is not judged on what a live one measured.
  const sim = withServiceLevel({ outcome: "met", missed: [] as string[] }, last);
  assert.equal(sim.outcome, "met");
  assert.deepEqual(sim.missed, []);
});

Deno.test("slMetricLines() is Prometheus text a real parser reads, per run and probe", () => {
  const runs = [{ run: '01J"x', runbook: "shop", service_level: sl() }];
  const text = [...slMetricLines(runs), ""].join("\n");
  const families = parsePrometheus(text) as {
    name: string;
    metrics: { value: string; labels?: Record<string, string> }[];
  }[];
  const value = (name: string, labels: Record<string, string>) => {
    const m = families.find((f) => f.name === name)!.metrics.find((m) =>
      Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)
    );
    return m === undefined ? undefined : Number(m.value);
  };
  const search = { run: '01J"x', probe: "search" };
  assert.equal(value("thaw_run_sl_samples", { ...search, window: "recovery" }), 3);
  assert.equal(value("thaw_run_sl_p95_latency_seconds", { ...search, window: "normal" }), 0.05);
  assert.equal(value("thaw_run_sl_degradation_ratio", search), 4.002);
  assert.equal(value("thaw_run_sl_below_objective_seconds", search), 3);
  assert.equal(value("thaw_run_sl_objective_met", search), 0);
  assert.equal(value("thaw_run_sl_last_value", search), 0.04);
  assert.equal(value("thaw_run_sl_last_ok", search), 1);
  assert.equal(value("thaw_run_sl_value_mean", { probe: "rate", window: "normal" }), 100);
  assert.equal(value("thaw_run_sl_below_objective_seconds", { probe: "rate" }), undefined);
  assert.deepEqual(slMetricLines([{ run: "r", runbook: "b", service_level: {} }]), []);
});

Deno.test("slEvents() sends each stored sample once, in order, in the sl event shape", () => {
  const rows = [
    sampleRow(1, "search", SAMPLES.search![0]!),
    sampleRow(2, "rate", SAMPLES.rate![0]!),
    sampleRow(3, "search", SAMPLES.search![2]!),
  ];
  const first = slEvents(rows.slice(0, 2), 0);
  assert.deepEqual(first.events.map((e) => e.seq), [1, 2]);
  assert.equal(first.events[0]!.value, 250.123);
  const next = slEvents(rows, first.after);
  assert.deepEqual(next.events, [{
    seq: 3,
    probe: "search",
    t_s: 3,
    value: null,
    ok: false,
    error: "connection refused",
  }]);
  for (const e of [...first.events, ...next.events]) SlEventSchema.parse(e);
  assert.equal(slEvents(rows, next.after).events.length, 0);
  assert.deepEqual(samplesByProbe(rows).get("search")!.map((s) => s.ok), [true, false]);
});
