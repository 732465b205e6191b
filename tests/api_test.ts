/**
 * The HTTP API through `app.request()`, over a real SQLite store file that the test writes as an
 * engine would: answers checked against the schemas the OpenAPI document is made of.
 *
 * @module
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import parsePrometheus from "parse-prometheus-text-format";
import { createApp } from "../engine/api/app.ts";
import {
  EndEventSchema,
  ErrorSchema,
  MilestoneEventSchema,
  RunDetailSchema,
  RunSummarySchema,
  StepEventSchema,
} from "../engine/api/schemas.ts";
import type { Report } from "../engine/schedule/report.ts";
import { simulate } from "../engine/simulate/simulate.ts";
import { openStore } from "../engine/store/mod.ts";
import type { StepChange, Store } from "../engine/store/types.ts";
import { killGroup, spawnGroup } from "../steps/process/process.ts";
import { collectEvents } from "./sse.ts";
import { createStoredRun } from "./stored_run.ts";

const RUNBOOK = `runbook: 1
name: shop
bandwidth: 10MB/s
objectives: { rto: 60s }
steps:
  - { id: fetch-db, fetch: { from: /backup/db, to: ./db, size: 100MB } }
  - { id: fetch-logs, fetch: { from: /backup/logs, to: ./logs, size: 200MB } }
  - { id: start-db, needs: [fetch-db], run: "true", estimate: 5s }
  - id: start-app
    needs: [start-db]
    run: "true"
    estimate: 2s
    milestone: service
    approval: Open the shop?
`;

/** What an engine would have recorded by 12 s into the run. */
const FIRST: StepChange[] = [
  { step: "start-db", state: "frozen", at: 0, detail: "waits for fetch-db" },
  { step: "fetch-db", state: "running", at: 0 },
  { step: "fetch-logs", state: "running", at: 0 },
  { step: "fetch-db", state: "done", at: 10 },
  { step: "start-db", state: "pending", at: 10, detail: "thawed" },
  { step: "start-db", state: "running", at: 10 },
];
const REST: StepChange[] = [
  { step: "start-db", state: "done", at: 15 },
  { step: "start-app", state: "running", at: 15 },
  { step: "start-app", state: "done", at: 17 },
];

interface Fixture {
  readonly dir: string;
  readonly store: Store;
  readonly run: string;
  /** A report of the run as its engine would save it. */
  report(): Report;
}

async function withFixture(
  body: (f: Fixture) => Promise<void>,
  elapsed = 12,
  storeText = false,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const store = await openStore(join(dir, "state.db"));
  try {
    const { rb, run } = await createStoredRun(store, dir, RUNBOOK, {
      ageMs: elapsed * 1000,
      runbookText: storeText,
    });
    const report = (): Report => ({ ...simulate(rb, { run }), mode: "live" });
    await store.recordSteps(run, FIRST);
    await store.saveProgress(run, [
      progress("fetch-db", 100e6, true),
      progress("fetch-logs", 50e6, false),
    ]);
    await store.updateRun(run, { report: JSON.stringify(report()), heartbeatAt: Date.now() });
    await body({ dir, store, run, report });
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function progress(step: string, bytes: number, demanded: boolean) {
  return { step, bytes, total: null, prefetched: 0, demanded, source: 0, at: Date.now() };
}

async function finish(f: Fixture): Promise<void> {
  await f.store.recordSteps(f.run, REST);
  await f.store.updateRun(f.run, {
    state: "done",
    outcome: "met",
    endedAt: Date.now(),
    report: JSON.stringify(f.report()),
  });
}

Deno.test("GET /runs/ID gives the live report, state and predicted TTR, when a run goes on", async () => {
  await withFixture(async (f) => {
    const app = createApp({ store: f.store });
    const res = await app.request(`/runs/${f.run}`);
    equal(res.status, 200);
    const body = RunDetailSchema.parse(await res.json());
    equal(body.state, "running");
    equal(body.outcome, null);
    equal(body.run, f.run);
    // start-db has run 2 s of its 5 s, then start-app takes 2 s: TTR 17 s, whenever we look.
    ok(body.predicted, body.predicted_note ?? "no note");
    ok(Math.abs(body.predicted.ttr_s! - 17) < 0.05, `predicted TTR ${body.predicted.ttr_s}`);
    // fetch-logs has 150 MB left, alone on the 10 MB/s link from now (12 s): BTN 27 s.
    ok(Math.abs(body.predicted.btn_s! - 27) < 0.05, `predicted BTN ${body.predicted.btn_s}`);
  });
});

Deno.test("GET /runs/ID predicts from the runbook text stored with the run, when its file is gone", async () => {
  const detail = async (f: Fixture) => {
    const res = await createApp({ store: f.store }).request(`/runs/${f.run}`);
    return RunDetailSchema.parse(await res.json());
  };
  await withFixture(
    async (f) => {
      await Deno.remove(join(f.dir, "rb.yaml"));
      const body = await detail(f);
      ok(body.predicted, body.predicted_note ?? "no note");
      ok(Math.abs(body.predicted.ttr_s! - 17) < 0.05, `predicted TTR ${body.predicted.ttr_s}`);
    },
    12,
    true,
  );
  // A run recorded without its text (an older thaw) still needs the file.
  await withFixture(async (f) => {
    await Deno.remove(join(f.dir, "rb.yaml"));
    const body = await detail(f);
    equal(body.predicted, null);
    match(body.predicted_note ?? "", /cannot be loaded here: .*no such file/);
  });
});

Deno.test("GET /runs/ID lists the services a real run left running, and sees one stop", async () => {
  await withFixture(async (f) => {
    await finish(f);
    const service = spawnGroup("sh", "exec sleep 60", { cwd: f.dir, env: {} });
    try {
      const log = join(f.dir, "start-app.log");
      await f.store.addProcess(f.run, {
        step: "start-app",
        pid: service.pid,
        pgid: service.pgid,
        log,
      });
      const app = createApp({ store: f.store });
      const body = RunDetailSchema.parse(await (await app.request(`/runs/${f.run}`)).json());
      equal(body.state, "done");
      deepEqual(body.services, [{
        step: "start-app",
        pid: service.pid,
        pgid: service.pgid,
        log,
        alive: true,
      }]);
      await killGroup(service.pgid, 1000);
      await service.status;
      await new Promise((resolve) => setTimeout(resolve, 150)); // past the answer's 100 ms cache
      const after = RunDetailSchema.parse(await (await app.request(`/runs/${f.run}`)).json());
      equal(after.services[0]?.alive, false);
    } finally {
      await killGroup(service.pgid, 1000);
      await service.closeOutput();
    }
  });
});

Deno.test("GET /runs/ID answers 304 to If-None-Match, until the run moves on", async () => {
  await withFixture(async (f) => {
    const app = createApp({ store: f.store, view: { ttlMs: 0 } });
    const first = await app.request(`/runs/${f.run}`);
    const etag = first.headers.get("etag")!;
    match(etag, /^"[\w-]+"$/);
    await first.body?.cancel();
    const same = await app.request(`/runs/${f.run}`, { headers: { "If-None-Match": etag } });
    equal(same.status, 304);
    equal(await same.text(), "");
    equal(same.headers.get("etag"), etag);
    const listed = await app.request(`/runs/${f.run}`, {
      headers: { "If-None-Match": `"other", W/${etag}` },
    });
    equal(listed.status, 304);
    await finish(f);
    const moved = await app.request(`/runs/${f.run}`, { headers: { "If-None-Match": etag } });
    equal(moved.status, 200);
    ok(moved.headers.get("etag") !== etag);
    const body = RunDetailSchema.parse(await moved.json());
    equal(body.state, "done");
    equal(body.outcome, "met");
    equal(body.predicted, null);
  });
});

Deno.test("GET /runs lists runs newest first as thaw status --json does, when asked", async () => {
  await withFixture(async (f) => {
    const app = createApp({ store: f.store });
    const res = await app.request("/runs");
    const runs = RunSummarySchema.array().parse(await res.json());
    deepEqual(runs.map((r) => [r.run, r.state, r.runbook]), [[f.run, "running", "shop"]]);
    const bad = await app.request("/runs?limit=lots");
    equal(bad.status, 400);
    match(ErrorSchema.parse(await bad.json()).error, /limit=lots: expected a whole number/);
    equal((await app.request("/healthz")).status, 200);
  });
});

Deno.test("the API answers unknown runs, steps and endpoints with JSON errors, when asked", async () => {
  await withFixture(async (f) => {
    const app = createApp({ store: f.store, token: "s3cret" });
    const auth = { Authorization: "Bearer s3cret" };
    const typo = f.run.slice(0, -1) + (f.run.endsWith("0") ? "1" : "0");
    const cases: [string, RequestInit, number, RegExp][] = [
      [`/runs/${typo}`, {}, 404, new RegExp(`no run ${typo}.*did you mean "${f.run}"`)],
      [`/runs/${typo}/events`, {}, 404, /no run/],
      [
        `/runs/${f.run}/steps/start-dbb/approve`,
        { method: "POST", headers: auth },
        404,
        /did you mean "start-db"/,
      ],
      [`/runs/${typo}/cancel`, { method: "POST", headers: auth }, 404, /no run/],
      ["/nope", {}, 404, /no such endpoint: GET \/nope/],
      [`/runs/${f.run}`, { method: "DELETE" }, 405, /DELETE is not allowed here; use GET/],
      [`/runs/${f.run}/events`, { headers: { "Last-Event-ID": "x1" } }, 400, /Last-Event-ID "x1"/],
      [`/runs/${f.run}/events`, { headers: { "Last-Event-ID": "99" } }, 400, /past the last event/],
    ];
    for (const [path, init, status, message] of cases) {
      const res = await app.request(path, init);
      equal(res.status, status, path);
      match(res.headers.get("content-type") ?? "", /application\/json/);
      const body = ErrorSchema.parse(await res.json());
      match(body.error, message);
      equal(body.status, status);
    }
  });
});

Deno.test("the API answers 500 without a stack trace, when the store fails unexpectedly", async () => {
  await withFixture(async (f) => {
    const broken = new Proxy(f.store, {
      get: (target, key) =>
        key === "getRun"
          ? () => Promise.reject(new TypeError("boom at secretFunction (/src/x.ts:1:1)"))
          : Reflect.get(target, key),
    });
    const logged: string[] = [];
    const app = createApp({ store: broken, log: (l) => logged.push(l) });
    const res = await app.request(`/runs/${f.run}`);
    equal(res.status, 500);
    const text = await res.text();
    ok(!/boom|secretFunction|\.ts:\d/.test(text), text);
    ErrorSchema.parse(JSON.parse(text));
    match(logged.join("\n"), /boom/);
  });
});

Deno.test("approve and cancel need the bearer token, when one is configured", async () => {
  await withFixture(async (f) => {
    const approve = `/runs/${f.run}/steps/start-app/approve`;
    const post = (app: ReturnType<typeof createApp>, path: string, token?: string) =>
      app.request(path, {
        method: "POST",
        ...(token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } }),
      });
    const open = createApp({ store: f.store });
    const refused = await post(open, approve, "anything");
    equal(refused.status, 403);
    match((await refused.json()).error, /no token/);

    const app = createApp({ store: f.store, token: "s3cret", cancelWaitMs: 300 });
    const missing = await post(app, approve);
    equal(missing.status, 401);
    equal(missing.headers.get("www-authenticate"), 'Bearer realm="thaw"');
    await missing.body?.cancel();
    equal((await post(app, approve, "s3creT")).status, 401);
    equal((await post(app, approve, "s3cret-and-more")).status, 401);
    deepEqual(await f.store.takeCommands(f.run), [], "a refused change reached the engine");

    const ok202 = await post(app, approve, "s3cret");
    equal(ok202.status, 202);
    equal((await ok202.json()).step, "start-app");
    const cancelled = await post(app, `/runs/${f.run}/cancel`, "s3cret");
    equal(cancelled.status, 202, "no engine confirms within 300 ms here");
    await cancelled.body?.cancel();
    deepEqual(
      (await f.store.takeCommands(f.run)).map((c) => [c.kind, c.step]),
      [["approve", "start-app"], ["cancel", null]],
    );
    await finish(f);
    const late = await post(app, `/runs/${f.run}/cancel`, "s3cret");
    equal(late.status, 409);
    match((await late.json()).error, /already ended: done/);
  });
});

Deno.test("POST /runs/ID/cancel cancels an interrupted run itself, when its engine is gone", async () => {
  await withFixture(async (f) => {
    await f.store.updateRun(f.run, { pid: 2 ** 22 + 12345, heartbeatAt: Date.now() - 120000 });
    // What the killed engine left: a partial fetch, and a fetch that landed.
    const partial = join(f.dir, `.logs.thaw-${f.run}.part`);
    await Deno.writeTextFile(partial, "half");
    await Deno.writeTextFile(join(f.dir, `.db.thaw-${f.run}.part`), "done steps keep theirs");
    const app = createApp({ store: f.store, token: "t" });
    const res = await app.request(`/runs/${f.run}/cancel`, {
      method: "POST",
      headers: { Authorization: "Bearer t" },
    });
    equal(res.status, 200);
    equal((await res.json()).state, "cancelled");
    equal((await f.store.getRun(f.run))?.state, "cancelled");
    equal(await Deno.stat(partial).then(() => true, () => false), false, "a partial file is left");
    ok(await Deno.stat(join(f.dir, `.db.thaw-${f.run}.part`)), "fetch-db was done");
  });
});

Deno.test("GET /runs/ID/events streams steps, milestones and the end, when the run finishes", async () => {
  await withFixture(async (f) => {
    const app = createApp({ store: f.store, events: { pollMs: 10 } });
    const res = await app.request(`/runs/${f.run}/events`);
    equal(res.status, 200);
    match(res.headers.get("content-type") ?? "", /text\/event-stream/);
    const reading = collectEvents(res.body!, (e) => e.event === "end");
    await new Promise((r) => setTimeout(r, 50));
    await finish(f);
    const events = await reading;
    const steps = events.filter((e) => e.event === "step");
    deepEqual(steps.map((e) => e.lastId), ["1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    deepEqual(
      steps.map((e) => StepEventSchema.parse(JSON.parse(e.data))).map((e) => [e.step, e.state]),
      [...FIRST, ...REST].map((c) => [c.step, c.state]),
    );
    const milestone = events.find((e) => e.event === "milestone")!;
    deepEqual(MilestoneEventSchema.parse(JSON.parse(milestone.data)), {
      milestone: "service",
      at: 17,
    });
    equal(milestone.lastId, "9.1");
    ok(events.indexOf(milestone) > events.findIndex((e) => e.lastId === "9"));
    const progress = events.filter((e) => e.event === "progress").map((e) => JSON.parse(e.data));
    deepEqual(progress.map((p) => [p.step, p.bytes]), [["fetch-db", 100e6], ["fetch-logs", 50e6]]);
    const end = events.at(-1)!;
    equal(end.lastId, "end");
    equal(EndEventSchema.parse(JSON.parse(end.data)).outcome, "met");
  });
});

Deno.test("GET /runs/ID/events misses nothing and repeats nothing, when a client reconnects", async () => {
  await withFixture(async (f) => {
    await finish(f);
    const app = createApp({ store: f.store, events: { pollMs: 10 } });
    const all = await collectEvents((await app.request(`/runs/${f.run}/events`)).body!);
    const durable = all.filter((e) => e.hasId);
    // From every id a client can have seen, the rest of the durable events, exactly.
    for (let k = 0; k < durable.length - 1; k++) {
      const res = await app.request(`/runs/${f.run}/events`, {
        headers: { "Last-Event-ID": durable[k]!.lastId },
      });
      const rest = (await collectEvents(res.body!)).filter((e) => e.hasId);
      deepEqual(
        rest.map((e) => [e.event, e.lastId, e.data]),
        durable.slice(k + 1).map((e) => [e.event, e.lastId, e.data]),
        `after ${durable[k]!.lastId}`,
      );
    }
    const after = await app.request(`/runs/${f.run}/events`, {
      headers: { "Last-Event-ID": "end" },
    });
    equal(after.status, 204, "EventSource stops reconnecting on 204");
  });
});

Deno.test("GET /metrics is Prometheus text a real parser reads, when runs are in the store", async () => {
  await withFixture(async (f) => {
    const app = createApp({ store: f.store });
    const res = await app.request("/metrics");
    match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const families = parsePrometheus(text) as {
      name: string;
      type: string;
      metrics: { value: string; labels?: Record<string, string> }[];
    }[];
    const family = (name: string) => families.find((x) => x.name === name)!;
    const value = (name: string, labels: Record<string, string>) =>
      Number(
        family(name).metrics.find((m) =>
          Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)
        )?.value,
      );
    equal(value("thaw_runs", { state: "running" }), 1);
    equal(value("thaw_runs", { state: "done" }), 0);
    const steps = family("thaw_run_steps").metrics.filter((m) => m.labels?.run === f.run);
    equal(steps.reduce((n, m) => n + Number(m.value), 0), 4);
    ok(value("thaw_run_predicted_ttr_seconds", { run: f.run }) > 16);
    await finish(f);
    const after = parsePrometheus(await (await app.request("/metrics")).text()) as typeof families;
    const done = after.find((x) => x.name === "thaw_runs")!.metrics
      .find((m) => m.labels?.state === "done");
    equal(done?.value, "1");
    const ttr = after.find((x) => x.name === "thaw_run_ttr_seconds")!.metrics[0];
    equal(ttr?.labels?.runbook, "shop");
    equal(Number(ttr?.value), f.report().ttr_s);
    for (const fam of after) equal(fam.type, "GAUGE", fam.name);
    await promtoolCheck(text);
  });
});

/** Prometheus's own linter, where it is installed (Debian: `prometheus`); CI has only the parser. */
async function promtoolCheck(text: string): Promise<void> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  const said = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  equal(out.code, 0, said);
  equal(said.trim(), "", "promtool found lint problems");
}

Deno.test("GET /openapi.json is a valid OpenAPI 3.1 document of every endpoint, when read", async () => {
  const store = await openStore(":memory:");
  try {
    const doc = await (await createApp({ store }).request("/openapi.json")).json();
    const validator = new Validator();
    const result = await validator.validate(doc);
    ok(result.valid, JSON.stringify(result.errors));
    deepEqual(Object.keys(doc.paths).sort(), [
      "/healthz",
      "/metrics",
      "/openapi.json",
      "/runs",
      "/runs/{id}",
      "/runs/{id}/cancel",
      "/runs/{id}/events",
      "/runs/{id}/steps/{step}/approve",
      "/runs/{id}/steps/{step}/done",
    ]);
    const refs = JSON.stringify(doc).match(/#\/components\/schemas\/\w+/g) ?? [];
    for (const ref of refs) ok(doc.components.schemas[ref.split("/").pop()!], ref);
  } finally {
    await store.close();
  }
});
