/**
 * The service level measured live, through the real engine: `thaw drill` of a runbook whose
 * service (a real HTTP server on 127.0.0.1) is slow on purpose until BTN, with an API server over
 * the same SQLite store in this process, as a person would watch it (`sl` events, `/metrics`).
 *
 * The server answers in 150 ms until the restore step touches its flag file (just before BTN),
 * then in 50 ms. Degradation by hand: the p95 (nearest rank) of the recovery samples over the p95
 * of the normal ones, minus 1, from the samples as stored; it must equal the report's to its
 * rounding (4 significant digits). Against the intended delays, 150 / 50 − 1 = 2, the report's
 * may differ by what a GET costs on loopback beyond the delay (tolerance: ±1, i.e. up to ~50 ms
 * more at p95 in the normal window on a loaded 2-core machine).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { serveApi } from "../engine/api/serve.ts";
import { RunDetailSchema } from "../engine/api/schemas.ts";
import { openStore } from "../engine/store/mod.ts";
import { thawCommand } from "./paths.ts";
import { readEvents } from "./sse.ts";

const SLOW_MS = 150, FAST_MS = 50;
const SERVER = `
const [port, flag] = Deno.args;
Deno.serve({ hostname: "127.0.0.1", port: Number(port), onListen() {} }, async (req) => {
  if (new URL(req.url).pathname === "/healthz") return new Response("ok");
  let slow = true;
  try { Deno.statSync(flag); slow = false; } catch { /* not yet */ }
  await new Promise((r) => setTimeout(r, slow ? ${SLOW_MS} : ${FAST_MS}));
  return new Response(slow ? "slow" : "fast");
});
`;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

function runbook(port: number, p95: string): string {
  return `runbook: 1
name: sl-slow
steps:
  - id: svc
    run: exec "${Deno.execPath()}" run -A server.ts ${port} ./restored.flag
    background: true
    ready: { http: "http://127.0.0.1:${port}/healthz", timeout: 60s, interval: 50ms }
    milestone: service
  - id: restore
    needs: [svc]
    run: sleep 2.5 && touch restored.flag
service_level:
  - name: web
    after: svc
    http: http://127.0.0.1:${port}/
    every: 250ms
    normal: 2500ms
    objective: { p95: ${p95} }
`;
}

interface Row {
  seq: number;
  probe: string;
  t_s: number;
  value: number | null;
  ok: number;
}

/** The ⌈0.95·n⌉-th smallest: the nearest rank, as the README defines p95. */
function p95(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil(0.95 * sorted.length) - 1]!;
}

/** The first run the store lists (the drill's), waited for (bounded). */
async function firstRun(url: string): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const runs = await (await fetch(`${url}/runs`)).json() as { run: string }[];
    if (runs[0]) return runs[0].run;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the drill never created its run");
}

Deno.test({
  name: "thaw drill measures a service slow until BTN: degradation by hand, exit 3, sl events, " +
    "/metrics",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "thaw-sl-" });
    const port = freePort();
    await Deno.writeTextFile(join(dir, "server.ts"), SERVER);
    await Deno.writeTextFile(join(dir, "rb.yaml"), runbook(port, "100ms"));
    const dbPath = join(dir, "state.db");
    const store = await openStore(dbPath);
    const api = await serveApi({ store, listen: "127.0.0.1:0", events: { pollMs: 100 } });
    const child = thawCommand(["drill", "rb.yaml", "--store", dbPath, "--json"], {
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(90_000),
    }).spawn();
    try {
      // Watch it live, as the page does: the run's events until `end`.
      const run = await firstRun(api.url);
      const res = await fetch(`${api.url}/runs/${run}/events`, {
        signal: AbortSignal.timeout(90_000),
      });
      const sl: { seq: number; probe: string; t_s: number; value: number | null; ok: boolean }[] =
        [];
      let ended = false;
      for await (const e of readEvents(res.body!)) {
        if (e.event === "sl") sl.push(JSON.parse(e.data));
        if (e.event === "end") {
          ended = true;
          break;
        }
      }
      const out = await child.output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.ok(ended, "the event stream ended without `end`");

      // A missed SL objective is a missed objective: exit 3, `sl:web` in missed.
      assert.equal(out.code, 3, stderr);
      const report = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.equal(report.outcome, "missed");
      assert.deepEqual(report.missed, ["sl:web"]);
      const web = report.service_level.web;
      assert.equal(web.outcome, "missed");
      assert.match(web.missed[0], /^p95 \d+(\.\d+)?ms > 100ms$/);

      // The samples as stored, read back from the SQLite file itself.
      const db = new DatabaseSync(dbPath, { readOnly: true });
      const rows = db.prepare("select seq, probe, t_s, value, ok from sl_samples where run = ?")
        .all(run) as unknown as Row[];
      db.close();
      assert.ok(rows.length >= 10, `only ${rows.length} samples`);
      assert.equal(web.samples.length, rows.length);

      // Degradation by hand, from the stored samples and the report's windows.
      const btn = report.btn_s as number, from = web.from_s as number;
      const ok = rows.filter((r) => r.ok && r.value !== null);
      // (Windows compare times in milliseconds, rounded, as the report gives them.)
      const at = (r: Row) => Math.round(r.t_s * 1000) / 1000;
      const recovery = ok.filter((r) => at(r) >= from && at(r) < btn).map((r) => r.value!);
      const normal = ok.filter((r) => at(r) >= btn && at(r) < btn + 2.5).map((r) => r.value!);
      assert.ok(recovery.length >= 5 && normal.length >= 5, `${recovery.length}/${normal.length}`);
      const byHand = p95(recovery) / p95(normal) - 1;
      assert.equal(web.degradation, Number(byHand.toPrecision(4)));
      assert.ok(Math.abs(web.degradation - (SLOW_MS / FAST_MS - 1)) <= 1, `${web.degradation}`);
      // What each sample saw: slow until shortly before BTN, then not.
      for (const r of ok.filter((r) => r.t_s >= from && r.t_s < btn - 0.4)) {
        assert.ok(r.value! >= SLOW_MS, `recovery sample at ${r.t_s}s: ${r.value}ms`);
      }
      for (const r of ok.filter((r) => r.t_s >= btn)) {
        assert.ok(r.value! >= FAST_MS && r.value! < SLOW_MS, `normal sample ${r.value}ms`);
      }
      // Time below objective: every recovery sample missed p95 100ms, so about from..BTN.
      assert.ok(web.below_objective_s >= (btn - from) - 0.6, `${web.below_objective_s}`);
      assert.ok(web.below_objective_s <= btn - from + 1e-6);

      // `sl` events: each stored sample once, in seq order, as stored.
      assert.deepEqual(sl.map((e) => e.seq), rows.map((r) => r.seq).sort((a, b) => a - b));
      assert.ok(sl.every((e) => e.probe === "web"));

      // `GET /runs/ID`: the same service level, in the shape the API documents.
      const detail = RunDetailSchema.parse(await (await fetch(`${api.url}/runs/${run}`)).json());
      assert.deepEqual(detail.service_level, report.service_level);

      // `/metrics`: the run's service level.
      const metrics = await (await fetch(`${api.url}/metrics`)).text();
      const id = `run="${run}",runbook="sl-slow",probe="web"`;
      assert.ok(
        metrics.includes(`thaw_run_sl_degradation_ratio{${id}} ${web.degradation}\n`),
        metrics,
      );
      assert.ok(metrics.includes(`thaw_run_sl_objective_met{${id}} 0\n`));
      // Every sample of the window counts, a failed one too (a probe may time out under load).
      const taken = rows.filter((r) => at(r) >= from && at(r) < btn).length;
      assert.ok(
        metrics.includes(`thaw_run_sl_samples{${id},window="recovery"} ${taken}`),
        metrics,
      );

      // A simulated drill shows this service level as last measured, not as its own outcome.
      const sim = await thawCommand(
        ["drill", "rb.yaml", "--simulate", "--json", "--store", dbPath],
        { cwd: dir, stdout: "piped", stderr: "piped" },
      ).output();
      assert.equal(sim.code, 0, new TextDecoder().decode(sim.stderr));
      const simulated = JSON.parse(new TextDecoder().decode(sim.stdout));
      assert.equal(simulated.outcome, "met");
      assert.deepEqual(simulated.missed, []);
      assert.equal(simulated.service_level.web.last_measured.run, run);
      assert.equal(simulated.service_level.web.outcome, "missed");
      assert.equal(simulated.service_level.web.samples, undefined);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* ended */ }
      await child.status;
      await api.close();
      await store.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
