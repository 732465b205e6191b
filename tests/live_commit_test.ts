// The live engine's one commit per turn: a step starts only once the steps it needs are `done`
// in the store, and the processes it starts are recorded and forgotten with those commits.
import assert from "node:assert/strict";
import { join } from "node:path";
import { runLive } from "../engine/live/loop.ts";
import { readRunbook } from "../engine/runbook/load.ts";
import { openStore } from "../engine/store/mod.ts";
import type { ProcessChanges, StepChange, Store } from "../engine/store/types.ts";

/** Runs `text` live with a store that logs its commits; returns the log and what is left. */
async function run(text: string) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "rb.yaml"), text);
    const rb = await readRunbook("rb.yaml", { cwd: dir });
    const inner = await openStore(join(dir, "state.db"));
    const log: string[] = [];
    const recordSteps = async (r: string, c: readonly StepChange[], p?: ProcessChanges) => {
      await inner.recordSteps(r, c, p);
      log.push(...c.map((x) => `${x.state} ${x.step}`));
      log.push(...(p?.add ?? []).map((x) => `recorded ${x.step}`));
    };
    const store = new Proxy(inner, {
      get: (t, k) => {
        if (k === "recordSteps") return recordSteps;
        const v = Reflect.get(t, k);
        return typeof v === "function" ? v.bind(t) : v;
      },
    }) as Store;
    try {
      const { report } = await runLive({
        runbook: rb,
        store,
        run: "R1",
        fileSha256: "x",
        output: (step) => {
          log.push(`spawn ${step}`);
          return undefined;
        },
      });
      return { report, log, left: await inner.processes("R1"), steps: await inner.steps("R1") };
    } finally {
      await inner.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("runLive() starts a step only after what it needs is committed done, when steps chain", async () => {
  const { report, log, steps } = await run(`runbook: 1
name: chain
parallelism: 2
steps:
  - { id: a, run: "true", shell: sh }
  - { id: b, run: "true", shell: sh }
  - { id: c, needs: [a, b], run: "true", shell: sh, milestone: up }
  - { id: d, needs: [c], run: "true", shell: sh }
`);
  assert.equal(report.outcome, "met");
  assert.deepEqual(steps.map((s) => s.state), ["done", "done", "done", "done"]);
  const at = (entry: string) => {
    const i = log.indexOf(entry);
    assert(i >= 0, `${entry} not in ${log.join(", ")}`);
    return i;
  };
  for (const [step, needs] of [["c", ["a", "b"]], ["d", ["c"]]] as const) {
    for (const need of needs) {
      assert(at(`done ${need}`) < at(`spawn ${step}`), `${step} spawned before ${need} was done`);
    }
    // Its `running` is committed before it runs, too.
    assert(at(`running ${step}`) < at(`spawn ${step}`));
  }
});

Deno.test("runLive() records a long step's process and forgets it at its end, when it runs", async () => {
  const { report, log, left } = await run(`runbook: 1
name: long
steps:
  - { id: quick, run: "true", shell: sh }
  - { id: slow, needs: [quick], run: "sleep 0.5", shell: sh, milestone: up }
`);
  assert.equal(report.outcome, "met");
  assert(log.includes("recorded slow"), log.join(", "));
  assert(log.indexOf("recorded slow") < log.indexOf("done slow"));
  assert.deepEqual(left, []);
});

Deno.test("store.recordSteps() records and forgets processes in the same commit, when given them", async () => {
  const store = await openStore(":memory:");
  try {
    await store.createRun({
      id: "r1",
      runbook: "rb",
      file: "/rb/rb.yaml",
      fileSha256: "00",
      mode: "live",
      drill: false,
      strategy: "aggressive",
      vars: {},
      steps: ["a", "b"],
      startedAt: 0,
      pid: 1,
      host: "h",
    });
    await store.recordSteps("r1", [{ step: "a", state: "running", at: 0 }], {
      add: [{ step: "a", pid: 10, pgid: 10 }, { step: "b", pid: 11, pgid: 11 }],
      remove: [],
    });
    assert.deepEqual((await store.processes("r1")).map((p) => p.step), ["a", "b"]);
    await store.recordSteps("r1", [], { add: [{ step: "a", pid: 12, pgid: 12 }], remove: ["b"] });
    const left = await store.processes("r1");
    assert.deepEqual(left.map((p) => [p.step, p.pid]), [["a", 12]]);
    assert.equal((await store.steps("r1"))[0]?.state, "running");
  } finally {
    await store.close();
  }
});
