/**
 * A run's state as `thaw status` and `GET /runs` give it, judged by its engine's lease: an engine
 * frozen past its lease (SIGSTOP; the same as one on another machine that died) shows as
 * `interrupted` within seconds, not after the 60 s a heartbeat alone would take, so `thaw resume`
 * may take it over at once. Real engine processes, a real SQLite store.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { engine, firstRun, inDir, stopListed, thaw, waitFor } from "./live_helpers.ts";
import { openStore } from "../engine/store/mod.ts";
import { createApp } from "../engine/api/app.ts";
import { LEASE_TTL_MS } from "../engine/live/lease.ts";

const RUNBOOK = `runbook: 1
name: frozen
steps:
  - id: hold
    idempotent: true
    run: 'echo $$ >> pids; while [ ! -e go ]; do sleep 0.1; done'
`;

Deno.test("thaw status shows a run interrupted, when its engine froze past its lease", async () => {
  await inDir(RUNBOOK, async (dir) => {
    const { child, output } = engine(dir, ["run", "rb.yaml"]);
    try {
      const run = await waitFor(dir, async (s) => {
        const r = await firstRun(s);
        return r && (await s.processes(r.id)).length === 1 ? r.id : undefined;
      }, "the step running");
      const before = await thaw(dir, ["status", run, "--json"]);
      assert.equal(JSON.parse(before.stdout).state, "running");

      Deno.kill(child.pid, "SIGSTOP");
      await new Promise((r) => setTimeout(r, LEASE_TTL_MS + 1000));
      const cli = await thaw(dir, ["status", run, "--json"]);
      assert.equal(cli.code, 0, cli.stderr);
      assert.equal(JSON.parse(cli.stdout).state, "interrupted");
      const store = await openStore(join(dir, "state.db"));
      try {
        const app = createApp({ store });
        const runs = await (await app.request("/runs")).json();
        assert.equal(runs[0].state, "interrupted");
        const one = await (await app.request(`/runs/${run}`)).json();
        assert.equal(one.state, "interrupted");
      } finally {
        await store.close();
      }
    } finally {
      await Deno.writeTextFile(join(dir, "go"), "");
      try {
        Deno.kill(-child.pid, "SIGKILL");
      } catch { /* gone */ }
      await output;
      await stopListed(join(dir, "pids"));
    }
  });
});
