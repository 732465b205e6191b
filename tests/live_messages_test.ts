/**
 * What a person sees of a live run: the first line only for a run that starts, one word for a
 * drill-skipped step in every view, a running step's elapsed time and ETA in the live table.
 *
 * @module
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { createApp } from "../engine/api/app.ts";
import { parseRunbook } from "../engine/runbook/load.ts";
import { LiveRun, renderChanges, renderLiveTable, timing } from "../engine/cli/live_view.ts";
import type { Report } from "../engine/schedule/report.ts";
import { openStore } from "../engine/store/mod.ts";
import { collectEvents } from "./sse.ts";
import { thawCommand } from "./paths.ts";

async function thaw(args: string[], cwd: string) {
  const out = await thawCommand(args, { cwd, env: { INIT_CWD: cwd } }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test("thaw run says nothing of a run and leaves no log directory, when the runbook is refused before it starts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-h8-" });
  try {
    await Deno.writeTextFile(
      join(dir, "rb.yaml"),
      "runbook: 1\nname: refused\nsteps:\n" +
        '  - { id: a, run: "echo ${{ env.THAW_TEST_NEVER_SET }}", estimate: 1s }\n',
    );
    const r = await thaw(["run", "rb.yaml", "--store", "state.db"], dir);
    equal(r.code, 2, r.stderr);
    match(r.stderr, /env\.THAW_TEST_NEVER_SET is not set/);
    ok(!/starting run|logs in/.test(r.stdout + r.stderr), `said a run started:\n${r.stdout}`);
    equal(await exists(join(dir, "logs")), false, "a log directory for a run that never was");
    const status = await thaw(["status", "--json", "--store", "state.db"], dir);
    deepEqual(JSON.parse(status.stdout), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const SKIPPING = `runbook: 1
name: skipping
drill: { skip: [cutover] }
steps:
  - { id: prepare, run: "true", estimate: 1s }
  - { id: cutover, needs: [prepare], run: "exit 1", estimate: 300ms, milestone: up }
  - { id: after, needs: [cutover], run: "true", estimate: 1s }
`;

Deno.test("thaw run says in its JSON and JUnit reports why a step failed, when one does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-why-" });
  try {
    await Deno.writeTextFile(
      join(dir, "rb.yaml"),
      "runbook: 1\nname: why\nsteps:\n" +
        '  - { id: a, run: "echo no disk at /dev/vdz >&2; exit 4", retries: 0 }\n' +
        '  - { id: b, needs: [a], run: "true" }\n',
    );
    const r = await thaw(
      ["run", "rb.yaml", "--json", "--store", "state.db", "--report", "r.xml"],
      dir,
    );
    equal(r.code, 1, r.stderr);
    const steps = (JSON.parse(r.stdout) as Report).steps;
    equal(steps[0]?.state, "failed");
    equal(steps[0]?.detail, "exit code 4: no disk at /dev/vdz");
    equal(steps[1]?.detail, undefined, "a step that never ran has no reason of its own");
    match(
      await Deno.readTextFile(join(dir, "r.xml")),
      /failed: exit code 4: no disk at \/dev\/vdz/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a live drill shows a drill-skipped step as skipped in its lines, report and events, when it stands in for its estimate", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-h8-" });
  try {
    await Deno.writeTextFile(join(dir, "rb.yaml"), SKIPPING);
    // --json: the report on stdout, the plain lines on stderr.
    const r = await thaw(["drill", "rb.yaml", "--json", "--store", "state.db"], dir);
    equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    const states = Object.fromEntries(report.steps.map((s) => [s.id, s.state]));
    deepEqual(states, { prepare: "done", cutover: "skipped", after: "done" });
    const lines = r.stderr.split("\n").filter((l) => /^\s*\S+s\s+cutover /.test(l));
    equal(lines.length, 1, r.stderr);
    match(lines[0]!, /cutover skipped: not run in a drill \(drill\.skip\)/);

    const store = await openStore(join(dir, "state.db"));
    try {
      const app = createApp({ store, events: { pollMs: 10 } });
      const res = await app.request(`/runs/${report.run}/events`);
      const events = await collectEvents(res.body!, (e) => e.event === "end");
      const cutover = events.filter((e) => e.event === "step").map((e) => JSON.parse(e.data))
        .filter((e) => e.step === "cutover").map((e) => e.state);
      ok(cutover.length > 0);
      deepEqual([...new Set(cutover)], ["skipped"]);
      ok(
        events.some((e) => e.event === "milestone"),
        "the skipped step still reaches its milestone",
      );
    } finally {
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function liveOf(text: string): LiveRun {
  return new LiveRun(parseRunbook(text, "x.yaml"), "R1", "aggressive", Date.now());
}

Deno.test("renderLiveTable() shows a drill-skipped step as skipped, when it stands in for its estimate", () => {
  const drill = new LiveRun(
    parseRunbook(SKIPPING, "x.yaml", { drill: true }),
    "R1",
    "aggressive",
    Date.now(),
  );
  const s = drill.steps.find((x) => x.id === "cutover")!;
  ok(s.skip);
  s.state = "running";
  s.since = 0;
  drill.elapsed = 0.1;
  const row = () => renderLiveTable(drill).split("\n").find((l) => l.includes("cutover"))!;
  match(row(), /cutover\s+run\s+skipped\b/);
  ok(!/running|done/.test(row()), row());
  s.state = "done";
  match(row(), /cutover\s+run\s+skipped\b/);
  equal(renderChanges(drill, [{ step: "cutover", state: "done", at: 1 }]), "");
});

const TIMED = `runbook: 1
name: timed
bandwidth: 1MB/s
steps:
  - { id: restore, run: "true", estimate: 30s }
  - { id: guess, run: "true" }
  - { id: pull, fetch: { from: /b/x, to: ./x, size: 10MB } }
  - { id: gate, run: "true", estimate: 5s, approval: go }
`;

Deno.test("renderLiveTable() shows a running step's elapsed time and ETA against its estimate, when it runs", () => {
  const live = liveOf(TIMED);
  const [restore, guess, pull, gate] = live.steps as [
    typeof live.steps[0],
    typeof live.steps[0],
    typeof live.steps[0],
    typeof live.steps[0],
  ];
  for (const s of live.steps) {
    s.state = "running";
    s.since = 2;
  }
  live.elapsed = 14;
  pull.bytes = 4e6;
  pull.total = 10e6;
  pull.rate = 1e6;
  gate.detail = "waiting for approval: go (thaw approve R1 gate)";
  deepEqual(timing(live, restore), ["12s", "18s"]);
  deepEqual(timing(live, guess), ["12s", "-"], "no estimate, no history: no ETA");
  deepEqual(timing(live, pull), ["12s", "6s"], "6MB left at 1MB/s");
  deepEqual(timing(live, gate), ["12s", "-"], "waiting for a person: no ETA");
  const table = renderLiveTable(live).split("\n");
  match(table[1]!, /STEP\s+KIND\s+STATE\s+ELAPSED\s+ETA/);
  match(table.find((l) => l.includes("restore"))!, /restore\s+run\s+running\s+12s\s+18s/);
  live.elapsed = 47;
  match(renderLiveTable(live), /restore\s+run\s+running\s+45s\s+15s over/);
  // History gives the estimate of a step that has none.
  const learned = new LiveRun(parseRunbook(TIMED, "x.yaml"), "R1", "aggressive", Date.now(), {
    duration: new Map([["guess", 20]]),
  });
  learned.steps[1]!.state = "running";
  learned.steps[1]!.since = 0;
  learned.elapsed = 5;
  deepEqual(timing(learned, learned.steps[1]!), ["5s", "15s"]);
  ok(!/NaN|Infinity/.test(renderLiveTable(learned)));
});
