/**
 * Waits for a person as scheduler state (`engine/schedule/approvals.ts`): an `approval` gate and
 * a step interrupted by its engine's death hold a step once it is reached, lend its run slot,
 * and end with `approve` or `doneByHand`. Driven without processes, on a fake clock, and checked
 * against the simulator, which models an approval's wait the same way.
 *
 * @module
 */
import { deepEqual, equal } from "node:assert/strict";
import { analyse, buildGraph, type Graph } from "../engine/plan/graph.ts";
import { IndexedHeap } from "../engine/plan/heap.ts";
import { parseRunbook } from "../engine/runbook/load.ts";
import { type Decision, Scheduler } from "../engine/schedule/scheduler.ts";
import { simulate } from "../engine/simulate/simulate.ts";

const GATED = `runbook: 1
name: gates
parallelism: 1
steps:
  - { id: gate, run: "true", estimate: 6s, approval: "Switch traffic?" }
  - { id: other, run: "true", estimate: 5s }
  - { id: after, needs: [gate, other], run: "true", estimate: 1s, milestone: up }
`;

function schedulerOf(text: string): { g: Graph; s: Scheduler } {
  const g = buildGraph(parseRunbook(text, "x.yaml"));
  const rank = analyse(g).rank;
  return { g, s: new Scheduler(g, { strategy: "aggressive", parallelism: 1, rank }) };
}

const names = (g: Graph, ds: Decision[]) =>
  ds.filter((d) => d.type === "start" || d.type === "wait").map((d) =>
    `${d.type} ${g.ids[d.step]}`
  );

Deno.test("Scheduler holds a gated step and lends its run slot, when parallelism is 1", () => {
  const { g, s } = schedulerOf(GATED);
  const gate = g.ids.indexOf("gate"), other = g.ids.indexOf("other");
  deepEqual(names(g, s.decide()), ["wait gate", "start other"]);
  equal(s.state(gate), "running", "a waiting step shows as running");
  equal(s.waiting(gate), "approval");
  equal(s.approve(gate), true);
  equal(s.waiting(gate), undefined);
  deepEqual(names(g, s.decide()), ["start gate"], "approved: it runs, one over parallelism");
  s.complete(gate);
  s.complete(other);
  deepEqual(names(g, s.decide()), ["start after"], "the slots are counted back right");
  s.complete(g.ids.indexOf("after"));
  equal(s.finished, true);
});

Deno.test("Scheduler.approve() counts when the step is reached, when given before", () => {
  const { g, s } = schedulerOf(GATED);
  equal(s.approve(g.ids.indexOf("gate")), false, "nothing waited yet");
  deepEqual(names(g, s.decide()), ["start gate"]);
});

Deno.test("Scheduler.doneByHand() completes a waiting step only, when a person did its work", () => {
  const { g, s } = schedulerOf(GATED);
  const gate = g.ids.indexOf("gate"), other = g.ids.indexOf("other");
  equal(s.doneByHand(other), false, "not reached");
  s.decide();
  equal(s.doneByHand(other), false, "running, not waiting: refused");
  equal(s.doneByHand(gate), true);
  equal(s.state(gate), "done");
  s.complete(other);
  deepEqual(names(g, s.decide()), ["start after"], "its dependents start");
});

Deno.test("Scheduler.interrupted() holds a resumed step; approve() runs it and passes its gate", () => {
  const { g, s } = schedulerOf(GATED);
  const gate = g.ids.indexOf("gate");
  s.interrupted(gate);
  s.decide();
  equal(s.waiting(gate), "interrupted");
  equal(s.approve(gate), true);
  deepEqual(names(g, s.decide()), ["start gate"], "not held again by its approval gate");
});

Deno.test("Scheduler.cancel() cancels a waiting step, when the run is cancelled", () => {
  const { g, s } = schedulerOf(GATED);
  s.decide();
  s.cancel();
  const ds = s.decide();
  deepEqual(ds.filter((d) => d.type === "cancel").map((d) => g.ids[d.step]).sort(), [
    "after",
    "gate",
    "other",
  ]);
  equal(s.waiting(g.ids.indexOf("gate")), undefined);
  equal(s.finished, true);
});

/**
 * Drives a scheduler as the live engine does, on a fake clock: each started run step ends after
 * its estimate; a person approves each waiting step `approveAfter` seconds after it is reached.
 * Returns each step's start and end.
 */
function driveOnFakeClock(
  g: Graph,
  s: Scheduler,
  approveAfter: number,
): { start: Record<string, number>; end: Record<string, number> } {
  const start = new Map<string, number>(), end = new Map<string, number>();
  const timers = new IndexedHeap(g.n); // the fake clock's timers, one per step
  const approving = new Set<number>();
  let now = 0;
  const apply = (ds: Decision[]) => {
    for (const d of ds) {
      const id = g.ids[d.step]!;
      if (d.type === "wait") {
        if (!start.has(id)) start.set(id, now);
        approving.add(d.step);
        timers.push(d.step, now + approveAfter);
      } else if (d.type === "start") {
        if (!start.has(id)) start.set(id, now);
        timers.push(d.step, now + g.duration[d.step]!);
      }
    }
  };
  apply(s.decide());
  for (let turns = 0; timers.size > 0 && turns < 100; turns++) {
    now = timers.peekKey();
    const i = timers.pop();
    if (approving.delete(i)) s.approve(i);
    else {
      s.complete(i);
      end.set(g.ids[i]!, now);
    }
    apply(s.decide());
  }
  equal(s.finished, true);
  return { start: Object.fromEntries(start), end: Object.fromEntries(end) };
}

Deno.test("an approval 7 s after the gate is reached times the run alike, on a fake clock and in simulation", () => {
  const { g, s } = schedulerOf(GATED);
  const fake = driveOnFakeClock(g, s, 7);
  const { start, end } = fake;
  // The gate (first by rank) waits from 0 to 7 while `other` runs in its slot; it runs 7..13.
  deepEqual(fake, {
    start: { gate: 0, other: 0, after: 13 },
    end: { other: 5, gate: 13, after: 14 },
  });
  const rb = parseRunbook(GATED, "x.yaml");
  const report = simulate(rb, { approvalWait: 7 });
  equal(report.ttr_s, 14);
  for (const step of report.steps) {
    deepEqual([step.start_s, step.end_s], [start[step.id], end[step.id]], step.id);
  }
  // By default approvals are given beforehand: the gate holds its slot 0..6 (runbooks/FORMAT.md).
  equal(simulate(rb).ttr_s, 12);
});

Deno.test("simulate() keeps a gated fetch's share while it waits, when approvalWait is set", () => {
  const rb = parseRunbook(
    `runbook: 1
name: x
bandwidth: 100MB/s
steps:
  - { id: f, fetch: { from: /b/f, to: ./f, size: 200MB }, approval: "Fetch now?" }
  - { id: g, fetch: { from: /b/g, to: ./g, size: 100MB } }
  - { id: s, needs: [f], run: "true", estimate: 1s, milestone: up }
`,
    "x.yaml",
  );
  const r = simulate(rb, { approvalWait: 3 });
  const f = r.steps.find((x) => x.id === "f")!;
  deepEqual([f.start_s, f.end_s], [0, 5], "waits 3 s, then 200MB at the whole link");
  equal(r.ttr_s, 6);
  equal(simulate(rb).ttr_s, 3, "approved beforehand: 200MB first, then s");
});
