/**
 * `GET /runs/ID/events`: a run's events as Server-Sent Events, read from the store.
 *
 * - `step` (id `SEQ`): every step state change, in the order the engine recorded them.
 * - `milestone` (id `SEQ.K`): the K-th milestone reached by step change SEQ (its last step done).
 * - `progress` (no id): a fetch's bytes, at most once per poll (4 a second) per fetch, and only
 *   when it moved; the engine samples once a second.
 * - `state` (no id): the run went from running to interrupted (its engine is gone) or back.
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
import type { Report } from "../report.ts";
import { runState } from "../runs.ts";
import type { FetchProgress, RunRecord, RunState, StepEvent, Store } from "../store/types.ts";
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
 * console.assert(parseCursor("12.1")?.k === 1 && parseCursor("x") === undefined);
 * ```
 */
export function parseCursor(id: string | undefined): Cursor | undefined {
  if (id === undefined || id.trim() === "") return { seq: 0, k: 0, end: false };
  if (id.trim() === "end") return { seq: 0, k: 0, end: true };
  const m = /^(\d{1,15})(?:\.(\d{1,6}))?$/.exec(id.trim());
  if (!m) return undefined;
  return { seq: Number(m[1]), k: Number(m[2] ?? 0), end: false };
}

/** How the stream polls the store. */
export interface StreamOptions {
  /** Between two looks at the store (ms, default 250). */
  readonly pollMs?: number;
  /** A comment line after this much silence, so proxies keep the connection (ms, 15000). */
  readonly keepAliveMs?: number;
  /** Ends the stream (the server is shutting down). */
  readonly signal?: AbortSignal;
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
  const milestones = new Milestones();
  milestones.learn(parse(run.report));
  let after = 0, lastWrite = Date.now();
  const write = async (event: string, body: unknown, id?: string) => {
    await stream.writeSSE({ event, data: JSON.stringify(body), ...(id ? { id } : {}) });
    lastWrite = Date.now();
  };
  await stream.write("retry: 2000\n\n"); // how soon EventSource reconnects

  // Replay up to the cursor silently, then what the client missed of its last change.
  for (const e of await store.stepEvents(run.id, 0)) {
    if (e.seq > cursor.seq) break;
    after = e.seq;
    const reached = milestones.see(e);
    if (e.seq === cursor.seq) {
      for (let k = cursor.k + 1; k <= reached.length; k++) {
        await write("milestone", { milestone: reached[k - 1]!, at: e.at }, `${e.seq}.${k}`);
      }
    }
  }

  const sent = new Map<string, FetchProgress>();
  let shown: RunState | undefined;
  while (!stopped()) {
    // The run first: events read after it ended are all of them.
    const rec = (await store.getRun(run.id)) ?? run;
    milestones.learn(parse(rec.report));
    for (const e of await store.stepEvents(run.id, after)) {
      after = e.seq;
      const body: StepEventBody = {
        seq: e.seq,
        step: e.step,
        state: e.state,
        at: e.at,
        ...(e.detail ? { detail: e.detail } : {}),
      };
      await write("step", body, String(e.seq));
      const reached = milestones.see(e);
      for (let k = 1; k <= reached.length; k++) {
        await write("milestone", { milestone: reached[k - 1]!, at: e.at }, `${e.seq}.${k}`);
      }
    }
    const state = runState(rec);
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
    if (shown !== undefined && state !== shown) await write("state", { state });
    shown = state;
    for (const p of await store.progress(run.id)) {
      const prev = sent.get(p.step);
      if (prev && prev.bytes === p.bytes && prev.total === p.total) continue;
      const seconds = prev ? (p.at - prev.at) / 1000 : 0;
      const body: ProgressEventBody = {
        step: p.step,
        bytes: p.bytes,
        total: p.total,
        demanded: p.demanded,
        rate: prev && seconds > 0 ? Math.round((p.bytes - prev.bytes) / seconds) : null,
      };
      await write("progress", body);
      sent.set(p.step, p);
    }
    if (Date.now() - lastWrite >= keepAliveMs) {
      await stream.write(": keep-alive\n\n");
      lastWrite = Date.now();
    }
    await sleep(pollMs, options.signal);
  }
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
