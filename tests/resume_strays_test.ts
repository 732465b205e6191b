/**
 * A step's process started just before `kill -9` of its engine, not yet recorded in the store
 * (records go into the commit of the next turn): `thaw cancel` still stops it, found by the
 * `THAW_RUN_ID` and `THAW_STEP` in its environment, and so does `thaw resume` before it starts the
 * step again (the engine ran on this machine). Real processes, a real store.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../engine/store/mod.ts";
import { processAlive } from "../steps/process/process.ts";
import { engine, exists, firstRun, inDir, stopListed, thaw, waitFor } from "./live_helpers.ts";

const RUNBOOK = `runbook: 1
name: strays
steps:
  - id: hold
    idempotent: true
    run: 'echo $$ >> pids; while [ ! -e go ]; do sleep 0.1; done'
`;

/** Runs the runbook, kills its engine and forgets the step's process record, as at the kill. */
async function killedUnrecorded(dir: string): Promise<{ run: string; pid: number }> {
  const first = engine(dir, ["run", "rb.yaml"]);
  const run = await waitFor(dir, async (s) => {
    const r = await firstRun(s);
    return r && (await s.processes(r.id)).length === 1 ? r : undefined;
  }, "the step's process record");
  Deno.kill(-first.child.pid, "SIGKILL");
  await first.output;
  const pid = Number((await Deno.readTextFile(join(dir, "pids"))).trim());
  assert.ok(processAlive(pid), "the step outlives its engine (its own session)");
  // The store as it is when the kill comes before the record's commit.
  const store = await openStore(join(dir, "state.db"));
  try {
    await store.removeProcess(run!.id, "hold");
  } finally {
    await store.close();
  }
  return { run: run!.id, pid };
}

/** Waits (at most 10 s) for `pid` to be gone. */
async function gone(pid: number): Promise<boolean> {
  for (let k = 0; k < 100 && processAlive(pid); k++) await new Promise((r) => setTimeout(r, 100));
  return !processAlive(pid);
}

Deno.test("thaw cancel stops a step's process that was not yet recorded at kill -9", async () => {
  await inDir(RUNBOOK, async (dir) => {
    const { run, pid } = await killedUnrecorded(dir);
    try {
      const cancelled = await thaw(dir, ["cancel", run]);
      assert.equal(cancelled.code, 0, cancelled.stderr);
      assert.ok(await gone(pid), `the old process ${pid} still runs`);
    } finally {
      await Deno.writeTextFile(join(dir, "go"), "");
      assert.equal(await exists(join(dir, "go")), true);
      await stopListed(join(dir, "pids"));
    }
  });
});

Deno.test("thaw resume stops a step's process that was not yet recorded, before it runs the step again", async () => {
  await inDir(RUNBOOK, async (dir) => {
    const { run, pid } = await killedUnrecorded(dir);
    const resumed = engine(dir, ["resume", run]);
    try {
      assert.ok(await gone(pid), `the old process ${pid} still runs beside the resumed step`);
      // The step ran again: a second pid, alive, and not the old one.
      const pids = await waitFor(dir, async () => {
        const lines = (await Deno.readTextFile(join(dir, "pids"))).trim().split("\n");
        return lines.length === 2 ? lines.map(Number) : undefined;
      }, "the step started again");
      assert.notEqual(pids[1], pid);
      await Deno.writeTextFile(join(dir, "go"), "");
      const out = await resumed.output;
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    } finally {
      await Deno.writeTextFile(join(dir, "go"), "");
      try {
        Deno.kill(-resumed.child.pid, "SIGKILL");
      } catch { /* ended */ }
      await resumed.output;
      await stopListed(join(dir, "pids"));
    }
  });
});
