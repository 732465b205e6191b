/**
 * The contract every {@link Store} implementation keeps. A test file calls
 * {@link storeConformance} once per dialect (SQLite file, in-memory, PostgreSQL); the lease
 * tests are in `store_lease_conformance.ts`.
 *
 * @module
 */
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import type {
  LeaseStore,
  NewRun,
  RunRecord,
  StepRecord,
  StepStateName,
  Store,
} from "../engine/store/mod.ts";
import { leaseConformance } from "./store_lease_conformance.ts";
import { slConformance } from "./store_sl_conformance.ts";

export type { LeaseStore } from "../engine/store/mod.ts";

/** A store to test, and how to dispose of it. */
export interface OpenedStore {
  store: LeaseStore;
  /**
   * Another store on the same database, with its own connection (for stores that can be shared:
   * not `:memory:`); the caller closes it.
   */
  reopen?: () => Promise<LeaseStore>;
  cleanup(): Promise<void>;
}

/** How to run the suite. */
export interface ConformanceOptions {
  /** The database can be opened again, from other connections ({@link OpenedStore.reopen}). */
  readonly shared?: boolean;
  /** Ignore every test, with this reason (the database is not there). */
  readonly ignore?: boolean;
}

/** A new run with plain values; `over` changes some. */
export function newRun(id: string, over: Partial<NewRun> = {}): NewRun {
  return {
    id,
    runbook: "vod",
    file: "/srv/runbooks/vod.yaml",
    fileSha256: "9f2c".padEnd(64, "0"),
    mode: "live",
    drill: false,
    strategy: "aggressive",
    vars: {},
    steps: ["fetch-db", "restore-db", "start-vod"],
    startedAt: 1_700_000_000_000,
    pid: 4242,
    host: "dr-site-1",
    ...over,
  };
}

function stored({ runbookText, ...run }: NewRun): RunRecord {
  return {
    ...run,
    ...(runbookText === undefined || runbookText === null ? {} : { runbookText }),
    state: "running",
    heartbeatAt: run.startedAt,
    endedAt: null,
    report: null,
    outcome: null,
  };
}

/** A step record that was never frozen. */
function record(
  step: string,
  state: StepStateName,
  startS: number | null,
  endS: number | null,
  detail: string | null,
): StepRecord {
  return { step, state, startS, endS, frozenS: 0, detail };
}

/**
 * Registers the conformance tests of a store implementation; `open` gives a fresh, empty store
 * for each test.
 */
export function storeConformance(
  name: string,
  open: () => Promise<OpenedStore>,
  options: ConformanceOptions = {},
): void {
  const test = (title: string, fn: (store: Store) => Promise<void>) =>
    Deno.test({
      name: `${name}: ${title}`,
      ignore: options.ignore ?? false,
      async fn() {
        const { store, cleanup } = await open();
        try {
          await fn(store);
        } finally {
          await cleanup();
        }
      },
    });
  leaseConformance(name, open, options);
  slConformance(name, open, options);

  test("createRun() records a running run with every field, when the id is new", async (s) => {
    const run = newRun("r1", {
      drill: true,
      vars: { root: "/restore", backup: "http://b/vod" },
      strategy: "lazy",
    });
    await s.createRun(run);
    deepEqual(await s.getRun("r1"), stored(run));
  });

  test("createRun() keeps the runbook text as given, when it has one", async (s) => {
    const text = "name: vod\nsteps:\n  - id: start-vod # ünïcode, 'quotes', \\ and \"\"\n" +
      "    run: ./start\n".repeat(200);
    await s.createRun(newRun("with", { runbookText: text }));
    await s.createRun(newRun("empty", { runbookText: "" }));
    await s.createRun(newRun("null", { runbookText: null }));
    await s.createRun(newRun("old"));
    equal((await s.getRun("with"))?.runbookText, text);
    equal((await s.getRun("empty"))?.runbookText, "");
    for (const id of ["null", "old"]) {
      const run = await s.getRun(id);
      equal(run?.runbookText ?? null, null, `${id}: no text`);
      deepEqual(run, stored(newRun(id)));
    }
    const listed = await s.listRuns();
    equal(listed.find((r) => r.id === "with")?.runbookText, text);
  });

  test("createRun() throws and keeps the first run, when the id exists", async (s) => {
    await s.createRun(newRun("r1"));
    await rejects(s.createRun(newRun("r1", { host: "other" })), (e: Error) => {
      ok(e.message.includes("r1"), e.message);
      return true;
    });
    equal((await s.getRun("r1"))?.host, "dr-site-1");
  });

  test("listRuns() orders ids byte by byte and keeps times past 2^31 ms, when mixed", async (s) => {
    const t = 4_102_444_800_000; // 2100-01-01
    for (const id of ["b", "B", "a", "é", "A-1"]) await s.createRun(newRun(id, { startedAt: t }));
    deepEqual((await s.listRuns()).map((r) => r.id), ["é", "b", "a", "B", "A-1"]);
    await s.updateRun("a", { heartbeatAt: t + 1, endedAt: t + 2 });
    const a = await s.getRun("a");
    deepEqual([a?.startedAt, a?.heartbeatAt, a?.endedAt], [t, t + 1, t + 2]);
  });

  test("saveProgress() keeps sizes past 4 GiB exactly, when a fetch is large", async (s) => {
    await s.createRun(newRun("r1"));
    const big = {
      step: "fetch-db",
      bytes: 2 ** 40 + 7,
      total: 2 ** 42 + 1,
      prefetched: 2 ** 33,
      demanded: true,
      source: 2,
      at: 4_102_444_800_123,
      moving: 1234.5678,
    };
    await s.saveProgress("r1", [big]);
    deepEqual(await s.progress("r1"), [big]);
  });

  test("getRun() returns undefined, when the run is unknown", async (s) => {
    equal(await s.getRun("nope"), undefined);
    await s.createRun(newRun("r1"));
    equal(await s.getRun("r2"), undefined);
  });

  test("listRuns() gives newest first by startedAt then id, when limited or not", async (s) => {
    deepEqual(await s.listRuns(), []);
    await s.createRun(newRun("a", { startedAt: 100 }));
    await s.createRun(newRun("b", { startedAt: 300 }));
    await s.createRun(newRun("c", { startedAt: 200 }));
    await s.createRun(newRun("d", { startedAt: 300 }));
    deepEqual((await s.listRuns()).map((r) => r.id), ["d", "b", "c", "a"]);
    deepEqual((await s.listRuns(2)).map((r) => r.id), ["d", "b"]);
    deepEqual((await s.listRuns(10)).map((r) => r.id), ["d", "b", "c", "a"]);
    deepEqual((await s.listRuns())[2], stored(newRun("c", { startedAt: 200 })));
  });

  test("listRuns() gives only the runs in a state, when one is named", async (s) => {
    await s.createRun(newRun("a", { startedAt: 100 }));
    await s.createRun(newRun("b", { startedAt: 200 }));
    await s.createRun(newRun("c", { startedAt: 300 }));
    await s.updateRun("b", { state: "done" });
    deepEqual((await s.listRuns(undefined, "running")).map((r) => r.id), ["c", "a"]);
    deepEqual((await s.listRuns(1, "running")).map((r) => r.id), ["c"]);
    deepEqual((await s.listRuns(undefined, "done")).map((r) => r.id), ["b"]);
    deepEqual(await s.listRuns(undefined, "failed"), []);
  });

  test("countRuns() counts runs by stored state, when some have ended", async (s) => {
    deepEqual(await s.countRuns(), { running: 0, done: 0, failed: 0, cancelled: 0 });
    for (const id of ["a", "b", "c", "d"]) await s.createRun(newRun(id));
    await s.updateRun("b", { state: "done" });
    await s.updateRun("c", { state: "done" });
    await s.updateRun("d", { state: "cancelled" });
    deepEqual(await s.countRuns(), { running: 1, done: 2, failed: 0, cancelled: 1 });
  });

  test("updateRun() changes only the fields it names, when patched", async (s) => {
    const run = newRun("r1");
    await s.createRun(run);
    await s.updateRun("r1", { heartbeatAt: run.startedAt + 5000 });
    deepEqual(await s.getRun("r1"), { ...stored(run), heartbeatAt: run.startedAt + 5000 });
    await s.updateRun("r1", { pid: 7, host: "dr-site-2" });
    await s.updateRun("r1", {
      state: "done",
      endedAt: run.startedAt + 9000,
      report: '{"outcome":"met"}',
      outcome: "met",
    });
    deepEqual(await s.getRun("r1"), {
      ...stored(run),
      pid: 7,
      host: "dr-site-2",
      heartbeatAt: run.startedAt + 5000,
      state: "done",
      endedAt: run.startedAt + 9000,
      report: '{"outcome":"met"}',
      outcome: "met",
    });
    await s.updateRun("r1", { state: "running", endedAt: null, outcome: null });
    const back = await s.getRun("r1");
    deepEqual([back?.state, back?.endedAt, back?.outcome, back?.report], [
      "running",
      null,
      null,
      '{"outcome":"met"}',
    ]);
  });

  test("updateRun() throws, when the run is unknown", async (s) => {
    await rejects(s.updateRun("nope", { state: "done" }), /nope/);
    equal(await s.getRun("nope"), undefined);
  });

  test("recordSteps() numbers events per run from 1, when called in batches", async (s) => {
    await s.createRun(newRun("r1"));
    await s.createRun(newRun("r2"));
    await s.recordSteps("r1", [
      { step: "fetch-db", state: "running", at: 0 },
      { step: "restore-db", state: "frozen", at: 0.5, detail: "waits for fetch-db" },
    ]);
    await s.recordSteps("r2", [{ step: "fetch-db", state: "running", at: 1 }]);
    await s.recordSteps("r1", []);
    await s.recordSteps("r1", [{ step: "fetch-db", state: "done", at: 12.25 }]);
    deepEqual(await s.stepEvents("r1"), [
      { seq: 1, step: "fetch-db", state: "running", at: 0 },
      { seq: 2, step: "restore-db", state: "frozen", at: 0.5, detail: "waits for fetch-db" },
      { seq: 3, step: "fetch-db", state: "done", at: 12.25 },
    ]);
    deepEqual(await s.stepEvents("r2"), [{ seq: 1, step: "fetch-db", state: "running", at: 1 }]);
  });

  test("recordSteps() numbers events without gaps, when called concurrently", async (s) => {
    await s.createRun(newRun("r1"));
    await Promise.all(Array.from({ length: 20 }, (_, i) =>
      s.recordSteps("r1", [
        { step: `s${i}`, state: "running", at: i },
        { step: `s${i}`, state: "done", at: i + 1 },
      ])));
    const events = await s.stepEvents("r1");
    deepEqual(events.map((e) => e.seq), Array.from({ length: 40 }, (_, i) => i + 1));
    equal((await s.steps("r1")).filter((r) => r.state === "done").length, 20);
  });

  test("stepEvents() returns only later events, when given after", async (s) => {
    await s.createRun(newRun("r1"));
    await s.recordSteps(
      "r1",
      ["a", "b", "c", "d"].map((step, i) => ({
        step,
        state: "running",
        at: i,
      })),
    );
    deepEqual((await s.stepEvents("r1", 2)).map((e) => [e.seq, e.step]), [[3, "c"], [4, "d"]]);
    deepEqual(await s.stepEvents("r1", 4), []);
    deepEqual((await s.stepEvents("r1", 0)).length, 4);
    deepEqual(await s.stepEvents("unknown"), []);
  });

  test("recordSteps() throws and records nothing, when the run is unknown", async (s) => {
    await rejects(s.recordSteps("nope", [{ step: "a", state: "running", at: 0 }]), /nope/);
    deepEqual(await s.stepEvents("nope"), []);
    deepEqual(await s.steps("nope"), []);
  });

  test("recordSteps() folds start, end and detail, when a step runs and ends", async (s) => {
    await s.createRun(newRun("r1"));
    await s.recordSteps("r1", [
      { step: "restore-db", state: "pending", at: 0, detail: "needs fetch-db" },
      { step: "restore-db", state: "running", at: 1.5 },
    ]);
    deepEqual(await s.steps("r1"), [record("restore-db", "running", 1.5, null, "needs fetch-db")]);
    await s.recordSteps("r1", [{ step: "restore-db", state: "done", at: 5 }]);
    await s.recordSteps("r1", [
      { step: "start-vod", state: "running", at: 5 },
      { step: "start-vod", state: "failed", at: 8, detail: "exit status 1" },
    ]);
    deepEqual(await s.steps("r1"), [
      record("restore-db", "done", 1.5, 5, "needs fetch-db"),
      record("start-vod", "failed", 5, 8, "exit status 1"),
    ]);
  });

  test("recordSteps() sets the end for every ended state, when steps are skipped or cancelled", async (s) => {
    await s.createRun(newRun("r1", { steps: ["a", "b"] }));
    await s.recordSteps("r1", [
      { step: "a", state: "skipped", at: 2 },
      { step: "b", state: "running", at: 1 },
      { step: "b", state: "cancelled", at: 3, detail: "cancelled by ops" },
    ]);
    deepEqual((await s.steps("r1")).map((r) => [r.step, r.state, r.startS, r.endS]), [
      ["a", "skipped", null, 2],
      ["b", "cancelled", 1, 3],
    ]);
  });

  test("recordSteps() adds frozen time, when a step thaws", async (s) => {
    await s.createRun(newRun("r1"));
    await s.recordSteps("r1", [{ step: "start-vod", state: "frozen", at: 2, detail: "waits" }]);
    await s.recordSteps("r1", [{ step: "start-vod", state: "frozen", at: 3, detail: "still" }]);
    let [rec] = await s.steps("r1");
    deepEqual([rec?.state, rec?.frozenS, rec?.detail], ["frozen", 0, "still"]);
    await s.recordSteps("r1", [{ step: "start-vod", state: "running", at: 7 }]);
    [rec] = await s.steps("r1");
    deepEqual([rec?.state, rec?.frozenS, rec?.startS], ["running", 5, 7]);
    await s.recordSteps("r1", [
      { step: "start-vod", state: "frozen", at: 10 },
      { step: "start-vod", state: "pending", at: 10.5 },
      { step: "start-vod", state: "frozen", at: 11 },
    ]);
    [rec] = await s.steps("r1");
    equal(rec?.frozenS, 5.5, "an open frozen interval is not counted");
    await s.recordSteps("r1", [{ step: "start-vod", state: "running", at: 13 }]);
    [rec] = await s.steps("r1");
    equal(rec?.frozenS, 7.5);
    await s.recordSteps("r1", [{ step: "start-vod", state: "done", at: 20 }]);
    [rec] = await s.steps("r1");
    deepEqual([rec?.frozenS, rec?.startS, rec?.endS], [7.5, 13, 20]);
  });

  test("recordSteps() clears the end, when an ended step runs again", async (s) => {
    await s.createRun(newRun("r1"));
    await s.recordSteps("r1", [
      { step: "fetch-db", state: "running", at: 0 },
      { step: "fetch-db", state: "failed", at: 3, detail: "connection reset" },
      { step: "fetch-db", state: "running", at: 4 },
    ]);
    const [rec] = await s.steps("r1");
    deepEqual([rec?.state, rec?.startS, rec?.endS, rec?.detail], [
      "running",
      4,
      null,
      "connection reset",
    ]);
  });

  test("steps() lists steps in runbook order, when changes came in another", async (s) => {
    await s.createRun(newRun("r1", { steps: ["a", "b", "c"] }));
    await s.recordSteps("r1", [{ step: "c", state: "running", at: 0 }]);
    await s.recordSteps("r1", [{ step: "a", state: "running", at: 1 }]);
    deepEqual((await s.steps("r1")).map((r) => r.step), ["a", "c"]);
    deepEqual(await s.steps("unknown"), []);
  });

  test("saveProgress() keeps the latest sample per step, when saved again", async (s) => {
    await s.createRun(newRun("r1"));
    await s.createRun(newRun("r2"));
    const a = {
      step: "fetch-a",
      bytes: 10,
      total: 100,
      prefetched: 0,
      demanded: false,
      source: 0,
      at: 1,
    };
    const b = {
      step: "fetch-b",
      bytes: 5,
      total: null,
      prefetched: 0,
      demanded: false,
      source: 1,
      at: 1,
    };
    await s.saveProgress("r1", [a, b]);
    await s.saveProgress("r2", [{ ...a, bytes: 99 }]);
    const a2 = { ...a, bytes: 60, prefetched: 10, demanded: true, at: 2 };
    await s.saveProgress("r1", [a2]);
    await s.saveProgress("r1", []);
    const got = (await s.progress("r1")).sort((x, y) => x.step.localeCompare(y.step));
    deepEqual(got, [a2, b]);
    deepEqual(await s.progress("r2"), [{ ...a, bytes: 99 }]);
    deepEqual(await s.progress("unknown"), []);
  });

  test("takeCommands() returns each command once, oldest first", async (s) => {
    await s.createRun(newRun("r1"));
    await s.createRun(newRun("r2"));
    deepEqual(await s.takeCommands("r1"), []);
    const before = Date.now();
    const id1 = await s.addCommand("r1", "approve", "dns-cutover");
    const other = await s.addCommand("r2", "cancel");
    const id2 = await s.addCommand("r1", "cancel");
    const after = Date.now();
    ok(id1 < other && other < id2, `ids increase: ${id1}, ${other}, ${id2}`);
    const taken = await s.takeCommands("r1");
    deepEqual(taken.map(({ at: _, ...c }) => c), [
      { id: id1, run: "r1", kind: "approve", step: "dns-cutover" },
      { id: id2, run: "r1", kind: "cancel", step: null },
    ]);
    for (const c of taken) ok(c.at >= before && c.at <= after, `at ${c.at} is when it was added`);
    deepEqual(await s.takeCommands("r1"), []);
    const id3 = await s.addCommand("r1", "approve", "start-vod");
    deepEqual((await s.takeCommands("r1")).map((c) => [c.id, c.step]), [[id3, "start-vod"]]);
    deepEqual((await s.takeCommands("r2")).map((c) => [c.id, c.kind]), [[other, "cancel"]]);
  });

  test("addCommand() throws, when the run is unknown", async (s) => {
    await rejects(s.addCommand("nope", "cancel"), /nope/);
  });

  test("addProcess() replaces the step's process, when added again", async (s) => {
    await s.createRun(newRun("r1"));
    await s.createRun(newRun("r2"));
    await s.addProcess("r1", { step: "start-vod", pid: 100, pgid: 100 });
    await s.addProcess("r1", { step: "restore-db", pid: 200, pgid: 199 });
    await s.addProcess("r2", { step: "start-vod", pid: 300, pgid: 300 });
    await s.addProcess("r1", { step: "start-vod", pid: 101, pgid: 101 });
    const sorted = async (run: string) =>
      (await s.processes(run)).sort((x, y) => x.step.localeCompare(y.step));
    deepEqual(await sorted("r1"), [
      { step: "restore-db", pid: 200, pgid: 199 },
      { step: "start-vod", pid: 101, pgid: 101 },
    ]);
    await s.removeProcess("r1", "start-vod");
    await s.removeProcess("r1", "never-started");
    deepEqual(await s.processes("r1"), [{ step: "restore-db", pid: 200, pgid: 199 }]);
    deepEqual(await s.processes("r2"), [{ step: "start-vod", pid: 300, pgid: 300 }]);
  });

  test("history() gives done steps of done runs newest first, at most limit per step", async (s) => {
    const t0 = 1_700_000_000_000;
    const runs = [["r1", t0], ["r2", t0 + 1e6], ["r3", t0 + 2e6]] as const;
    for (const [id, startedAt] of runs) {
      await s.createRun(newRun(id, { startedAt, steps: ["fetch", "build", "dns"] }));
      await s.recordSteps(id, [
        { step: "fetch", state: "running", at: 0 },
        { step: "fetch", state: "done", at: 40 },
        { step: "build", state: "running", at: 40 },
        { step: "build", state: id === "r2" ? "failed" : "done", at: 45 },
        { step: "dns", state: id === "r3" ? "running" : "skipped", at: 45 },
      ]);
      await s.saveProgress(id, [
        {
          step: "fetch",
          bytes: 1000,
          total: 1000,
          prefetched: 0,
          demanded: false,
          source: 0,
          at: 1,
          ...(id === "r1" ? { moving: 25 } : {}),
        },
      ]);
      await s.updateRun(id, { state: "done" });
    }
    // Runs that did not end done teach nothing: failed, cancelled, or still running (or hung).
    for (const [id, state] of [["x1", "failed"], ["x2", "cancelled"], ["x3", "running"]] as const) {
      await s.createRun(newRun(id, { startedAt: t0 + 4e6, steps: ["fetch"] }));
      await s.recordSteps(id, [
        { step: "fetch", state: "running", at: 0 },
        { step: "fetch", state: "done", at: 240 },
      ]);
      await s.updateRun(id, { state });
    }
    await s.createRun(newRun("other", { runbook: "billing", startedAt: t0 + 3e6 }));
    await s.recordSteps("other", [
      { step: "fetch", state: "running", at: 0 },
      { step: "fetch", state: "done", at: 1 },
    ]);
    await s.updateRun("other", { state: "done" });
    const all = await s.history("vod");
    const started = new Map<string, number>(runs);
    const order = all.map((h) => started.get(h.run)!);
    deepEqual(order, [...order].sort((x, y) => y - x), "newest run first");
    const key = (h: { run: string; step: string }) => `${h.run}/${h.step}`;
    const byKey = (xs: typeof all) => [...xs].sort((x, y) => key(x).localeCompare(key(y)));
    const sample = (run: string, step: string, seconds: number, bytes: number, end: number) => ({
      run,
      step,
      seconds,
      bytes,
      endedAt: started.get(run)! + end * 1000,
    });
    deepEqual(byKey(all), [
      sample("r1", "build", 5, 0, 45),
      { ...sample("r1", "fetch", 40, 1000, 40), moving: 25 },
      sample("r2", "fetch", 40, 1000, 40),
      sample("r3", "build", 5, 0, 45),
      sample("r3", "fetch", 40, 1000, 40),
    ]);
    const two = await s.history("vod", 2);
    deepEqual(two.map(key).sort(), ["r1/build", "r2/fetch", "r3/build", "r3/fetch"]);
    deepEqual((await s.history("vod", 1)).map(key).sort(), ["r3/build", "r3/fetch"]);
    deepEqual((await s.history("billing")).map(key), ["other/fetch"]);
    deepEqual(await s.history("unknown"), []);
  });
}
