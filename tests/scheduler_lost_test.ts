/** Scheduler.lost(): a done step whose background service exited fails after all. */
import { deepEqual, equal } from "node:assert/strict";
import { analyse, buildGraph, parseRunbook, Scheduler } from "../mod.ts";

function scheduler(text: string): { s: Scheduler; at: (id: string) => number } {
  const g = buildGraph(parseRunbook(text, "t.yaml"));
  const s = new Scheduler(g, { strategy: "aggressive", parallelism: 8, rank: analyse(g).rank });
  return { s, at: (id) => g.ids.indexOf(id) };
}

const RUNBOOK = (onFailure: string) =>
  `runbook: 1
name: lost
steps:
  - { id: svc, run: "true", estimate: 1s, on-failure: ${onFailure} }
  - { id: use, needs: [svc], run: "true", estimate: 1s }
  - { id: later, needs: [use], run: "true", estimate: 1s }
  - { id: slow, run: "true", estimate: 5s }
  - { id: after-slow, needs: [slow], run: "true", estimate: 1s }
`;

Deno.test("Scheduler.lost() fails a done step and skips what waits on it, when it aborts", () => {
  const { s, at } = scheduler(RUNBOOK("abort"));
  s.decide(); // starts svc and slow
  s.complete(at("svc"));
  deepEqual(s.decide(), [{ type: "start", step: at("use") }]);
  s.complete(at("use"));
  s.decide(); // starts later
  s.lost(at("svc"));
  equal(s.state(at("svc")), "failed");
  // Running steps finish; nothing new starts: after-slow is skipped with the run.
  equal(s.state(at("later")), "running");
  equal(s.state(at("use")), "done");
  equal(s.state(at("after-slow")), "skipped");
  deepEqual(s.decide(), [{ type: "skip", step: at("after-slow") }]);
  s.complete(at("later"));
  s.complete(at("slow"));
  equal(s.finished, true);
});

Deno.test("Scheduler.lost() skips only the steps that need it, when it isolates", () => {
  const { s, at } = scheduler(RUNBOOK("isolate"));
  s.decide();
  s.complete(at("svc"));
  s.lost(at("svc"));
  equal(s.state(at("svc")), "failed");
  equal(s.state(at("use")), "skipped");
  equal(s.state(at("later")), "skipped");
  s.complete(at("slow"));
  deepEqual(s.decide(), [
    { type: "skip", step: at("use") },
    { type: "skip", step: at("later") },
    { type: "start", step: at("after-slow") },
  ]);
  s.complete(at("after-slow"));
  equal(s.finished, true);
});

Deno.test("Scheduler.lost() changes nothing, when the step is not done", () => {
  const { s, at } = scheduler(RUNBOOK("abort"));
  s.decide();
  s.lost(at("svc")); // running, not done
  equal(s.state(at("svc")), "running");
  s.fail(at("svc"));
  s.lost(at("svc"));
  equal(s.state(at("svc")), "failed");
  equal(s.state(at("use")), "skipped");
});
