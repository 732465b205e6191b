/**
 * Lazy fetches (contract revision 5) in simulation, planning and the report: dependents start at
 * attach time (LAZY_ATTACH_S after the fetch starts), the stream crosses the link as a prefetch,
 * the report gives attach and home times and the bytes on demand and streamed, the bounds stay
 * below every schedule, and `thaw plan` shows TTR and BTN without `lazy` beside them.
 *
 * @module
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { analyse, buildGraph, type Graph, parseRunbook, plan, simulate } from "../mod.ts";
import { LAZY_ATTACH_S } from "../engine/plan/graph.ts";
import { FETCH } from "../engine/plan/graph.ts";
import { ReportSchema } from "../engine/api/schemas.ts";
import { renderPlan, renderReport } from "../engine/cli/render.ts";
import { markdownReport } from "../engine/reports/markdown.ts";
import { STRATEGIES } from "../engine/runbook/schema.ts";
import { simulatedReport, simulateGraph } from "../engine/simulate/simulate.ts";
import { mulberry32, randomRunbookParsed } from "./gen.ts";

const GiB = 2 ** 30, MiB = 2 ** 20;
const RATE = 10 * MiB;
/** 2 GiB over 10 MiB/s: 204.8 s. */
const ALONE = 2 * GiB / RATE;

function shop(lazy: boolean, start = "1s") {
  return parseRunbook(
    `runbook: 1
name: shop
bandwidth: 10MiB/s
steps:
  - id: catalog-volume
    fetch:
      from: http://127.0.0.1:8089/shop/catalog.img
      to: ./restore/catalog.img
      size: 2GiB
      lazy: ${lazy}
  - id: start-shop
    needs: [catalog-volume]
    run: exec ./bin/shop --db ./restore/catalog.img
    estimate: ${start}
    milestone: service
`,
    "shop.yaml",
  );
}

const near = (got: number | null, want: number, what: string) =>
  ok(got !== null && Math.abs(got - want) < 1e-6, `${what}: ${got}, want ${want}`);

Deno.test("simulate() starts a lazy fetch's dependents at attach time, when the volume streams behind them", () => {
  const r = simulate(shop(true, "3s"));
  near(r.ttr_s, LAZY_ATTACH_S + 3, "TTR: attach, then the service's start");
  near(r.btn_s, LAZY_ATTACH_S + ALONE, "BTN: the stream, once attached, alone on the link");
  const vol = r.steps[0]!, svc = r.steps[1]!;
  deepEqual([vol.start_s, vol.attached_s, svc.start_s], [0, LAZY_ATTACH_S, LAZY_ATTACH_S]);
  near(vol.end_s, LAZY_ATTACH_S + ALONE, "home");
  deepEqual([vol.bytes, vol.on_demand_bytes, vol.streamed_bytes], [2 * GiB, 0, 2 * GiB]);
  deepEqual(r.bytes, { total: 2 * GiB, on_demand: 0, prefetched: 2 * GiB });
  ReportSchema.parse(r); // the --json shape the API documents
});

Deno.test("simulate() takes size over rate before the service starts, when the fetch is not lazy", () => {
  const r = simulate(shop(false, "3s"));
  near(r.ttr_s, ALONE + 3, "TTR");
  near(r.btn_s, ALONE + 3, "BTN");
  equal(r.steps[0]!.attached_s, undefined, "no attach time for an ordinary fetch");
  equal(r.steps[0]!.streamed_bytes, undefined);
});

Deno.test("simulate() lets other fetches use the link during the attach, when a lazy fetch attaches", () => {
  const rb = parseRunbook(
    `runbook: 1
name: two
bandwidth: 10MiB/s
steps:
  - { id: vol, fetch: { from: http://b/v.img, to: ./v.img, size: 100MiB, lazy: true } }
  - { id: svc, needs: [vol], run: "true", estimate: 1s, milestone: up }
  - { id: logs, fetch: { from: http://b/l, to: ./l, size: 50MiB } }
`,
    "two.yaml",
  );
  const r = simulate(rb);
  // The link never idles: 150 MiB at 10 MiB/s.
  near(r.btn_s, 15, "BTN");
  near(r.ttr_s, LAZY_ATTACH_S + 1, "TTR");
});

Deno.test("analyse() bounds TTR by the service alone and BTN by the bytes, when a fetch is lazy", () => {
  const g = buildGraph(shop(true, "3s"));
  deepEqual(analyse(g).lowerBound, { ttr: 3, btn: ALONE });
  const plain = buildGraph(shop(false, "3s"));
  deepEqual(analyse(plain).lowerBound, { ttr: ALONE + 3, btn: ALONE + 3 });
});

Deno.test("plan() gives TTR with and without lazy, when the runbook has a lazy fetch", () => {
  const p = plan(shop(true, "1s"));
  near(p.simulated.aggressive.ttr_s, LAZY_ATTACH_S + 1, "TTR with lazy");
  near(p.without_lazy!.aggressive.ttr_s, ALONE + 1, "TTR without lazy");
  near(p.without_lazy!.aggressive.btn_s, ALONE + 1, "BTN without lazy");
  const text = renderPlan(p);
  ok(text.includes("TTR 2s (without lazy: 3m26s)"), text);
  equal(plan(shop(false)).without_lazy, undefined, "nothing to compare without a lazy fetch");
  ok(!renderPlan(plan(shop(false))).includes("without lazy"));
});

Deno.test("renderReport() shows when a lazy fetch was attached, when the report has one", () => {
  const report = simulate(shop(true));
  const text = renderReport(report);
  ok(/catalog-volume .* 2\.0GiB lazy, attached at 1s/.test(text), text);
  const md = markdownReport([report]);
  ok(md.includes("| 2.0GiB, lazy, attached at 1s |"), md);
});

/** `g` with the fetches `rnd` picks made lazy. */
function someLazy(g: Graph, rnd: () => number): Graph {
  const lazy = Uint8Array.from(g.kind, (k) => (k === FETCH && rnd() < 0.5 ? 1 : 0));
  return { ...g, lazy };
}

Deno.test("simulate() never beats the lower bounds and starts steps after attach, for random runbooks with lazy fetches", () => {
  let early = 0; // steps that started before a lazy fetch they need was home
  for (let seed = 0; seed < 120; seed++) {
    const rb = randomRunbookParsed(seed);
    const g = someLazy(buildGraph(rb), mulberry32(seed + 17));
    const analysis = analyse(g);
    for (const strategy of STRATEGIES) {
      const sim = simulateGraph(g, analysis, strategy, rb.parallelism);
      const r = simulatedReport(rb, analysis, sim, "r");
      const at = `seed ${seed}, ${strategy}`;
      ok(r.ttr_s !== null && r.btn_s !== null, at);
      ok(r.ttr_s >= r.lower_bound.ttr_s * (1 - 1e-6) - 1e-3, `${at}: TTR ${r.ttr_s}`);
      ok(r.btn_s >= r.lower_bound.btn_s * (1 - 1e-6) - 1e-3, `${at}: BTN ${r.btn_s}`);
      for (let i = 0; i < g.n; i++) {
        const s = r.steps[i]!;
        if (s.state !== "done" || s.start_s === null) continue;
        for (let k = g.needStart[i]!; k < g.needStart[i + 1]!; k++) {
          const need = r.steps[g.needList[k]!]!;
          const ready = g.lazy![g.needList[k]!] ? need.attached_s! : need.end_s!;
          ok(s.start_s >= ready - 1e-3, `${at}: ${s.id} starts before ${need.id} is ready`);
          if (s.start_s < need.end_s! - 1e-3) early++;
        }
        if (g.lazy![i]) ok(s.end_s! >= s.attached_s! - 1e-3, `${at}: ${s.id} home before attach`);
      }
    }
  }
  ok(early > 100, `only ${early} steps started before their lazy data was home`);
});

/** Runs `thaw ARGS` from the repository's root. */
async function thaw(...args: string[]) {
  const root = new URL("..", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "engine/main.ts", ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

Deno.test("thaw plan prints TTR without lazy beside TTR with it, when the runbook has a lazy fetch", async () => {
  const r = await thaw("plan", "testdata/plans/lazy-volume.yaml");
  equal(r.code, 0, r.stderr);
  ok(r.stdout.includes("* with lazy fetches: TTR 2s (without lazy: 3m26s)"), r.stdout);
  const json = JSON.parse((await thaw("plan", "testdata/plans/lazy-volume.yaml", "--json")).stdout);
  near(json.without_lazy.aggressive.ttr_s, ALONE + 1, "--json without_lazy");
});

// A live drill of a lazy fetch: tests/lazy_live_test.ts.
Deno.test("thaw drill --simulate attaches a lazy fetch in 1 s and streams the rest, when a fetch is lazy", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-lazy-" });
  try {
    const file = `${dir}/lazy.yaml`;
    await Deno.copyFile(new URL("../testdata/plans/lazy-volume.yaml", import.meta.url), file);
    const simulated = await thaw("drill", "--simulate", "--json", file);
    equal(simulated.code, 0, simulated.stderr);
    const vol = JSON.parse(simulated.stdout).steps[0];
    deepEqual([vol.attached_s, vol.streamed_bytes, vol.on_demand_bytes], [1, 2 * GiB, 0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
