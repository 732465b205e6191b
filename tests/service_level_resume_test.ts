/**
 * The service level across `thaw resume`: the samples a killed engine stored stay, the resumed
 * engine samples on from where the run stands (its `after` step already done) with the next
 * numbers, and the report measures them all from the run's first start.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { engine, firstRun, freePort, thaw, waitFor } from "./live_helpers.ts";
import { openStore } from "../engine/store/mod.ts";

const SERVER = `
const [port] = Deno.args;
Deno.serve({ hostname: "127.0.0.1", port: Number(port), onListen() {} }, () => new Response("ok"));
`;

Deno.test("thaw resume keeps the samples a killed engine stored, and samples on after them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-sl-resume-" });
  const port = freePort();
  await Deno.writeTextFile(join(dir, "server.ts"), SERVER);
  await Deno.writeTextFile(
    join(dir, "rb.yaml"),
    `runbook: 1
name: sl-resume
steps:
  - id: svc
    run: exec "${Deno.execPath()}" run -A server.ts ${port}
    background: true
    ready: { http: "http://127.0.0.1:${port}/", timeout: 60s, interval: 50ms }
    milestone: service
  - id: restore
    needs: [svc]
    idempotent: true
    run: sleep 2
service_level:
  - name: web
    http: http://127.0.0.1:${port}/
    every: 100ms
    normal: 500ms
`,
  );
  const { child, output } = engine(dir, ["drill", "rb.yaml"]);
  try {
    const run = await waitFor(dir, async (s) => {
      const r = await firstRun(s);
      return r && (await s.slSamples(r.id)).length >= 5 ? r.id : undefined;
    }, "5 samples");
    Deno.kill(-child.pid, "SIGKILL");
    await output;
    const store = await openStore(join(dir, "state.db"));
    const before = await store.slSamples(run);
    await store.close();

    const r = await thaw(dir, ["resume", run, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const web = JSON.parse(r.stdout).service_level.web;
    const after = await openStore(join(dir, "state.db"));
    const all = await after.slSamples(run);
    await after.close();
    // Every sample of the first engine is still there, and the resumed one numbered on.
    assert.deepEqual(all.slice(0, before.length), before);
    assert.ok(all.length > before.length + 3, `${before.length} then ${all.length}`);
    assert.deepEqual(all.map((x) => x.seq), all.map((_, i) => i + 1));
    const lastBefore = before[before.length - 1]!.t_s;
    assert.ok(all[before.length]!.t_s > lastBefore, "the resumed engine's clock went back");
    // The report measures them all, from the milestone of the first engine.
    assert.equal(web.samples.length, all.length);
    // (Times compare in milliseconds, as the report gives them: engine/service_level/measures.ts.)
    const first = Math.round(before[0]!.t_s * 1000) / 1000;
    assert.ok(web.from_s <= first, `from ${web.from_s}, first sample ${before[0]!.t_s}`);
    assert.ok(web.recovery.samples >= before.length);
    assert.ok(web.normal.samples >= 2);
  } finally {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch { /* gone */ }
    await Deno.remove(dir, { recursive: true });
  }
});
