/**
 * Steering cases: cancelling a running run from another process, with `thaw cancel` and with
 * `POST /runs/ID/cancel` (registered by `steer_suite.ts`).
 *
 * @module
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import {
  alive,
  type Ctx,
  exited,
  get,
  gone,
  listed,
  LONG,
  post,
  running,
  serve,
  start,
  stopServe,
  TOKEN,
} from "./steer_cases_kit.ts";

export async function cliCancel(t: Ctx): Promise<void> {
  const { engine, id, store } = await start(t, LONG);
  const pids = await running(t, store, id, "long", ["long.pid", "sleep.pid"]);
  const r = await t.thaw(["cancel", id]);
  equal(r.code, 0, r.stderr);
  equal(r.stdout, `run ${id} cancelled\n`);
  equal((await exited(engine)).code, 1, engine.stderr.text);
  await gone(pids);
  deepEqual(await store.processes(id), [], "the store still lists the step's processes");
  deepEqual(await listed(t, id), ["cancelled", "cancelled"]);
  const steps = Object.fromEntries((await store.steps(id)).map((s) => [s.step, s.state]));
  deepEqual(steps, { quick: "done", long: "cancelled" });
  const again = await t.thaw(["cancel", id]);
  equal(again.code, 2);
  match(again.stderr, /has already ended: cancelled/);
  // Resumed, the run has no outcome until it ends again (not the "cancelled" of before).
  const resumed = t.spawn(["resume", id]);
  await running(t, store, id, "long", ["long.pid", "sleep.pid"]);
  const shown = await t.thaw(["status", id, "--json"]);
  deepEqual(await listed(t, id), ["running", null]);
  deepEqual([JSON.parse(shown.stdout).state, JSON.parse(shown.stdout).outcome], ["running", null]);
  equal((await t.thaw(["cancel", id])).code, 0);
  equal((await exited(resumed)).code, 1, resumed.stderr.text);
  deepEqual(await listed(t, id), ["cancelled", "cancelled"]);
}

export async function httpCancel(t: Ctx): Promise<void> {
  const { server, url } = await serve(t);
  const { engine, id, store } = await start(t, LONG);
  const pids = await running(t, store, id, "long", ["long.pid", "sleep.pid"]);
  const cancel = `${url}/runs/${id}/cancel`;
  equal((await post(cancel)).status, 401);
  equal((await post(cancel, `${TOKEN}x`)).status, 401);
  ok(pids.every(alive), "a refused cancel stopped the step");
  // 200 once the engine confirms within 5 s; 202 (not confirmed yet) only on a crawling machine.
  const res = await post(cancel, TOKEN);
  ok(
    res.status === 200 && res.body.state === "cancelled" || res.status === 202,
    JSON.stringify(res.body),
  );
  equal((await exited(engine)).code, 1, engine.stderr.text);
  await gone(pids);
  equal((await get(`${url}/runs/${id}`)).body.state, "cancelled");
  const again = await post(cancel, TOKEN);
  equal(again.status, 409);
  match(again.body.error, /has already ended: cancelled/);
  const approve = await post(`${url}/runs/${id}/steps/long/approve`, TOKEN);
  equal(approve.status, 409);
  match(approve.body.error, /is cancelled; there is nothing to approve/);
  await stopServe(server);
}
