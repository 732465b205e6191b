/**
 * The pages for people, read back with a real HTML parser (parse5): the timeline's bars where the
 * report's times put them, fetch bars split, hostile runbook text kept as text, and the pages the
 * API serves (`GET /`, `GET /runs/ID/page`) over a real SQLite store, the JSON API unchanged.
 *
 * @module
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { parse } from "parse5";
import { createApp } from "../engine/api/app.ts";
import { planPage, reportsPage, runPage } from "../engine/pages/pages.ts";
import { timelineSvg } from "../engine/pages/timeline.ts";
import { parseRunbook } from "../engine/runbook/load.ts";
import { formatDuration } from "../engine/runbook/units.ts";
import { plan } from "../engine/simulate/plan.ts";
import { simulate } from "../engine/simulate/simulate.ts";
import type { Report } from "../engine/schedule/report.ts";
import { openStore } from "../engine/store/mod.ts";
import { createStoredRun } from "./stored_run.ts";

const RUNBOOK = `runbook: 1
name: shop
bandwidth: 10MB/s
objectives: { rto: 60s, btn: 1h }
steps:
  - { id: fetch-db, fetch: { from: /backup/db, to: ./db, size: 100MB } }
  - { id: fetch-logs, fetch: { from: /backup/logs, to: ./logs, size: 200MB } }
  - { id: start-db, needs: [fetch-db], run: "true", estimate: 5s, milestone: service }
  - { id: check, needs: [fetch-logs, start-db], run: "true", estimate: 2s }
`;

const HOSTILE = `</td></tr><script>window.pwned=1</script><img src=x onerror="window.pwned=2">`;

// deno-lint-ignore no-explicit-any
type Node = any;

/** Every element of an HTML document, depth first. */
function elements(html: string): Node[] {
  const out: Node[] = [];
  const walk = (n: Node) => {
    if (n.tagName) out.push(n);
    for (const c of n.childNodes ?? []) walk(c);
    if (n.content) walk(n.content); // <template>
  };
  walk(parse(html));
  return out;
}

const attr = (n: Node, name: string) =>
  n.attrs?.find((a: { name: string }) => a.name === name)?.value as string | undefined;

function textOf(n: Node): string {
  if (n.nodeName === "#text") return n.value;
  return (n.childNodes ?? []).map(textOf).join("");
}

Deno.test("timelineSvg() draws a bar per step where its start and end put it", () => {
  const r = simulate(parseRunbook(RUNBOOK, "shop.yaml"));
  const els = elements(`<body>${timelineSvg({ report: r })}</body>`);
  const svg = els.find((e) => e.tagName === "svg")!;
  const x0 = Number(attr(svg, "data-x0")), k = Number(attr(svg, "data-px-per-s"));
  const bars = els.filter((e) => e.tagName === "rect" && /\bbar\b/.test(attr(e, "class") ?? ""));
  deepEqual(bars.map((b) => attr(b, "data-step")), r.steps.map((s) => s.id));
  for (const s of r.steps) {
    const b = bars.find((x) => attr(x, "data-step") === s.id)!;
    const x = Number(attr(b, "x")), w = Number(attr(b, "width"));
    ok(Math.abs(x - (x0 + s.start_s! * k)) < 0.02, `${s.id}: x ${x}`);
    ok(Math.abs(x + w - (x0 + s.end_s! * k)) < 0.05 || w === 1, `${s.id}: width ${w}`);
  }
  // TTR and BTN lines at their times, and the objectives (rto within the chart).
  const marks = els.filter((e) => e.tagName === "line" && /\bmark\b/.test(attr(e, "class") ?? ""));
  const ttr = marks.find((m) => /\bttr\b/.test(attr(m, "class")!))!;
  ok(Math.abs(Number(attr(ttr, "x1")) - (x0 + r.ttr_s! * k)) < 0.02);
  ok(marks.some((m) => /objective/.test(attr(m, "class")!)));
});

Deno.test("timelineSvg() splits a demanded fetch at the time it was demanded", () => {
  const r = simulate(parseRunbook(RUNBOOK, "shop.yaml"));
  const steps = r.steps.map((s) =>
    s.id === "fetch-logs"
      ? { ...s, start_s: 0, end_s: 20, demanded: true, prefetched_bytes: s.bytes! / 4 }
      : s
  );
  const part = (html: string, cls: string) => {
    const e = elements(`<body>${html}</body>`);
    const k = Number(attr(e.find((x) => x.tagName === "svg"), "data-px-per-s"));
    const rects = e.filter((x) =>
      x.tagName === "rect" && attr(x, "class") === cls &&
      textOf(x).startsWith("fetch-logs")
    );
    equal(rects.length, 1, cls);
    return Number(attr(rects[0], "width")) / k;
  };
  const byBytes = timelineSvg({ report: { ...r, steps } });
  ok(Math.abs(part(byBytes, "prefetched") - 5) < 0.01); // a quarter of its bytes, of 20 s
  ok(Math.abs(part(byBytes, "demanded") - 15) < 0.01);
  const known = timelineSvg({ report: { ...r, steps }, demandedAt: { "fetch-logs": 12 } });
  ok(Math.abs(part(known, "prefetched") - 12) < 0.01);
});

Deno.test("timelineSvg() draws the service level only when the report carries samples", () => {
  const r = simulate(parseRunbook(RUNBOOK, "shop.yaml"));
  const has = (html: string) =>
    elements(`<body>${html}</body>`).some((e) => e.tagName === "polyline");
  equal(has(timelineSvg({ report: r })), false);
  const summary = { recovery: { samples: 2 }, degradation: 0.5, outcome: "met" };
  equal(has(timelineSvg({ report: { ...r, service_level: { api: summary } } as Report })), false);
  const samples = [{ t_s: 1, value: 10, ok: true }, { t_s: 2, value: 30, ok: true }];
  const withSamples = { ...r, service_level: { api: { ...summary, samples } } } as Report;
  equal(has(timelineSvg({ report: withSamples })), true);
});

Deno.test("runPage() keeps hostile runbook text as text, and runs no script but its own", () => {
  const r = simulate(parseRunbook(RUNBOOK, "shop.yaml"));
  const hostile: Report = {
    ...r,
    runbook: HOSTILE,
    milestones: { [HOSTILE]: 3 },
    objectives: { ...r.objectives, milestones: { [HOSTILE]: 10 } },
    steps: r.steps.map((s, i) => i === 2 ? { ...s, id: HOSTILE, detail: HOSTILE } : s),
  };
  for (const html of [runPage(hostile, { now_s: 4 }, "events"), reportsPage([hostile])]) {
    const els = elements(html);
    const scripts = els.filter((e) => e.tagName === "script");
    ok(scripts.every((s) => attr(s, "nonce") || attr(s, "type") === "application/json"));
    ok(scripts.length <= 2, `scripts: ${scripts.length}`);
    equal(els.filter((e) => e.tagName === "img").length, 0);
    const row = els.find((e) => e.tagName === "tr" && attr(e, "data-step") === HOSTILE);
    ok(row, "the hostile step's row, its id intact in data-step");
    const detail = row.childNodes.find((c: Node) => attr(c, "class") === "detail");
    equal(textOf(detail), HOSTILE);
    const csp = els.find((e) => attr(e, "http-equiv") === "Content-Security-Policy");
    ok(/script-src 'nonce-[^']+'/.test(attr(csp, "content")!));
  }
  const live = elements(runPage(hostile, { now_s: 4 }, "events"));
  const cfg = live.find((e) => attr(e, "id") === "thaw-live");
  deepEqual(JSON.parse(textOf(cfg)), { events: "events", now_s: 4, ended: true });
});

Deno.test("planPage() draws every strategy on one time scale, one under the other", () => {
  const rb = parseRunbook(RUNBOOK, "shop.yaml");
  const els = elements(planPage(plan(rb), rb.name, "aggressive"));
  const sections = els.filter((e) => attr(e, "data-strategy"));
  deepEqual(sections.map((s) => attr(s, "data-strategy")), ["serial", "lazy", "aggressive"]);
  const scales = els.filter((e) => e.tagName === "svg").map((s) => attr(s, "data-px-per-s"));
  equal(scales.length, 3);
  equal(new Set(scales).size, 1);
});

Deno.test("planPage() gives each strategy's TTR without lazy fetches, when the runbook has one", () => {
  const rb = parseRunbook(
    `runbook: 1
name: volume
bandwidth: 10MiB/s
steps:
  - { id: vol, fetch: { from: "http://127.0.0.1:1/v.img", to: ./v.img, size: 2GiB, lazy: true } }
  - { id: up, needs: [vol], run: "true", estimate: 1s, milestone: service }
`,
    "volume.yaml",
  );
  const p = plan(rb);
  const html = planPage(p, rb.name, "aggressive");
  const notes = elements(html).filter((e) => attr(e, "data-without-lazy") !== undefined);
  equal(notes.length, 3);
  const plain = p.without_lazy!.aggressive;
  ok(plain.ttr_s! > p.simulated.aggressive.ttr_s! + 100, `${plain.ttr_s}`);
  ok(html.includes(`without lazy fetches: TTR ${formatDuration(plain.ttr_s!)}`));
  // A runbook without lazy fetches has no such note.
  const none = parseRunbook(RUNBOOK, "shop.yaml");
  ok(!planPage(plan(none), none.name, "aggressive").includes("without lazy"));
});

Deno.test("GET / and GET /runs/ID/page serve the pages; GET /runs/ID stays JSON", async () => {
  const dir = await Deno.makeTempDir();
  const store = await openStore(join(dir, "state.db"));
  try {
    const { rb, run } = await createStoredRun(store, dir, RUNBOOK, { drill: true, ageMs: 4000 });
    await store.recordSteps(run, [
      { step: "start-db", state: "frozen", at: 0, detail: "waits for fetch-db" },
      { step: "fetch-db", state: "running", at: 0 },
      { step: "fetch-logs", state: "failed", at: 1, detail: HOSTILE },
    ]);
    const sim = simulate(rb, { run });
    const report: Report = {
      ...sim,
      mode: "live",
      ttr_s: null,
      btn_s: null,
      milestones: { service: null },
      steps: sim.steps.map((s) => ({
        ...s,
        state: s.id === "start-db" ? "frozen" : s.id === "fetch-db" ? "running" : "pending",
        start_s: s.id === "fetch-db" ? 0 : null,
        end_s: null,
      })),
    };
    await store.updateRun(run, { report: JSON.stringify(report), heartbeatAt: Date.now() });
    const app = createApp({ store });

    const list = await app.request("/");
    equal(list.status, 200);
    ok(list.headers.get("content-type")!.startsWith("text/html"));
    const links = elements(await list.text()).filter((e) => e.tagName === "a");
    ok(links.some((a) => attr(a, "href") === `runs/${run}/page`));

    const page = await app.request(`/runs/${run}/page`);
    equal(page.status, 200);
    const els = elements(await page.text());
    const row = (id: string) => els.find((e) => e.tagName === "tr" && attr(e, "data-step") === id);
    ok(textOf(row("start-db")).includes("waits for fetch-db"), "what a frozen step waits for");
    ok(textOf(row("start-db")).includes("frozen"));
    equal(els.filter((e) => e.tagName === "img").length, 0);
    // A change the engine has not yet saved in its report shows, as the event stream has it.
    equal(attr(row("fetch-logs"), "data-state"), "failed");
    const detail = row("fetch-logs").childNodes.find((c: Node) => attr(c, "class") === "detail");
    equal(textOf(detail), HOSTILE);
    // The frozen step's open frozen span, drawn up to now (about 4 s).
    const frozen = els.filter((e) => e.tagName === "rect" && attr(e, "class") === "frozen");
    ok(frozen.some((f) => textOf(f).startsWith("start-db")));
    ok(els.some((e) => attr(e, "data-due") === "60"), "the rto counts down");
    const byPrefix = await app.request(`/runs/${run.slice(0, 20)}/page`);
    equal(byPrefix.status, 200);
    await byPrefix.body?.cancel();

    const json = await app.request(`/runs/${run}`);
    equal(json.headers.get("content-type"), "application/json");
    equal((await json.json()).run, run);
    const missing = await app.request("/runs/01NOPE/page");
    equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
