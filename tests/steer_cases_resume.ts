/**
 * Steering cases after a run stopped: resuming and `thaw done` when its engine was killed,
 * cancelling an interrupted run, `thaw done` on a failed run, and the exit codes of runs that
 * share a store (registered by `steer_suite.ts`).
 *
 * @module
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import {
  alive,
  type Ctx,
  exists,
  exited,
  gone,
  listed,
  pidsIn,
  RESUME,
  running,
  start,
  stepDetail,
} from "./steer_cases_kit.ts";

/** Starts RESUME, and kills its engine with SIGKILL while `restore` runs: the run id, the pid. */
async function killed(t: Ctx) {
  const { engine, id, store } = await start(t, RESUME);
  const [pid] = await running(t, store, id, "restore", ["restore.pids"]);
  Deno.kill(engine.process.pid, "SIGKILL");
  equal((await exited(engine)).signal, "SIGKILL");
  ok(alive(pid!), "the step outlives its engine (a session of its own)");
  deepEqual(await listed(t, id), ["interrupted", null]);
  return { id, store, pid: pid! };
}

export async function killResumeDone(t: Ctx): Promise<void> {
  const { id, store, pid } = await killed(t);
  const [status, approve] = await Promise.all([
    t.thaw(["status", id]),
    t.thaw(["approve", id, "restore"]),
  ]);
  match(status.stdout, /restore was running when the engine stopped/);
  equal(approve.code, 2);
  match(approve.stderr, new RegExp(`run ${id} is interrupted .*thaw resume ${id} first`));

  const resumed = t.spawn(["resume", id]);
  await stepDetail(store, id, "restore", /restore was running when the engine stopped/, resumed);
  await gone([pid]); // the dead engine's step, stopped by the resumed one
  const early = await t.thaw(["done", id, "start"]);
  equal(early.code, 2);
  match(early.stderr, /step start of run \S+ is pending and does not wait for a person/);
  const done = await t.thaw(["done", id, "restore"]);
  equal(done.code, 0, done.stderr);
  equal(done.stdout, `marked restore done in run ${id}; its dependents may start\n`);
  equal((await exited(resumed)).code, 0, resumed.stderr.text);
  ok(await exists(join(t.dir, "started")));
  equal((await pidsIn(t.dir, "restore.pids")).length, 1, "restore ran again");
  const events = await store.stepEvents(id);
  ok(events.some((e) => e.step === "restore" && e.state === "done" && /by hand/.test(e.detail!)));
  deepEqual(await listed(t, id), ["done", "met"]);
}

export async function cancelInterrupted(t: Ctx): Promise<void> {
  const { id, store, pid } = await killed(t);
  const r = await t.thaw(["cancel", id]);
  equal(r.code, 0, r.stderr);
  equal(r.stdout, `run ${id} was interrupted; marked cancelled\n`);
  await gone([pid]); // no engine: thaw cancel stopped the group the store recorded
  deepEqual(await listed(t, id), ["cancelled", "cancelled"]);
  deepEqual(await store.processes(id), [], "the store still lists the stopped processes");
  const again = await t.thaw(["cancel", id]);
  equal(again.code, 2);
  match(again.stderr, /has already ended: cancelled/);
}

export async function doneRecorded(t: Ctx): Promise<void> {
  await Deno.writeTextFile(join(t.dir, "rb.yaml"), RESUME);
  await Deno.writeTextFile(join(t.dir, "fail"), "");
  const failed = await t.thaw(["run", "rb.yaml", "--json"]);
  equal(failed.code, 1, failed.stderr);
  const id = JSON.parse(failed.stdout).run;
  const done = await t.thaw(["done", id, "restore"]);
  equal(done.code, 0, done.stderr);
  equal(
    done.stdout,
    `marked restore done in run ${id} (failed); thaw resume ${id} carries on after it\n`,
  );
  const [shown, twice] = await Promise.all([
    t.thaw(["status", id, "--json"]),
    t.thaw(["done", id, "restore"]),
  ]);
  const restore = JSON.parse(shown.stdout).steps.find((s: { id: string }) => s.id === "restore");
  deepEqual([restore.state, restore.detail], ["done", "marked done by hand (thaw done)"]);
  equal(twice.code, 2);
  match(twice.stderr, /step restore of run \S+ is done already/);
  const resumed = await t.thaw(["resume", id, "--json"]);
  equal(resumed.code, 0, resumed.stderr);
  const report = JSON.parse(resumed.stdout);
  deepEqual([report.outcome, report.steps.map((s: { state: string }) => s.state)], [
    "met",
    ["done", "done"],
  ]);
  equal((await pidsIn(t.dir, "restore.pids")).length, 1, "restore ran again");
  deepEqual(await listed(t, id), ["done", "met"]);
}

export async function exitCodes(t: Ctx): Promise<void> {
  const book = (name: string, extra: string, step: string) =>
    `runbook: 1\nname: ${name}\n${extra}steps:\n  - { id: s, ${step}, milestone: up }\n`;
  const books = {
    met: book("exit-met", "objectives: { rto: 1m }\n", 'run: "true"'),
    missed: book("exit-missed", "objectives: { rto: 0.1s }\n", 'run: "sleep 0.4"'),
    failed: book("exit-failed", "", 'run: "exit 4"'),
    bad: book("exit-bad", "", 'run: "true", estimat: 1s'),
  };
  for (const [k, text] of Object.entries(books)) {
    await Deno.writeTextFile(join(t.dir, `${k}.yaml`), text);
  }
  // Three runs at once on one store, and one refused before it starts.
  const [met, missed, failed, bad] = await Promise.all(
    Object.keys(books).map((k) => t.thaw(["run", `${k}.yaml`, "--json"])),
  );
  deepEqual([met!.code, missed!.code, failed!.code, bad!.code], [0, 3, 1, 2], bad!.stderr);
  match(bad!.stderr, /^bad\.yaml:\d+:\d+: unknown key "estimat"/);
  const outcomes = [met!, missed!, failed!].map((r) => JSON.parse(r.stdout).outcome);
  deepEqual(outcomes, ["met", "missed", "failed"]);
  const r = await t.thaw(["status", "--json"]);
  type Row = { runbook: string; state: string; outcome: string };
  const rows = (JSON.parse(r.stdout) as Row[]).map((x) => [x.runbook, x.state, x.outcome]);
  deepEqual(rows.sort(), [
    ["exit-failed", "failed", "failed"],
    ["exit-met", "done", "met"],
    ["exit-missed", "done", "missed"],
  ]);
}
