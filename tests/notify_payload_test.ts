/**
 * What a run's webhooks are told, and in which words: each happening once, predictions told
 * again only when they move, the JSON body with its Slack `text`. Pure: no clock, no network.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Happening, NotifyWatch, payloadOf, type RunInfo } from "../engine/notify/mod.ts";
import type { Report } from "../engine/schedule/report.ts";
import { approvalDetail, interruptedDetail } from "../engine/schedule/waits.ts";

const START = Date.UTC(2026, 10, 30, 3, 0, 0);

const INFO: RunInfo = {
  run: "01JRUN",
  runbook: "shop",
  drill: false,
  startedAt: START,
  steps: [
    { id: "fetch-db" },
    { id: "restore-db", milestone: "service" },
    { id: "start-web", milestone: "service" },
    { id: "cutover" },
  ],
  objectives: { rto_s: 600, btn_s: 3600, milestones: { service: 300 } },
};

const NOTHING = { ttr_s: null, btn_s: null, milestones: {} };

/** A report of `INFO`'s run that ended with `outcome`. */
function report(outcome: Report["outcome"], extra: Partial<Report> = {}): Report {
  return {
    runbook: "shop",
    run: "01JRUN",
    mode: "live",
    strategy: "aggressive",
    outcome,
    ttr_s: 95.5,
    btn_s: 4000,
    milestones: { service: 95.5 },
    objectives: INFO.objectives,
    missed: ["btn"],
    lower_bound: { ttr_s: 1, btn_s: 1 },
    bytes: { total: 0, on_demand: 0, prefetched: 0 },
    steps: [],
    ...extra,
  };
}

const kinds = (hs: Happening[]) => hs.map((h) => h.event);

Deno.test("NotifyWatch.steps() tells a milestone once, when its last step is done", () => {
  const watch = new NotifyWatch(INFO);
  assert.deepEqual(watch.steps([{ step: "restore-db", state: "done", at: 40 }]), []);
  const told = watch.steps([
    { step: "start-web", state: "running", at: 41 },
    { step: "start-web", state: "done", at: 95.5 },
  ]);
  assert.deepEqual(told, [{
    event: "milestone",
    at: 95.5,
    milestone: "service",
    step: "start-web",
  }]);
  // Done again (a rerun with --from): not told twice.
  assert.deepEqual(watch.steps([{ step: "start-web", state: "done", at: 120 }]), []);
});

Deno.test("NotifyWatch.steps() tells a failure and each wait for a person, when they happen", () => {
  const watch = new NotifyWatch(INFO);
  const wait = approvalDetail("Send traffic to the DR site", "01JRUN", "cutover");
  const told = watch.steps([
    { step: "fetch-db", state: "failed", at: 12, detail: "HTTP 503 from the backup" },
    { step: "cutover", state: "running", at: 13, detail: wait },
  ]);
  assert.deepEqual(told, [
    { event: "step-failed", at: 12, step: "fetch-db", detail: "HTTP 503 from the backup" },
    { event: "approval", at: 13, step: "cutover", reason: "approval", detail: wait },
  ]);
  // The same wait again (a later turn records it again): not told twice.
  assert.deepEqual(watch.steps([{ step: "cutover", state: "running", at: 14, detail: wait }]), []);
  // Approved, then it waits again (interrupted on resume): told again.
  watch.steps([{ step: "cutover", state: "running", at: 15, detail: "approved" }]);
  const again = watch.steps([
    { step: "cutover", state: "running", at: 16, detail: interruptedDetail("01JRUN", "cutover") },
  ]);
  assert.deepEqual(again.map((h) => h.event === "approval" && h.reason), ["interrupted"]);
});

Deno.test("NotifyWatch tells nothing again, when a resumed run's history is given", () => {
  const history = [
    { step: "restore-db", state: "done" as const, at: 40 },
    { step: "start-web", state: "done" as const, at: 95 },
    { step: "fetch-db", state: "failed" as const, at: 96, detail: "x" },
  ];
  const watch = new NotifyWatch(INFO, history);
  assert.deepEqual(watch.steps([{ step: "start-web", state: "done", at: 200 }]), []);
});

Deno.test("NotifyWatch.standing() tells a predicted miss once, when the prediction barely moves", () => {
  const watch = new NotifyWatch(INFO);
  assert.deepEqual(watch.standing(10, NOTHING, { ttr_s: 500, btn_s: 3000 }), []); // on track
  const first = watch.standing(11, NOTHING, { ttr_s: 700, btn_s: 3000 });
  assert.deepEqual(first, [{
    event: "objective",
    at: 11,
    objective: "rto",
    status: "predicted",
    limit: 600,
    value: 700,
    predicted: true,
  }]);
  // Every second, a slightly different prediction: nothing (the margin is 60 s for a 10m rto).
  for (let t = 12; t < 40; t++) {
    assert.deepEqual(watch.standing(t, NOTHING, { ttr_s: 700 + (t % 7) * 8, btn_s: 3000 }), []);
  }
  // Dipping just under the limit and back: still nothing (no flapping).
  assert.deepEqual(watch.standing(40, NOTHING, { ttr_s: 590, btn_s: 3000 }), []);
  assert.deepEqual(watch.standing(41, NOTHING, { ttr_s: 705, btn_s: 3000 }), []);
  // It moves by the margin: told again with the new figure.
  const moved = watch.standing(42, NOTHING, { ttr_s: 800, btn_s: 3000 });
  assert.deepEqual(moved.map((h) => h.event === "objective" && h.value), [800]);
  // Clearly back on track: told once.
  const back = watch.standing(43, NOTHING, { ttr_s: 400, btn_s: 3000 });
  assert.deepEqual(back.map((h) => h.event === "objective" && h.status), ["on-track"]);
  assert.deepEqual(watch.standing(44, NOTHING, { ttr_s: 410, btn_s: 3000 }), []);
});

Deno.test("NotifyWatch.standing() tells a miss once, when the limit passes unreached", () => {
  const watch = new NotifyWatch(INFO);
  watch.steps([{ step: "restore-db", state: "done", at: 40 }]);
  const missed = watch.standing(301, NOTHING, null);
  assert.deepEqual(missed, [{
    event: "objective",
    at: 301,
    objective: "milestone:service",
    status: "missed",
    limit: 300,
    value: null,
    predicted: false,
  }]);
  assert.deepEqual(watch.standing(302, NOTHING, { ttr_s: 900, btn_s: 3000 }).length, 1); // rto
  assert.deepEqual(watch.standing(303, NOTHING, { ttr_s: 930, btn_s: 3000 }), []);
  // The end names the objectives missed not yet told, then the end; nothing after.
  const end = watch.end(
    report("missed", {
      ttr_s: 700,
      milestones: { service: 700 },
      missed: ["rto", "btn", "milestone:service"],
    }),
    4000,
  );
  assert.deepEqual(end.map((h) => h.event === "objective" ? h.objective : h.event), [
    "rto",
    "btn",
    "end",
  ]);
  assert.deepEqual(end.map((h) => h.event === "objective" && h.status), [
    "missed",
    "missed",
    false,
  ]);
  assert.deepEqual(watch.end(report("missed")), []);
  assert.deepEqual(watch.standing(4001, NOTHING, null), []);
});

Deno.test("payloadOf() names the run, runbook, milestone and times, when a milestone is reached", () => {
  const [h] = new NotifyWatch(INFO).steps([
    { step: "restore-db", state: "done", at: 40 },
    { step: "start-web", state: "done", at: 95.5 },
  ]);
  const p = payloadOf(h!, INFO);
  assert.deepEqual(p, {
    text: "shop: milestone service reached at 1m36s (objective 5m: met). Run 01JRUN, 03:01:35 UTC",
    event: "milestone",
    runbook: "shop",
    run: "01JRUN",
    drill: false,
    at_s: 95.5,
    time: "2026-11-30T03:01:35.500Z",
    milestone: "service",
    step: "start-web",
  });
});

Deno.test("payloadOf() marks a drill and links its page, when the run is a drill served by thaw", () => {
  const info = { ...INFO, drill: true, page: "http://127.0.0.1:7070/runs/01JRUN" };
  const h: Happening = {
    event: "objective",
    at: 200,
    objective: "rto",
    status: "predicted",
    limit: 600,
    value: 750,
    predicted: true,
  };
  const p = payloadOf(h, info);
  assert.equal(
    p.text,
    "[drill] shop: TTR predicted to miss its objective: predicted at 12m30s, objective 10m " +
      "(3m20s into the run). Run 01JRUN, 03:03:20 UTC: http://127.0.0.1:7070/runs/01JRUN",
  );
  assert.equal(p.drill, true);
  assert.equal(p.page, info.page);
  assert.deepEqual([p.objective, p.status, p.objective_s, p.value_s], [
    "rto",
    "predicted",
    600,
    750,
  ]);
});

Deno.test("payloadOf() quotes a failure short and escaped for Slack, when a step fails", () => {
  const detail = "exit code 1: pg_restore: error: <connection refused> & more\n" + "x".repeat(400);
  const p = payloadOf({ event: "step-failed", at: 125, step: "restore-db", detail }, INFO);
  assert.match(
    p.text,
    /^shop: step restore-db failed at 2m05s: exit code 1: pg_restore: error: &lt;connection refused&gt; &amp; more x+\.\.\.\. Run 01JRUN, 03:02:05 UTC$/,
  );
  assert(p.text.length < 320, `${p.text.length} characters`);
  assert.equal(p.detail!.startsWith("exit code 1: pg_restore: error: <connection refused>"), true);
});

Deno.test("payloadOf() says what to run, when a step waits for approval", () => {
  const detail = approvalDetail("Send traffic to the DR site", "01JRUN", "cutover");
  const p = payloadOf(
    { event: "approval", at: 3000, step: "cutover", reason: "approval", detail },
    INFO,
  );
  assert.equal(
    p.text,
    "shop: step cutover is waiting for approval: Send traffic to the DR site (thaw approve 01JRUN " +
      "cutover; or thaw done 01JRUN cutover if a person did it). Run 01JRUN, 03:50:00 UTC",
  );
  assert.equal(p.waits_for, "approval");
});

Deno.test("payloadOf() gives the outcome with TTR and BTN against their objectives, when the run ends", () => {
  const missed = payloadOf({ event: "end", at: 4000, report: report("missed") }, INFO);
  assert.equal(
    missed.text,
    "shop: ended missed (BTN): TTR 1m36s (objective 10m), BTN 1h06m (objective 1h). " +
      "Run 01JRUN, 04:06:40 UTC",
  );
  assert.deepEqual([missed.outcome, missed.ttr_s, missed.btn_s, missed.missed], [
    "missed",
    95.5,
    4000,
    ["btn"],
  ]);
  const steps: Report["steps"] = [
    { id: "fetch-db", kind: "fetch", state: "failed", start_s: 0, end_s: 3, frozen_s: 0 },
  ];
  const failed = payloadOf(
    { event: "end", at: 3, report: report("failed", { ttr_s: null, btn_s: null, steps }) },
    INFO,
  );
  assert.match(
    failed.text,
    /^shop: ended failed \(failed: fetch-db\): TTR not reached \(objective 10m\)/,
  );
  assert.deepEqual(failed.failed_steps, ["fetch-db"]);
  assert.deepEqual(kinds([{ event: "end", at: 3, report: report("met") }]), ["end"]);
});

Deno.test("NotifyWatch.end() tells an objective back on track, when it was predicted missed but met", () => {
  const watch = new NotifyWatch(INFO);
  assert.equal(watch.standing(5, NOTHING, { ttr_s: 50, btn_s: 4000 }).length, 1); // btn predicted
  const end = watch.end(report("met", { btn_s: 3500, missed: [] }), 3500);
  assert.deepEqual(
    end.map((h) => h.event === "objective" ? `${h.objective} ${h.status}` : h.event),
    [
      "btn on-track",
      "end",
    ],
  );
  assert.equal(
    payloadOf(end[0]!, INFO).text,
    "shop: BTN back on track: reached at 58m20s, objective 1h. Run 01JRUN, 03:58:20 UTC",
  );
});
