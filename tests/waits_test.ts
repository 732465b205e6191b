/**
 * Steering waits through the HTTP API (`app.request()`, a real SQLite store): `approve` of a step
 * that does not wait is a 409; `done` marks a waiting step done, or records it for a run with no
 * engine. And the live table of a step that waits (the waits as scheduler state are tested in
 * `approvals_test.ts`).
 *
 * @module
 */
import { deepEqual, equal, match } from "node:assert/strict";
import { join } from "node:path";
import { createApp } from "../engine/api/app.ts";
import { LiveRun, renderLiveTable } from "../engine/cli/live_view.ts";
import { parseRunbook } from "../engine/runbook/load.ts";
import type { Report } from "../engine/schedule/report.ts";
import { simulate } from "../engine/simulate/simulate.ts";
import { openStore } from "../engine/store/mod.ts";
import type { Store } from "../engine/store/types.ts";
import { interruptedDetail } from "../engine/schedule/waits.ts";
import { createStoredRun } from "./stored_run.ts";

const RUNBOOK = `runbook: 1
name: gates
steps:
  - { id: restore, run: "true", estimate: 1s }
  - { id: gate, run: "true", estimate: 1s, approval: "Switch traffic?" }
  - { id: after, needs: [restore, gate], run: "true", estimate: 1s }
`;

async function withRun(body: (store: Store, run: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  const store = await openStore(join(dir, "state.db"));
  try {
    const { rb, run } = await createStoredRun(store, dir, RUNBOOK, { ageMs: 5000 });
    const report: Report = { ...simulate(rb, { run }), mode: "live" };
    await store.updateRun(run, { report: JSON.stringify(report), heartbeatAt: Date.now() });
    await body(store, run);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const post = (app: ReturnType<typeof createApp>, path: string) =>
  app.request(path, { method: "POST", headers: { Authorization: "Bearer t0ken" } });

Deno.test("POST .../approve answers 409, when the step has no approval gate or no longer waits", async () => {
  await withRun(async (store, run) => {
    const app = createApp({ store, token: "t0ken" });
    await store.recordSteps(run, [
      { step: "restore", state: "running", at: 0 },
      { step: "gate", state: "running", at: 0, detail: "approved" },
    ]);
    for (
      const [step, why] of [
        ["restore", /has no approval gate and does not wait for a person/],
        ["after", /has no approval gate/],
        ["gate", /is running \(approved\); it no longer waits for approval/],
      ] as const
    ) {
      const r = await post(app, `/runs/${run}/steps/${step}/approve`);
      equal(r.status, 409, step);
      match((await r.json()).error, why);
    }
    deepEqual(await store.takeCommands(run), [], "a refused approval reached the engine");
  });
});

Deno.test("POST .../done marks a waiting step done, through the engine or the store", async () => {
  await withRun(async (store, run) => {
    const app = createApp({ store, token: "t0ken" });
    equal(
      (await createApp({ store }).request(`/runs/${run}/steps/restore/done`, {
        method: "POST",
      })).status,
      403,
    );
    await store.recordSteps(run, [
      { step: "restore", state: "running", at: 0, detail: interruptedDetail(run, "restore") },
    ]);
    const notWaiting = await post(app, `/runs/${run}/steps/after/done`);
    equal(notWaiting.status, 409);
    match((await notWaiting.json()).error, /is pending and does not wait for a person/);
    const queued = await post(app, `/runs/${run}/steps/restore/done`);
    equal(queued.status, 202);
    const again = await post(app, `/runs/${run}/steps/restore/approve`);
    equal(again.status, 202);
    deepEqual((await store.takeCommands(run)).map((c) => [c.kind, c.step]), [
      ["done", "restore"],
      ["approve", "restore"],
    ]);

    // The engine is gone: the store records it, and the report says so until resume.
    await store.updateRun(run, { pid: 2 ** 22 + 4321, heartbeatAt: Date.now() - 120000 });
    const recorded = await post(app, `/runs/${run}/steps/after/done`);
    equal(recorded.status, 200);
    equal((await recorded.json()).state, "interrupted");
    equal((await store.steps(run)).find((s) => s.step === "after")?.state, "done");
    const report = JSON.parse((await store.getRun(run))!.report!) as Report;
    equal(report.steps.find((s) => s.id === "after")?.state, "done");
    const twice = await post(app, `/runs/${run}/steps/after/done`);
    equal(twice.status, 409);
    match((await twice.json()).error, /done already/);
    const unknown = await post(app, `/runs/${run}/steps/aftr/done`);
    equal(unknown.status, 404);
    match((await unknown.json()).error, /did you mean "after"/);
  });
});

Deno.test("renderLiveTable() shows a step interrupted by its engine whole, without an ETA", () => {
  const rb = parseRunbook(
    "runbook: 1\nname: x\nsteps:\n  - {id: restore-db, run: 'true', estimate: 5s}\n",
    "x.yaml",
  );
  const run = "01KZZZZZZZZZZZZZZZZZZZZZZZ";
  const live = new LiveRun(rb, run, "aggressive", Date.now());
  Object.assign(live.steps[0]!, {
    state: "running",
    since: 1,
    detail: interruptedDetail(run, "restore-db"),
  });
  live.elapsed = 30;
  const text = renderLiveTable(live);
  match(text, new RegExp(`thaw done ${run} restore-db marks it done`));
  equal(/25s over|\b\d+s over/.test(text), false, text);
});
