// The service level's measures (engine/service_level/measures.ts) on fake samples, every figure
// computed by hand in the comments.
import assert from "node:assert/strict";
import {
  measure,
  type MeasuredProbe,
  nearestRank,
  type Sample,
} from "../engine/service_level/measures.ts";

const http = (objective: MeasuredProbe["objective"] = {}, normal = 4): MeasuredProbe => ({
  kind: "http",
  every: 1,
  normal,
  higherIsBetter: false,
  objective,
});
const run = (
  higherIsBetter: boolean,
  objective: MeasuredProbe["objective"] = {},
): MeasuredProbe => ({
  kind: "run",
  every: 1,
  normal: 4,
  higherIsBetter,
  objective,
});
const ok = (t_s: number, value: number): Sample => ({ t_s, value, ok: true });
const bad = (t_s: number, value: number | null, error = "HTTP 503"): Sample => ({
  t_s,
  value,
  ok: false,
  error,
});

Deno.test("measure() gives empty windows and no degradation, when there are no samples", () => {
  const m = measure({ probe: http({ p95: 0.3 }), samples: [], from_s: 0, btn_s: 10 });
  assert.deepEqual(m.recovery, {
    samples: 0,
    success: null,
    p50_ms: null,
    p95_ms: null,
    max_ms: null,
  });
  assert.equal(m.normal.samples, 0);
  assert.equal(m.degradation, null);
  assert.equal(m.below_objective_s, 0);
  assert.equal(m.outcome, "met");
});

Deno.test("measure() gives nothing from samples, when sampling never began", () => {
  const m = measure({ probe: http(), samples: [ok(1, 10)], from_s: null, btn_s: null });
  assert.equal(m.recovery.samples, 0);
  assert.equal(m.below_objective_s, null); // no objective
});

// From 10 s to BTN at 20 s, one sample a second: 100, 110, ... 180 ms, then 400 ms at 19 s.
// After BTN: 40, 50, 60, 80 ms at 20..23 s, and a straggler at 24 s (BTN + normal: no window).
const latencies = [
  ...[100, 110, 120, 130, 140, 150, 160, 170, 180, 400].map((v, i) => ok(10 + i, v)),
  ...[40, 50, 60, 80, 999].map((v, i) => ok(20 + i, v)),
];

Deno.test("measure() computes latency figures and degradation by nearest rank, as by hand", () => {
  const m = measure({ probe: http(), samples: latencies, from_s: 10, btn_s: 20 });
  // Recovery: n = 10; p50 = 5th smallest = 140; p95 = ceil(9.5) = 10th = 400; max 400.
  assert.deepEqual(m.recovery, { samples: 10, success: 1, p50_ms: 140, p95_ms: 400, max_ms: 400 });
  // Normal: 20..23 s only (24 s is BTN + normal): n = 4; p50 = 2nd = 50; p95 = 4th = 80.
  assert.deepEqual(m.normal, { samples: 4, success: 1, p50_ms: 50, p95_ms: 80, max_ms: 80 });
  // 400 / 80 - 1 = 4.
  assert.equal(m.degradation, 4);
  assert.equal(m.below_objective_s, null);
  assert.equal(m.outcome, "met");
});

Deno.test("measure() counts the time below a p95 objective and misses it, when slower", () => {
  const m = measure({ probe: http({ p95: 0.15 }), samples: latencies, from_s: 10, btn_s: 20 });
  // Slower than 150 ms: 160 (16 s), 170, 180, 400 (19 s, until the next sample at 20 s = BTN).
  assert.equal(m.below_objective_s, 4);
  assert.equal(m.outcome, "missed");
  assert.deepEqual(m.missed, ["p95 400ms > 150ms"]);
});

Deno.test("measure() judges the degradation objective against the normal level", () => {
  // Normal p95 = 80 ms; 100% allowed: a sample is below above 160 ms (170, 180, 400 ms).
  const m = measure({ probe: http({ degradation: 1 }), samples: latencies, from_s: 10, btn_s: 20 });
  assert.equal(m.below_objective_s, 3);
  assert.deepEqual(m.missed, ["degradation 400% > 100%"]);
  // 500% allowed: 400 / 80 - 1 = 4 is within; no sample above 480 ms.
  const easy = measure({
    probe: http({ degradation: 5 }),
    samples: latencies,
    from_s: 10,
    btn_s: 20,
  });
  assert.equal(easy.outcome, "met");
  assert.equal(easy.below_objective_s, 0);
});

Deno.test("measure() counts failed probes in success only, and as time below objective", () => {
  const samples = [ok(0, 10), bad(1, null, "connection refused"), ok(2, 20), bad(3, 5)];
  const m = measure({ probe: http({ success: 0.99 }), samples, from_s: 0, btn_s: 4 });
  // 2 of 4 ok; latency over the ok ones only: [10, 20] -> p95 = 2nd = 20, p50 = 1st = 10.
  assert.deepEqual(m.recovery, { samples: 4, success: 0.5, p50_ms: 10, p95_ms: 20, max_ms: 20 });
  // Failed at 1 s (until 2 s) and 3 s (until 3 + every = 4 s = BTN): 2 s.
  assert.equal(m.below_objective_s, 2);
  assert.deepEqual(m.missed, ["success 50% < 99%"]);
});

Deno.test("measure() gives a null level, when every sample failed", () => {
  const samples = [bad(0, null), bad(1, null), ok(5, 10)];
  const m = measure({ probe: http({ p95: 1 }), samples, from_s: 0, btn_s: 2 });
  assert.equal(m.recovery.success, 0);
  assert.equal(m.recovery.p95_ms, null);
  assert.equal(m.degradation, null); // the normal window (2..6 s) has 10 ms, the recovery none
  assert.equal(m.below_objective_s, 2);
  assert.equal(m.outcome, "met"); // nothing but p95 is asked, and no latency was measured
});

Deno.test("measure() with higher: better takes 1 - mean ratio, and a floor per sample", () => {
  // A rate: 50 then 100 during the recovery (mean 75), 100 and 100 after BTN (mean 100).
  const samples = [ok(0, 50), ok(1, 100), ok(2, 100), ok(3, 100)];
  const m = measure({ probe: run(true, { degradation: 0.2 }), samples, from_s: 0, btn_s: 2 });
  assert.deepEqual(m.recovery, { samples: 2, success: 1, mean: 75, min: 50, max: 100 });
  assert.equal(m.degradation, 0.25); // 1 - 75 / 100
  assert.equal(m.below_objective_s, 1); // 50 < 100 * (1 - 0.2) = 80, for 1 s
  assert.deepEqual(m.missed, ["degradation 25% > 20%"]);
  const floor = measure({ probe: run(true, { mean: 80 }), samples, from_s: 0, btn_s: 2 });
  assert.deepEqual(floor.missed, ["mean 75 < 80"]); // the mean is below the floor
  assert.equal(floor.below_objective_s, 1); // the sample of 50
});

Deno.test("measure() with higher: worse takes 1 - inverse ratio, and a ceiling per sample", () => {
  // A lag: 100 then 300 during the recovery (mean 200), 100 and 100 after (mean 100).
  const samples = [ok(0, 100), ok(1, 300), ok(2, 100), ok(3, 100)];
  const m = measure({ probe: run(false, { mean: 150 }), samples, from_s: 0, btn_s: 2 });
  assert.equal(m.degradation, 0.5); // 1 - 100 / 200
  assert.equal(m.below_objective_s, 1); // 300 > 150, for 1 s
  assert.deepEqual(m.missed, ["mean 200 > 150"]);
  // Degradation 60% allowed: a sample is below above 100 / (1 - 0.6) = 250: 300 is.
  const d = measure({ probe: run(false, { degradation: 0.6 }), samples, from_s: 0, btn_s: 2 });
  assert.equal(d.outcome, "met");
  assert.equal(d.below_objective_s, 1);
});

Deno.test("measure() keeps normal samples out of the recovery, and later ones out of both", () => {
  const samples = [ok(0.5, 10), ok(1, 20), ok(2, 30), ok(2.5, 40), ok(6, 50), ok(7, 60)];
  // from 1 s: 0.5 s is before sampling began; BTN 2 s, normal 4 s: 2 and 2.5 s; 6 s and on: none.
  const m = measure({ probe: http(), samples, from_s: 1, btn_s: 2 });
  assert.equal(m.recovery.samples, 1);
  assert.equal(m.normal.samples, 2);
  assert.equal(m.degradation, 20 / 40 - 1);
});

Deno.test("measure() counts the milestone's first sample, when its time rounds up to from_s", () => {
  // The report gives the milestone at 0.081 s (milliseconds, rounded); the sampler began at the
  // true time, 0.0809 s. That sample is the recovery's first, as the report shows it (0.081 s).
  const samples = [ok(0.080910284, 10), ok(0.1809, 20), ok(2.0004, 30)];
  const m = measure({ probe: http(), samples, from_s: 0.081, btn_s: 2 });
  assert.equal(m.recovery.samples, 2);
  assert.equal(m.normal.samples, 1); // 2.0004 s shows as 2 s: BTN's own sample
});

Deno.test("measure() puts every sample in the recovery, when BTN is not reached", () => {
  const samples = [ok(0, 10), bad(1, null), ok(2, 30)];
  const m = measure({ probe: http({ p95: 0.02 }), samples, from_s: 0, btn_s: null });
  assert.equal(m.recovery.samples, 3);
  assert.equal(m.normal.samples, 0);
  assert.equal(m.degradation, null);
  // Failed 1..2 s, 30 ms > 20 ms from 2 s for one `every`: 2 s.
  assert.equal(m.below_objective_s, 2);
});

Deno.test("measure() lets a sample stand until the next one, when ticks were skipped", () => {
  // A slow sample at 0 s, the next at 3 s (two ticks skipped), BTN at 4 s.
  const samples = [ok(0, 900), ok(3, 10)];
  const m = measure({ probe: http({ p95: 0.5 }), samples, from_s: 0, btn_s: 4 });
  assert.equal(m.below_objective_s, 3);
});

Deno.test("nearestRank() takes the ceil(q n)-th smallest", () => {
  const twenty = Array.from({ length: 20 }, (_, i) => i + 1);
  assert.equal(nearestRank(twenty, 0.95), 19);
  assert.equal(nearestRank([7], 0.95), 7);
  assert.equal(nearestRank([1, 2, 3], 0), 1);
});
