/**
 * Notifications from a real live run, wired to the engine directly (`onChange` for step changes
 * and the objectives, the report at the end), to a real receiver on 127.0.0.1 that approves the
 * waiting step when it is told, as a chat-ops bot would. `notify_cli_test.ts` does the same
 * through the `thaw` command.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runLive } from "../engine/live/loop.ts";
import {
  Notifier,
  type Payload,
  predictObjectives,
  resolveWebhooks,
  WebhookSender,
} from "../engine/notify/mod.ts";
import { readRunbook } from "../engine/runbook/load.ts";
import type { Report } from "../engine/schedule/report.ts";
import { openStore } from "../engine/store/mod.ts";

// Added to each runbook below.
const NOTIFY = "notify:\n  - url: ${{ env.HOOK }}/${{ run.id }}\n    timeout: 2s\n";

const NOTHING = { ttr_s: null, btn_s: null, milestones: {} };

/**
 * Drills `text` for real with its webhooks posting to a receiver on 127.0.0.1 (which approves a
 * step it is told waits); returns what the receiver got, the report and the sender's log lines.
 */
async function drill(text: string): Promise<{ got: Payload[]; report: Report; lines: string[] }> {
  const dir = await Deno.makeTempDir();
  const got: Payload[] = [];
  let approve: (step: string) => Promise<unknown> = () => Promise.resolve();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const p = await req.json() as Payload;
    got.push(p);
    if (p.event === "approval" && p.step) await approve(p.step);
    return new Response("ok");
  });
  try {
    await Deno.writeTextFile(join(dir, "alerts.yaml"), text + NOTIFY);
    const runbook = await readRunbook("alerts.yaml", { cwd: dir, drill: true });
    const hook = `http://127.0.0.1:${server.addr.port}/hooks`;
    const resolved = resolveWebhooks(
      runbook,
      runbook.notify,
      (ref) => ref.ns === "env" ? hook : "R1",
    );
    const lines: string[] = [];
    const sender = new WebhookSender(resolved, { log: (l) => lines.push(l) });
    const store = await openStore(join(dir, "state.db"));
    approve = (step) => store.addCommand("R1", "approve", step);
    const o = runbook.objectives;
    const notifier = new Notifier({
      run: "R1",
      runbook: runbook.name,
      drill: runbook.drill,
      startedAt: Date.now(),
      steps: runbook.steps,
      objectives: { rto_s: o.rto, btn_s: o.btn, milestones: { ...o.milestones } },
    }, sender);
    try {
      const { report, live } = await runLive({
        runbook,
        store,
        run: "R1",
        fileSha256: "x",
        onChange: (live, changes) => {
          notifier.steps(changes);
          const now = live.report; // saved once a second: absent on the first turns
          const predicted = now && predictObjectives(runbook, now, live.elapsed);
          notifier.standing(live.elapsed, now ?? NOTHING, predicted);
        },
      });
      notifier.end(report, live.elapsed);
      assert.equal(await sender.flush(5000), true);
      return { got, report, lines };
    } finally {
      await sender.close();
      await store.close();
    }
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("Notifier tells a receiver what happens in a live drill, each thing once", async () => {
  const { got, report, lines } = await drill(`runbook: 1
name: alerts
objectives:
  rto: 100ms
steps:
  - { id: db, run: "sleep 0.4", shell: sh, estimate: 1s, milestone: service }
  - { id: broken, run: "echo disk full >&2; exit 3", shell: sh, estimate: 1s, on-failure: isolate }
  - id: cutover
    needs: [db]
    run: "true"
    shell: sh
    estimate: 1s
    approval: Send traffic to the DR site
`);
  assert.equal(report.outcome, "failed");
  assert.deepEqual(lines, []);
  // Each thing once; the objective may be predicted to be missed first if a turn comes before
  // its 100 ms limit passes.
  const events = got.map((p) => p.event === "objective" ? `objective ${p.status}` : p.event);
  const objective = events.filter((e) => e.startsWith("objective"));
  assert(
    ["objective predicted,objective missed", "objective missed"].includes(objective.join()),
    events.join(),
  );
  assert.deepEqual(events.filter((e) => !e.startsWith("objective")).sort(), [
    "approval",
    "end",
    "milestone",
    "step-failed",
  ]);
  assert.equal(events.at(-1), "end");
  const by = (e: string) => got.findLast((p) => p.event === e)!;
  assert.match(by("step-failed").text, /^\[drill\] alerts: step broken failed at .+disk full/);
  assert.match(
    by("objective").text,
    /^\[drill\] alerts: TTR missed its objective: not reached after 0\.1s\. Run R1, /,
  );
  assert.match(by("milestone").text, /^\[drill\] alerts: milestone service reached at [\d.]+s/);
  assert.match(by("approval").text, /waiting for approval: Send traffic to the DR site \(thaw/);
  assert.match(by("end").text, /^\[drill\] alerts: ended failed \(failed: broken\): TTR [\d.]+s/);
  assert(got.every((p) => p.drill && p.run === "R1" && p.runbook === "alerts"));
});

Deno.test("Notifier tells a predicted miss, then back on track, when a step beats its estimate", async () => {
  // The estimate says 5 s against a 2 s BTN objective; the step takes 1 s.
  const { got, report, lines } = await drill(`runbook: 1
name: alerts
objectives:
  btn: 2s
steps:
  - { id: slow, run: "sleep 1", shell: sh, estimate: 5s }
`);
  assert.equal(report.outcome, "met");
  assert.deepEqual(lines, []);
  assert.deepEqual(got.map((p) => [p.event, p.status]), [
    ["objective", "predicted"],
    ["objective", "on-track"],
    ["end", undefined],
  ]);
  assert.match(
    got[0]!.text,
    /^\[drill\] alerts: BTN predicted to miss its objective: predicted at 5/,
  );
  assert.equal(got[0]!.value_s! >= 5, true);
  assert.match(
    got[1]!.text,
    /^\[drill\] alerts: BTN back on track: reached at [\d.]+s, objective 2s/,
  );
  assert.match(
    got[2]!.text,
    /^\[drill\] alerts: ended met: TTR [\d.]+s, BTN [\d.]+s \(objective 2s\)/,
  );
});
