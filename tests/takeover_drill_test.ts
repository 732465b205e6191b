/**
 * A drill taken over by a standby on another machine stops, at its end, only the services it can
 * reach: the process numbers engine-a recorded for its local services name processes on engine-a's
 * machine, and on the standby's they would be other processes. Played with the rig of
 * `takeover_rig.ts` (two UTS namespaces, and network namespaces where the rig can make them,
 * sharing one PID namespace, so the standby *could* reach engine-a's service and must choose not
 * to) on a throwaway PostgreSQL cluster.
 *
 * @module
 */
import { equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { noPostgres, sharedCluster, stopSharedCluster } from "./pg_cluster.ts";
import {
  alive,
  look,
  machine,
  MACHINE_NET,
  noUnshare,
  poll,
  tookOverAt,
  workDir,
} from "./takeover_rig.ts";

const why = noPostgres ?? noUnshare;
if (why) console.warn(`takeover_drill_test: ignored: ${why}`);

const RUNBOOK = `runbook: 1
name: takeover-drill
steps:
  - id: svc
    run: 'echo $$ > svc.pid; exec sleep 600'
    background: true
    ready: { run: "test -s svc.pid" }
  - { id: hold, needs: [svc], idempotent: true, run: "until [ -e go ]; do sleep 0.1; done" }
`;

Deno.test({
  name: "thaw standby finishing a drill leaves alone the service another machine's engine started",
  ignore: why !== undefined,
  async fn() {
    const url = await (await sharedCluster({ allowFrom: MACHINE_NET })).createDatabase();
    const w = await workDir({ "rb.yaml": RUNBOOK });
    const store = await look(url);
    const standby = machine("standby-b", w.dir, url, ["standby"]);
    const engine = machine("engine-a", w.dir, url, ["drill", "rb.yaml"]);
    let svc = 0;
    try {
      await poll(() => standby.out().includes("standing by on") || undefined, "the standby");
      const run = await poll(async () => (await store.listRuns(1))[0]?.id, "the run");
      await poll(async () => {
        const steps = new Map((await store.steps(run)).map((s) => [s.step, s.state]));
        const recorded = (await store.processes(run)).some((p) => p.step === "svc");
        return steps.get("svc") === "done" && steps.get("hold") === "running" && recorded ||
          undefined;
      }, "svc up and hold running");
      svc = Number(await Deno.readTextFile(join(w.dir, "svc.pid")));
      // engine-a dies; its service lives on (on engine-a's machine, as far as the standby knows).
      Deno.kill(engine.child.pid, "SIGKILL");
      await engine.done;
      ok(alive(svc), "engine-a's service outlives its engine");
      await Deno.writeTextFile(join(w.dir, "go"), "");
      await poll(() => tookOverAt(standby, run), "the standby to take over");
      const end = await poll(
        async () => {
          const r = await store.getRun(run);
          return r && r.state !== "running" ? r : undefined;
        },
        "the drill to end",
        60000,
      );
      equal(end.outcome, "met", standby.out());
      ok(alive(svc), "the standby stopped a process by a number another machine recorded");
    } finally {
      await Deno.writeTextFile(join(w.dir, "go"), "");
      if (svc) {
        try {
          Deno.kill(svc, "SIGKILL");
        } catch { /* gone */ }
      }
      for (const m of [engine, standby]) {
        try {
          m.child.kill("SIGKILL");
        } catch { /* ended */ }
        await m.done;
      }
      await store.close();
      await w.remove();
    }
  },
});

Deno.test({
  name: "stop the PostgreSQL cluster of takeover_drill_test",
  ignore: why !== undefined,
  fn: stopSharedCluster,
});
