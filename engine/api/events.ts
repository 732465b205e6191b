/**
 * `GET /runs/ID/events`: a run's events as Server-Sent Events, read from the store.
 *
 * - `step` (id `SEQ`): every step state change, in the order the engine recorded them. A step a
 *   drill skips is `skipped` (as in the report), though the engine records it running then done.
 * - `milestone` (id `SEQ.K`): the K-th milestone reached by step change SEQ (its last step done).
 * - `progress` (no id): a fetch's bytes, at most once per poll (4 a second) per fetch, and only
 *   when it moved; the engine samples once a second.
 * - `state` (no id): the run went from running to interrupted (its engine is gone) or back.
 * - `sl` (no id): a service-level sample as taken (`engine/service_level/events.ts`), each once;
 *   a new stream starts with the last few (the report it read first has the older ones).
 * - `end` (id `end`): the run ended; the stream closes after it.
 *
 * Step and milestone events form one durable sequence: a client that reconnects with the
 * `Last-Event-ID` it last saw gets everything after it, nothing twice; progress is a level, not
 * an edge, so a reconnecting client gets each fetch's current progress again. A client that
 * reconnects after `end` is answered `204 No Content`, which tells `EventSource` to stop.
 *
 * @module
 */
import type { SSEStreamingApi } from "hono/streaming";
import { SKIP_DETAIL } from "../live/live_run.ts";
import type { Report } from "../schedule/report.ts";
import type { FetchProgress, RunRecord, RunState, StepEvent, Store } from "../store/types.ts";
import { Feeds, type RunFeed } from "./feeds.ts";
import { SL_REPLAY, slEventsSorted } from "../service_level/events.ts";
import type { EndEventBody, ProgressEventBody, StepEventBody } from "./schemas.ts";

/** Where a client stands in a run's event sequence. */
export interface Cursor {
  /** The last step change seen (0: none). */
  readonly seq: number;
  /** Milestones of that change already seen. */
  readonly k: number;
  /** The client saw the end. */
  readonly end: boolean;
}

/**
 * Parses a `Last-Event-ID` header (absent: from the start).
 *
 * @returns undefined when the id is not one this API sends.
 * @example
 * ```ts
 * import { parseCursor } from "./events.ts";
 * import assert from "node:assert/strict";
 * assert.equal(parseCursor("12.1")?.k, 1);
 * assert.equal(parseCursor("x"), undefined);
 * ```
 */
export function parseCursor(id: string | undefined): Cursor | undefined {
  if (id === undefined || id.trim() === "") return { seq: 0, k: 0, end: false };
  if (id.trim() === "end") return { seq: 0, k: 0, end: true };
  const m = /^(\d{1,15})(?:\.(\d{1,6}))?$/.exec(id.trim());
  if (!m) return undefined;
  return { seq: Number(m[1]), k: Number(m[2] ?? 0), end: false };
}

/** Default most event streams open at once (each polls the store 4 times a second). */
export const DEFAULT_MAX_STREAMS = 100;

/**
 * Counts the event streams open on a server, up to a cap: a slot is taken before a stream
 * starts and given back when it ends, whatever ends it (client gone, run ended, shutdown).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StreamGate } from "./events.ts";
 * const gate = new StreamGate(1);
 * assert.equal(gate.tryOpen(), true);
 * assert.equal(gate.tryOpen(), false);
 * gate.close();
 * assert.equal(gate.open, 0);
 * ```
 */
export class StreamGate {
  /** The cap. */
  readonly max: number;
  /** The store reads the open streams share, by run. */
  readonly feeds: Feeds = new Feeds();
  #open = 0;
  #peak = 0;
  readonly #onBurstEnd: (() => void) | undefined;

  /**
   * A gate letting `max` streams through at once; `onBurstEnd` is called when the last of at
   * least 32 streams open at once has gone (to give memory back).
   */
  constructor(max: number = DEFAULT_MAX_STREAMS, onBurstEnd?: () => void) {
    if (!(max >= 1) || !Number.isInteger(max)) throw new RangeError(`max streams ${max}: not >= 1`);
    this.max = max;
    this.#onBurstEnd = onBurstEnd;
  }

  /** Streams open now. */
  get open(): number {
    return this.#open;
  }

  /** Takes a slot; false when all are taken. */
  tryOpen(): boolean {
    if (this.#open >= this.max) return false;
    this.#peak = Math.max(this.#peak, ++this.#open);
    return true;
  }

  /** Gives a slot back. */
  close(): void {
    if (this.#open > 0) this.#open--;
    if (this.#open > 0 || this.#peak < 32) return;
    this.#peak = 0;
    this.#onBurstEnd?.();
  }
}

/** How the stream polls the store. */
export interface StreamOptions {
  /** Between two looks at the store (ms, default 250). */
  readonly pollMs?: number;
  /** A comment line after this much silence, so proxies keep the connection (ms, 15000). */
  readonly keepAliveMs?: number;
  /** Ends the stream (the server is shutting down). */
  readonly signal?: AbortSignal;
  /** Store reads shared with the server's other streams (default: this stream's own). */
  readonly feeds?: Feeds;
}

/** Which milestones each step carries, and which have been reached. */
class Milestones {
  readonly #of = new Map<string, string>();
  readonly #left = new Map<string, Set<string>>();
  readonly #done = new Set<string>();
  #known = false;

  /** Learns the milestones of the run's steps from its report (saved on the engine's first turn). */
  learn(report: Report | null): void {
    if (this.#known || !report) return;
    this.#known = true;
    for (const s of report.steps) {
      if (s.milestone === undefined) continue;
      this.#of.set(s.id, s.milestone);
      const left = this.#left.get(s.milestone) ?? new Set();
      left.add(s.id);
      this.#left.set(s.milestone, left);
    }
    for (const id of this.#done) this.#reached(id);
  }

  /** A step change; returns the milestones it completes. */
  see(e: StepEvent): string[] {
    if (e.state !== "done") return [];
    this.#done.add(e.step);
    return this.#reached(e.step);
  }

  #reached(step: string): string[] {
    const name = this.#of.get(step);
    const left = name === undefined ? undefined : this.#left.get(name);
    if (!left?.delete(step) || left.size) return [];
    return [name!];
  }
}

/** The state a step event shows: drill-skipped steps are `skipped`, as in the report. */
class Shown {
  readonly #skipped = new Set<string>();

  state(e: StepEvent): StepEvent["state"] {
    if (e.state === "running" && e.detail?.startsWith(SKIP_DETAIL)) this.#skipped.add(e.step);
    return this.#skipped.has(e.step) && (e.state === "running" || e.state === "done")
      ? "skipped"
      : e.state;
  }
}

/**
 * Streams the events of `run` from `cursor` until the run ends, the client goes or `signal`
 * aborts.
 */
export async function streamEvents(
  stream: SSEStreamingApi,
  store: Store,
  run: RunRecord,
  cursor: Cursor,
  options: StreamOptions = {},
): Promise<void> {
  const pollMs = options.pollMs ?? 250, keepAliveMs = options.keepAliveMs ?? 15000;
  const stopped = () => stream.aborted || stream.closed || options.signal?.aborted === true;
  // The client going or the server stopping ends the wait between polls at once.
  const wake = new AbortController();
  const stop = () => wake.abort();
  stream.onAbort(stop);
  options.signal?.addEventListener("abort", stop, { once: true });
  const feeds = options.feeds ?? new Feeds();
  const feed = feeds.acquire(store, run);
  try {
    await follow(stream, feed, cursor, { pollMs, keepAliveMs, stopped, signal: wake.signal });
  } finally {
    feeds.release(feed);
    options.signal?.removeEventListener("abort", stop);
  }
}

async function follow(
  stream: SSEStreamingApi,
  feed: RunFeed,
  cursor: Cursor,
  o: { pollMs: number; keepAliveMs: number; stopped: () => boolean; signal: AbortSignal },
): Promise<void> {
  const { pollMs, keepAliveMs, stopped } = o;
  const fresh = pollMs * 0.8;
  const run = feed.rec;
  const milestones = new Milestones();
  const shown = new Shown();
  milestones.learn(parse(run.report));
  let after = 0, lastWrite = Date.now();
  const write = async (event: string, body: unknown, id?: string) => {
    await stream.writeSSE({ event, data: JSON.stringify(body), ...(id ? { id } : {}) });
    lastWrite = Date.now();
  };
  await stream.write("retry: 2000\n\n"); // how soon EventSource reconnects

  // Replay up to the cursor silently, then what the client missed of its last change.
  await feed.refresh(fresh);
  for (const e of feed.events) {
    if (e.seq > cursor.seq) break;
    after = e.seq;
    shown.state(e);
    const reached = milestones.see(e);
    if (e.seq === cursor.seq) {
      for (let k = cursor.k + 1; k <= reached.length; k++) {
        await write("milestone", { milestone: reached[k - 1]!, at: e.at }, `${e.seq}.${k}`);
      }
    }
  }

  const sent = new Map<string, FetchProgress>();
  let lastState: RunState | undefined;
  let slAfter = Math.max(0, (feed.sl.at(-1)?.seq ?? 0) - SL_REPLAY);
  while (!stopped()) {
    // The run first (the feed reads it first): events read after it ended are all of them.
    await feed.refresh(fresh);
    const rec = feed.rec;
    milestones.learn(parse(rec.report));
    for (const e of feed.events.slice(firstAfter(feed.events, after))) {
      after = e.seq;
      const body: StepEventBody = {
        seq: e.seq,
        step: e.step,
        state: shown.state(e),
        at: e.at,
        ...(e.detail ? { detail: e.detail } : {}),
      };
      await write("step", body, String(e.seq));
      const reached = milestones.see(e);
      for (let k = 1; k <= reached.length; k++) {
        await write("milestone", { milestone: reached[k - 1]!, at: e.at }, `${e.seq}.${k}`);
      }
    }
    const sl = slEventsSorted(feed.sl, slAfter);
    slAfter = sl.after;
    for (const body of sl.events) await write("sl", body);
    const state = feed.state;
    if (rec.state !== "running") {
      const report = parse(rec.report);
      const end: EndEventBody = {
        state,
        outcome: rec.outcome,
        ttr_s: report?.ttr_s ?? null,
        btn_s: report?.btn_s ?? null,
      };
      await write("end", end, "end");
      return;
    }
    if (lastState !== undefined && state !== lastState) await write("state", { state });
    lastState = state;
    for (const body of moved(feed.progress, sent)) await write("progress", body);
    if (Date.now() - lastWrite >= keepAliveMs) {
      await stream.write(": keep-alive\n\n");
      lastWrite = Date.now();
    }
    await sleep(pollMs, o.signal);
  }
}

/** The progress events of the fetches that moved since `sent` (which it updates). */
function moved(progress: readonly FetchProgress[], sent: Map<string, FetchProgress>) {
  const out: ProgressEventBody[] = [];
  for (const p of progress) {
    const prev = sent.get(p.step);
    if (prev && prev.bytes === p.bytes && prev.total === p.total) continue;
    const seconds = prev ? (p.at - prev.at) / 1000 : 0;
    out.push({
      step: p.step,
      bytes: p.bytes,
      total: p.total,
      demanded: p.demanded,
      rate: prev && seconds > 0 ? Math.round((p.bytes - prev.bytes) / seconds) : null,
    });
    sent.set(p.step, p);
  }
  return out;
}

/** The index of the first event with `seq > after` (events are in `seq` order). */
function firstAfter(events: readonly StepEvent[], after: number): number {
  let lo = 0, hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (events[mid]!.seq <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function parse(text: string | null): Report | null {
  return text ? JSON.parse(text) as Report : null;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
