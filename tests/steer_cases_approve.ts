/**
 * Steering cases: approving a run at its gate, with `thaw status` and `thaw approve` from other
 * processes, and through `thaw serve` with its token (registered by `steer_suite.ts`).
 *
 * @module
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { collectEvents } from "./sse.ts";
import {
  type Ctx,
  exists,
  exited,
  GATE,
  get,
  listed,
  post,
  serve,
  start,
  stepDetail,
  stopServe,
  TOKEN,
  until,
  within,
} from "./steer_cases_kit.ts";

export async function statusAndApprove(t: Ctx): Promise<void> {
  const { engine, id, store } = await start(t, GATE);
  await stepDetail(store, id, "gate", /^waiting for approval: Switch traffic\?/, engine);
  const [list, table, one, oneJson] = await Promise.all([
    listed(t, id),
    t.thaw(["status"]),
    t.thaw(["status", id]),
    t.thaw(["status", id, "--json"]),
  ]);
  deepEqual(list, ["running", null]);
  match(table.stdout, new RegExp(`${id}\\s+steer-gate\\s+run\\s+running`));
  match(one.stdout, new RegExp(`^run ${id} of steer-gate: running`));
  match(one.stdout, new RegExp(`gate waits: waiting for approval: .*thaw approve ${id} gate`));
  deepEqual([JSON.parse(oneJson.stdout).run, JSON.parse(oneJson.stdout).state], [id, "running"]);
  // No outcome while the run goes on (as GET /runs/ID): its stored report is the run so far.
  equal(JSON.parse(oneJson.stdout).outcome, null, oneJson.stdout);
  match(one.stdout, /^outcome: none yet \(the run has not ended\)$/m);

  const [notWaiting, typo, noRun] = await Promise.all([
    t.thaw(["approve", id, "after"]),
    t.thaw(["approve", id, "gat"]),
    t.thaw(["approve", "01NOSUCHRUN", "gate"]),
  ]);
  deepEqual([notWaiting.code, typo.code, noRun.code], [2, 2, 2]);
  match(notWaiting.stderr, /step after of run \S+ has no approval gate and does not wait/);
  match(typo.stderr, /has no step "gat" \(did you mean "gate"\?\)/);
  match(noRun.stderr, /no run 01NOSUCHRUN in this store/);
  ok(!/\n\s+at /.test(notWaiting.stderr + typo.stderr + noRun.stderr), "a stack trace");
  equal(await exists(join(t.dir, "gated")), false, "the gate ran before its approval");

  const approved = await t.thaw(["approve", id, "gate"]);
  equal(approved.code, 0, approved.stderr);
  equal(approved.stdout, `approved gate in run ${id}\n`);
  equal((await exited(engine)).code, 0, engine.stderr.text);
  ok(await exists(join(t.dir, "gated")) && await exists(join(t.dir, "after")));
  const [after, late] = await Promise.all([listed(t, id), t.thaw(["approve", id, "gate"])]);
  deepEqual(after, ["done", "met"]);
  equal(late.code, 2);
  match(late.stderr, /is done; there is nothing to approve/);
  // The step's output went where the README says, and nowhere else.
  equal(await Deno.readTextFile(join(t.sut.logs(t.dir), id, "prep.log")), "preparing\n");
}

export async function serveAndApprove(t: Ctx): Promise<void> {
  const { server, url } = await serve(t);
  deepEqual((await get(`${url}/runs`)).body, [], "a new store lists no run");
  const { engine, id } = await start(t, GATE);
  const events = fetch(`${url}/runs/${id}/events`, { signal: t.signal })
    .then((r) => collectEvents(r.body!, (e) => e.event === "end"));
  const waiting = await until("the gate to wait in GET /runs/ID", async () => {
    const res = await get(`${url}/runs/${id}`);
    const gate = res.body.steps?.find((s: { id: string }) => s.id === "gate");
    return /^waiting for approval/.test(gate?.detail ?? "") ? res : undefined;
  });
  equal(waiting.body.state, "running");
  ok(waiting.etag, "GET /runs/ID has an ETag");
  const runs = (await get(`${url}/runs`)).body;
  deepEqual([runs.length, runs[0].run, runs[0].state], [1, id, "running"]);

  const gate = `${url}/runs/${id}/steps/gate/approve`;
  const none = await post(gate);
  equal(none.status, 401);
  match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
  equal((await post(gate, "wrong")).status, 401);
  const after = await post(`${url}/runs/${id}/steps/after/approve`, TOKEN);
  equal(after.status, 409);
  match(after.body.error, /has no approval gate and does not wait for a person/);
  equal((await post(`${url}/runs/01NOSUCHRUN/steps/gate/approve`, TOKEN)).status, 404);
  equal(await exists(join(t.dir, "gated")), false, "a refused request let the gate go");
  const queued = await post(gate, TOKEN);
  equal(queued.status, 202, JSON.stringify(queued.body));
  equal((await exited(engine)).code, 0, engine.stderr.text);

  const got = await within("the event stream to end", events);
  const steps = got.filter((e) => e.event === "step");
  deepEqual(steps.map((e) => e.lastId), steps.map((_, k) => String(k + 1)));
  const gates = steps.map((e) => JSON.parse(e.data)).filter((e) => e.step === "gate");
  ok(gates.some((e) => /^waiting for approval/.test(e.detail ?? "")), JSON.stringify(gates));
  equal(gates.at(-1).state, "done");
  const end = got.at(-1)!;
  deepEqual([end.event, JSON.parse(end.data).state, JSON.parse(end.data).outcome], [
    "end",
    "done",
    "met",
  ]);

  // An answer is served for up to 100 ms (longer when it took long to compute).
  const ended = await until("GET /runs/ID to show the end", async () => {
    const res = await get(`${url}/runs/${id}`);
    return res.body.state === "running" ? undefined : res;
  }, 5000);
  deepEqual([ended.status, ended.body.state, ended.body.outcome], [200, "done", "met"]);
  ok(ended.etag && ended.etag !== waiting.etag, "the ETag changed with the run");
  deepEqual(await get(`${url}/runs/${id}`, { "If-None-Match": ended.etag! }), {
    status: 304,
    etag: ended.etag,
    body: null,
  });
  equal((await post(gate, TOKEN)).status, 409, "approving a done run");
  const after204 = await fetch(`${url}/runs/${id}/events`, { headers: { "Last-Event-ID": "end" } });
  equal(after204.status, 204);
  await after204.body?.cancel();
  await stopServe(server);
}
