/**
 * What the HTTP API shows of the store, computed once and served to every poller until the store
 * moves on: a run's live report with its state and predicted TTR, the list of runs. Each answer
 * carries an `ETag` (a hash of its body).
 *
 * An answer is at most `ttlMs` older than the store (100 ms by default; more for huge runs, so
 * that refreshing never takes more than a tenth of the time). The predicted TTR is recomputed at
 * most once a second (or ten times as rarely as it takes).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { SimulationError } from "../runbook/errors.ts";
import type { Estimates } from "../plan/graph.ts";
import { historyEstimates } from "../plan/history.ts";
import type { Runbook, Strategy } from "../runbook/model.ts";
import { type Prediction, predictRest, type StepStanding } from "../simulate/predict.ts";
import { missedObjectives, type Report } from "../schedule/report.ts";
import { runSummary, stateOf, storedRunbook } from "../live/runs.ts";
import { runServices } from "../live/services.ts";
import type { RunRecord, Store } from "../store/types.ts";
import type { RunDetail } from "./schemas.ts";
import { waitsForPerson } from "../schedule/waits.ts";

/** A computed answer: its JSON text, its strong ETag, and the headers to send with it. */
export interface Snapshot {
  readonly body: string;
  readonly etag: string;
  /** Headers of a `200` (built once, for every poller). */
  readonly headers: readonly [string, string][];
  /** Headers of a `304`. */
  readonly notModified: readonly [string, string][];
}

/** How fresh the views are kept. */
export interface ViewOptions {
  /**
   * Longest an answer is reused before the store is read again (ms, default 100; 0: read the
   * store for every request).
   */
  readonly ttlMs?: number;
  /** Wall clock in ms (tests pass their own). */
  readonly now?: () => number;
}

interface Cached {
  at: number;
  cost: number;
  snapshot: Snapshot | undefined;
  pending: Promise<Snapshot | undefined> | undefined;
  /** The run has ended: its answer never changes again. */
  final: boolean;
  /** The stored report text and state the snapshot was made from. */
  key: string;
}

interface Predicted {
  at: number;
  cost: number;
  value: Prediction | null;
  note: string | undefined;
}

type Planned = { runbook: Runbook; estimates: Estimates } | { error: string };

/** Most runs whose answers are kept in memory. */
const KEEP = 256;

/** The API's views of one store. */
export class RunsView {
  readonly store: Store;
  readonly #ttl: number;
  readonly #now: () => number;
  readonly #details = new Map<string, Cached>();
  readonly #lists = new Map<number, Cached>();
  readonly #plans = new Map<string, Promise<Planned>>();
  readonly #predictions = new Map<string, Predicted>();

  /** Views of `store`. */
  constructor(store: Store, options: ViewOptions = {}) {
    this.store = store;
    this.#ttl = options.ttlMs ?? 100;
    this.#now = options.now ?? Date.now;
  }

  /** `GET /runs/ID` without waiting: the answer if it is fresh enough to serve as it is. */
  peek(id: string): Snapshot | undefined {
    const c = this.#details.get(id);
    return c && (c.final || this.#fresh(c, this.#now())) ? c.snapshot : undefined;
  }

  #fresh(c: Cached, now: number): boolean {
    return this.#ttl > 0 && now - c.at < Math.max(this.#ttl, 10 * c.cost);
  }

  /** `GET /runs/ID`: undefined when there is no such run. */
  detail(id: string): Promise<Snapshot | undefined> {
    return this.#cached(this.#details, id, (prev) => this.#detail(id, prev));
  }

  /** The predicted TTR and BTN of a running run, as `GET /runs/ID` shows them (else null). */
  async predicted(id: string): Promise<Prediction | null> {
    const snapshot = await this.detail(id);
    const p = this.#predictions.get(id);
    return snapshot && p && !this.#details.get(id)?.final ? p.value : null;
  }

  /** `GET /runs`: the newest `limit` runs. */
  async list(limit: number): Promise<Snapshot> {
    return (await this.#cached(this.#lists, limit, async () => {
      const runs = await this.store.listRuns(limit);
      const now = this.#now();
      const rows = await Promise.all(
        runs.map(async (r) => runSummary(r, now, await stateOf(this.store, r, now))),
      );
      return { snapshot: snap(JSON.stringify(rows)), key: "" };
    }))!;
  }

  #cached<K>(
    map: Map<K, Cached>,
    key: K,
    compute: (prev: Cached | undefined) => Promise<
      { snapshot: Snapshot | undefined; final?: boolean; key: string }
    >,
  ): Promise<Snapshot | undefined> {
    const now = this.#now();
    let c = map.get(key);
    if (c && (c.final || this.#fresh(c, now))) return Promise.resolve(c.snapshot);
    if (c?.pending) return c.pending;
    if (!c) {
      if (map.size >= KEEP) map.delete(map.keys().next().value!);
      c = { at: 0, cost: 0, snapshot: undefined, pending: undefined, final: false, key: "" };
      map.set(key, c);
    }
    const entry = c;
    const started = performance.now();
    entry.pending = compute(entry).then((r) => {
      entry.cost = performance.now() - started;
      entry.at = this.#now();
      entry.snapshot = r.snapshot;
      entry.final = r.final === true;
      entry.key = r.key;
      return r.snapshot;
    }).finally(() => (entry.pending = undefined));
    return entry.pending;
  }

  async #detail(
    id: string,
    prev: Cached | undefined,
  ): Promise<{ snapshot: Snapshot | undefined; final?: boolean; key: string }> {
    const rec = await this.store.getRun(id);
    if (!rec) return { snapshot: undefined, key: "" };
    const now = this.#now();
    const state = await stateOf(this.store, rec, now);
    const ended = rec.state !== "running";
    const elapsed = ((ended ? rec.endedAt ?? now : now) - rec.startedAt) / 1000;
    const predicted = ended ? undefined : await this.#predict(rec, elapsed, now);
    const services = await runServices(
      this.store,
      id,
      () => storedRunbook(rec).catch(() => undefined),
    );
    const key = `${state}\n${JSON.stringify(predicted?.value)}\n${JSON.stringify(services)}\n` +
      rec.report;
    if (prev?.snapshot && prev.key === key) {
      return { snapshot: prev.snapshot, key, final: ended && !services.some((s) => s.alive) };
    }
    const report = rec.report ? JSON.parse(rec.report) as Report : emptyReport(rec);
    const detail: RunDetail = {
      ...report,
      outcome: ended ? report.outcome : null,
      missed: ended ? report.missed : missedObjectives(report, elapsed),
      state,
      drill: rec.drill,
      started_at: new Date(rec.startedAt).toISOString(),
      ended_at: rec.endedAt === null ? null : new Date(rec.endedAt).toISOString(),
      predicted: predicted?.value ?? null,
      ...(predicted?.note ? { predicted_note: predicted.note } : {}),
      services,
    };
    // A service may still die after its run ended: the answer stays live while one runs.
    const final = ended && !services.some((s) => s.alive);
    return { snapshot: snap(JSON.stringify(detail)), final, key };
  }

  /** The predicted TTR/BTN of a running run, recomputed at most once a second. */
  async #predict(rec: RunRecord, elapsed: number, now: number): Promise<Predicted> {
    const last = this.#predictions.get(rec.id);
    if (last && now - last.at < Math.max(1000, 10 * last.cost)) return last;
    const started = performance.now();
    let plan = this.#plans.get(rec.id);
    if (!plan) {
      plan = planOf(this.store, rec);
      if (this.#plans.size >= KEEP) this.#plans.delete(this.#plans.keys().next().value!);
      this.#plans.set(rec.id, plan);
    }
    const planned = await plan;
    let value: Prediction | null = null, note: string | undefined;
    if ("error" in planned) note = planned.error;
    else {
      const progress = new Map((await this.store.progress(rec.id)).map((p) => [p.step, p]));
      const steps = new Map<string, StepStanding>();
      for (const s of await this.store.steps(rec.id)) {
        const p = progress.get(s.step);
        steps.set(s.step, {
          state: s.state,
          startS: s.startS,
          endS: s.endS,
          ...(p ? { bytes: p.bytes, total: p.total } : {}),
          // Waiting for a person: its work has not started (the scheduler's `wait`).
          ...(waitsForPerson(s.state, s.detail) ? { waiting: true } : {}),
        });
      }
      try {
        const p = predictRest(planned.runbook, { elapsed, steps }, {
          strategy: rec.strategy as Strategy,
          estimates: planned.estimates,
        });
        value = p;
      } catch (e) {
        if (!(e instanceof SimulationError)) throw e;
        note = "a step not yet done has no estimate and no history: " +
          e.problems.map((x) => x.reason).join("; ");
      }
    }
    const out = { at: now, cost: performance.now() - started, value, note };
    this.#predictions.set(rec.id, out);
    if (this.#predictions.size > KEEP) {
      this.#predictions.delete(this.#predictions.keys().next().value!);
    }
    return out;
  }
}

/** The runbook of a run as it was started, and the estimates its history gives. */
async function planOf(store: Store, rec: RunRecord): Promise<Planned> {
  let runbook: Runbook;
  try {
    runbook = await storedRunbook(rec); // the text stored with the run; older runs: the file
  } catch (e) {
    return { error: `the runbook ${rec.file} cannot be loaded here: ${(e as Error).message}` };
  }
  const sha = createHash("sha256").update(runbook.text).digest("hex");
  if (sha !== rec.fileSha256) {
    return { error: `the runbook ${rec.file} changed since the run started` };
  }
  return { runbook, estimates: await historyEstimates(store, runbook) };
}

/** The report of a run whose engine has not saved one yet (its first moment). */
function emptyReport(rec: RunRecord): Report {
  return {
    runbook: rec.runbook,
    run: rec.id,
    mode: "live",
    strategy: rec.strategy as Strategy,
    outcome: "met",
    ttr_s: null,
    btn_s: null,
    milestones: {},
    objectives: { milestones: {} },
    missed: [],
    lower_bound: { ttr_s: 0, btn_s: 0 },
    bytes: { total: 0, on_demand: 0, prefetched: 0 },
    steps: [],
  };
}

function snap(body: string): Snapshot {
  const etag = `"${createHash("sha1").update(body).digest("base64url")}"`;
  const notModified: [string, string][] = [["ETag", etag], ["Cache-Control", "no-cache"]];
  return {
    body,
    etag,
    headers: [...notModified, ["Content-Type", "application/json"]],
    notModified,
  };
}
