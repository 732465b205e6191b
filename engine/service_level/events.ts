/**
 * Service-level samples as the store keeps them and as `GET /runs/ID/events` sends them
 * (`event: sl`), pure. A stored sample is a row `{ seq, probe, t_s, value, ok, error }` (`seq`
 * increasing per run, in the order samples were taken); the stream sends each row once, in `seq`
 * order, with no SSE id (like `progress`: a client that reconnects reads `GET /runs/ID`, whose
 * report has every sample so far, and dedupes on `seq`).
 *
 * @module
 */
import { z } from "zod";
import type { Sample } from "./measures.ts";
import { reportSample } from "./report.ts";

/** A sample as the store keeps it. */
export interface SlSampleRow {
  /** Increasing per run, in the order the samples were taken. */
  readonly seq: number;
  readonly probe: string;
  readonly t_s: number;
  readonly value: number | null;
  readonly ok: boolean;
  readonly error: string | null;
}

/** `event: sl` (no SSE id). */
export const SlEventSchema = z.object({
  seq: z.number().int().describe("the sample's place in the run's samples; dedupe on it"),
  probe: z.string(),
  t_s: z.number().describe("when the probe started, seconds from the start of the run"),
  value: z.number().nullable().describe("latency in ms (http, tcp) or the number printed (run)"),
  ok: z.boolean(),
  error: z.string().optional().describe("why the sample failed"),
}).strict();

/** The body of an `sl` event. */
export type SlEventBody = z.infer<typeof SlEventSchema>;

/**
 * The row to store for sample `s` of `probe`, `seq` being the run's next sample number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sampleRow } from "./events.ts";
 * assert.deepEqual(sampleRow(3, "api", { t_s: 1.5, value: null, ok: false, error: "HTTP 503" }), {
 *   seq: 3, probe: "api", t_s: 1.5, value: null, ok: false, error: "HTTP 503",
 * });
 * ```
 */
export function sampleRow(seq: number, probe: string, s: Sample): SlSampleRow {
  return { seq, probe, t_s: s.t_s, value: s.value, ok: s.ok, error: s.ok ? null : s.error ?? null };
}

/**
 * The stored rows back as samples by probe, in time order (for the report).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { samplesByProbe } from "./events.ts";
 * const rows = [
 *   { seq: 2, probe: "api", t_s: 2, value: 9, ok: true, error: null },
 *   { seq: 1, probe: "api", t_s: 1, value: 8, ok: true, error: null },
 * ];
 * assert.deepEqual(samplesByProbe(rows).get("api")!.map((s) => s.value), [8, 9]);
 * ```
 */
export function samplesByProbe(rows: readonly SlSampleRow[]): Map<string, Sample[]> {
  const out = new Map<string, Sample[]>();
  for (const r of [...rows].sort((a, b) => a.t_s - b.t_s || a.seq - b.seq)) {
    const s: Sample = r.ok
      ? { t_s: r.t_s, value: r.value, ok: true }
      : { t_s: r.t_s, value: r.value, ok: false, error: r.error ?? "failed" };
    const list = out.get(r.probe);
    if (list) list.push(s);
    else out.set(r.probe, [s]);
  }
  return out;
}

/**
 * The `sl` events for the rows after `afterSeq` (the last one a client was sent), in `seq`
 * order, and the new `afterSeq`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { slEvents } from "./events.ts";
 * const rows = [{ seq: 1, probe: "api", t_s: 1, value: 8.25, ok: true, error: null }];
 * const { events, after } = slEvents(rows, 0);
 * assert.deepEqual(events, [{ seq: 1, probe: "api", t_s: 1, value: 8.25, ok: true }]);
 * assert.equal(slEvents(rows, after).events.length, 0);
 * ```
 */
export function slEvents(
  rows: readonly SlSampleRow[],
  afterSeq: number,
): { events: SlEventBody[]; after: number } {
  const fresh = rows.filter((r) => r.seq > afterSeq).sort((a, b) => a.seq - b.seq);
  const events = fresh.map((r): SlEventBody => {
    const s = reportSample(
      r.ok
        ? { t_s: r.t_s, value: r.value, ok: true }
        : { t_s: r.t_s, value: r.value, ok: false, error: r.error ?? "failed" },
    );
    return { seq: r.seq, probe: r.probe, ...s };
  });
  return { events, after: fresh.length ? fresh[fresh.length - 1]!.seq : afterSeq };
}

/** Samples a new `sl` stream replays at once (older ones are in the report it reads first). */
export const SL_REPLAY = 200;

/**
 * Like {@link slEvents}, for rows already in `seq` order (a run's feed): found by bisection, so a
 * poll costs what is new, not the whole run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { slEventsSorted } from "./events.ts";
 * const rows = [1, 2, 3].map((seq) => ({ seq, probe: "api", t_s: seq, value: 5, ok: true, error: null }));
 * const { events, after } = slEventsSorted(rows, 1);
 * assert.deepEqual(events.map((e) => e.seq), [2, 3]);
 * assert.equal(after, 3);
 * ```
 */
export function slEventsSorted(
  rows: readonly SlSampleRow[],
  afterSeq: number,
): { events: SlEventBody[]; after: number } {
  let lo = 0, hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (rows[mid]!.seq <= afterSeq) lo = mid + 1;
    else hi = mid;
  }
  return slEvents(rows.slice(lo), afterSeq);
}
