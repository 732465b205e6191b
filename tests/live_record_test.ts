/**
 * What the live engine itself records with a run, whoever calls it: the runbook's text as run
 * (so the API and `thaw status` need only the store), the report's `prediction` (the simulation
 * before the run, a serial restore with what it measured), and a wait for a person as the
 * scheduler decides it (the slot lent, `thaw done` through the store).
 *
 * @module
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { runLive } from "../engine/live/loop.ts";
import { readRunbook } from "../engine/runbook/load.ts";
import type { Report } from "../engine/schedule/report.ts";
import { DONE_BY_HAND } from "../engine/schedule/waits.ts";
import { openStore } from "../engine/store/mod.ts";

const RUNBOOK = `runbook: 1
name: record
steps:
  - { id: a, run: "true", shell: sh, estimate: 1s }
  - { id: b, needs: [a], run: "true", shell: sh, estimate: 2s, milestone: up }
`;

Deno.test("runLive() stores the runbook text and its report's prediction, when called directly", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "rb.yaml"), RUNBOOK);
    const rb = await readRunbook("rb.yaml", { cwd: dir });
    const store = await openStore(join(dir, "state.db"));
    try {
      const { report } = await runLive({ runbook: rb, store, run: "R1", fileSha256: "x" });
      equal(report.outcome, "met");
      // Simulated before the run from the estimates: a 1 s, then b 2 s.
      deepEqual(report.prediction?.simulated, { ttr_s: 3, btn_s: 3 });
      // A serial restore with what the run measured: two quick steps, one after the other.
      const serial = report.prediction?.serial;
      ok(serial && serial.ttr_s !== null && serial.ttr_s < 3, JSON.stringify(serial));
      const stored = await store.getRun("R1");
      equal(stored?.runbookText, RUNBOOK);
      const saved = JSON.parse(stored!.report!) as Report;
      deepEqual(saved.prediction, report.prediction, "the stored report carries it too");
    } finally {
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runLive() lends a waiting step's slot and marks it done by hand, when a person says so", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // `gate` would fail if it ran: done by hand, it never does.
    await Deno.writeTextFile(
      join(dir, "rb.yaml"),
      `runbook: 1
name: gate
parallelism: 1
steps:
  - { id: gate, run: "exit 1", shell: sh, estimate: 9s, approval: Cut over? }
  - { id: other, run: "true", shell: sh, estimate: 1s }
  - { id: after, needs: [gate], run: "true", shell: sh, estimate: 1s, milestone: up }
`,
    );
    const rb = await readRunbook("rb.yaml", { cwd: dir });
    const store = await openStore(join(dir, "state.db"));
    let cleanup = async () => {};
    try {
      const ac = new AbortController(); // a failed assert below must not leave the run waiting
      const running = runLive({
        runbook: rb,
        store,
        run: "R1",
        fileSha256: "x",
        signal: ac.signal,
      });
      cleanup = async () => {
        ac.abort();
        await running.catch(() => {});
      };
      let waited = false;
      for (let k = 0; k < 200 && !waited; k++) {
        await new Promise((r) => setTimeout(r, 25));
        const steps = await store.steps("R1").catch(() => []);
        const other = steps.find((s) => s.step === "other");
        const gate = steps.find((s) => s.step === "gate");
        // `other` ran in the slot `gate` lent while it waits.
        waited = other?.state === "done" &&
          /^waiting for approval: Cut over\?/.test(gate?.detail ?? "");
      }
      ok(waited, "gate never waited with other done");
      await store.addCommand("R1", "done", "gate");
      const { report } = await running;
      equal(report.outcome, "met");
      const gate = report.steps.find((s) => s.id === "gate")!;
      deepEqual([gate.state, gate.detail], ["done", DONE_BY_HAND]);
      equal(report.steps.find((s) => s.id === "after")?.state, "done");
    } finally {
      await cleanup();
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
