/**
 * The pages a person opens in a browser, served beside the JSON API by `thaw serve` and
 * `--listen`: `GET /` lists the runs, `GET /runs/ID/page` is a run's live page (it follows
 * `GET /runs/ID/events`). The JSON endpoints are unchanged.
 *
 * @module
 */
import type { Hono } from "hono";
import { findRun } from "../live/runs.ts";
import { SKIP_DETAIL } from "../live/live_run.ts";
import type { StepReport } from "../schedule/report.ts";
import type { StepEvent, Store } from "../store/types.ts";
import type { RunsView } from "../api/view.ts";
import type { RunDetail } from "../api/schemas.ts";
import { type ListedRun, runPage, runsListPage } from "./pages.ts";
import type { PageExtras, PageRun } from "./run_page.ts";

/** Runs with more steps than this show no frozen-since, demand times nor failure reasons. */
const MAX_EVENT_STEPS = 5000;

const HEADERS = {
  "Content-Type": "text/html; charset=utf-8",
  "Cache-Control": "no-cache",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};

/** Adds the pages to `app`, reading runs through `view` (the API's own cached answers). */
export function addPages(app: Hono, store: Store, view: RunsView): void {
  app.get("/", async () => {
    const runs = JSON.parse((await view.list(50)).body) as ListedRun[];
    return new Response(runsListPage(runs), { headers: HEADERS });
  });
  app.get("/runs/:id/page", async (c) => {
    const id = c.req.param("id");
    let snapshot = await view.detail(id);
    if (!snapshot) {
      const run = await findRun(store, id, true); // a prefix is enough here; else the 404
      snapshot = (await view.detail(run.id))!;
    }
    const detail = JSON.parse(snapshot.body) as RunDetail;
    const { run, extras } = await withEvents(store, detail);
    return new Response(runPage(run, extras, "events"), { headers: HEADERS });
  });
}

/**
 * What the step events add to a run's report: what each frozen step waits for and since when,
 * when each fetch was demanded, why a step failed, and the run's seconds now.
 */
async function withEvents(
  store: Store,
  detail: RunDetail,
): Promise<{ run: PageRun; extras: PageExtras }> {
  // A huge run's events are too many to read at every refresh: its page goes without them.
  const events = detail.steps.length <= MAX_EVENT_STEPS ? await store.stepEvents(detail.run) : [];
  const { last, demandedAt } = fold(events);
  const live = detail.state === "running" || detail.state === "interrupted";
  // The engine saves its report once a second, its step changes at once: while a run goes on, the
  // page shows each step as its last change has it (as the event stream does).
  const steps = detail.steps.map((s) => {
    const e = last.get(s.id);
    const now = live && e ? overlay(s, e) : s;
    if (now.detail || !e?.detail || e.state !== now.state) return now;
    return { ...now, detail: e.detail };
  });
  const frozenSince = Object.fromEntries(
    [...last].filter(([, e]) => e.state === "frozen").map(([id, e]) => [id, e.at]),
  );
  const now_s = live ? Math.max(0, (Date.now() - Date.parse(detail.started_at)) / 1000) : null;
  const run: PageRun = { ...detail, steps, outcome: detail.outcome ?? "met" };
  return { run, extras: { now_s, frozenSince, demandedAt } };
}

/** A step of a report saved a moment ago, brought up to its last change `e`. */
function overlay(s: StepReport, e: StepEvent): StepReport {
  if (s.state === "skipped" || e.state === s.state) return s;
  const skipped = (e.state === "running" || e.state === "done") &&
    (e.detail ?? "").startsWith(SKIP_DETAIL);
  const state = skipped ? "skipped" : e.state;
  const out: StepReport = { ...s, state };
  if (state === "running" && s.start_s === null) out.start_s = e.at;
  const ended = state === "done" || state === "failed" || state === "cancelled";
  if (ended && s.end_s === null && s.start_s !== null) out.end_s = e.at;
  if (s.detail && state !== "running") delete out.detail; // it waited for a person; no more
  return out;
}

/** Each step's last event, and when each fetch was first named by a frozen step's wait. */
function fold(events: readonly StepEvent[]) {
  const last = new Map<string, StepEvent>();
  // A Map, not an object: step ids are the runbook's text ("__proto__" included).
  const demanded = new Map<string, number>();
  for (const e of events) {
    last.set(e.step, e);
    const waits = e.state === "frozen" ? /^waits for (.+)$/.exec(e.detail ?? "") : null;
    if (!waits) continue;
    for (const f of waits[1]!.split(", ")) if (!demanded.has(f)) demanded.set(f, e.at);
  }
  return { last, demandedAt: Object.fromEntries(demanded) };
}
