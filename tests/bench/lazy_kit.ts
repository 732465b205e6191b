/**
 * Small pieces `lazy_reads.ts` runs on: child processes, free ports, and the point queries it
 * sends to the example's catalog service, each answer checked against the generator.
 *
 * @module
 */
import { fnv1a, item, ROWS, sku } from "../../runbooks/tools/catalog_db.ts";

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A port nothing listens on now, on 127.0.0.1. */
export function freePort(): Promise<number> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return Promise.resolve(port);
}

/** `deno ARGS…`, its output discarded. */
export function spawn(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), { args, stdin: "null", stdout: "null", stderr: "null" })
    .spawn();
}

/** Waits until 127.0.0.1:`port` accepts connections (10 s at most). */
export async function waitTcp(port: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await sleep(20);
    }
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after 10 s`);
}

/** One point query for item `id` by its sku: whether it came back right, and its latency. */
export async function query(
  port: number,
  id: number,
): Promise<{ ok: boolean; ms: number; status: number }> {
  const began = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/sku/${encodeURIComponent(sku(id))}`);
  const body = res.ok ? await res.json() : (await res.body?.cancel(), undefined);
  const ms = performance.now() - began;
  const want = item(id);
  const ok = body?.id === id && body?.sku === want.sku && body?.check === fnv1a(want.image);
  return { ok, ms, status: res.status };
}

/** What a run of queries gave. */
export interface Answers {
  sent: number;
  ok: number;
  /** Answered 200 with another item than asked for. */
  wrong: number;
  /** No answer, or an error status. */
  failed: number;
  /** Milliseconds of the right answers. */
  latencies: number[];
}

/** Queries random items for `forMs`, one at a time, `gapMs` apart (seeded: the same items). */
export async function queries(port: number, forMs: number, gapMs: number): Promise<Answers> {
  const a: Answers = { sent: 0, ok: 0, wrong: 0, failed: 0, latencies: [] };
  let seed = 12345;
  const end = performance.now() + forMs;
  for (let i = 0; i < 100_000 && performance.now() < end; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    a.sent++;
    try {
      const r = await query(port, 1 + (seed % ROWS));
      if (r.ok) {
        a.ok++;
        a.latencies.push(r.ms);
      } else if (r.status === 200) a.wrong++;
      else a.failed++;
    } catch {
      a.failed++;
    }
    await sleep(gapMs);
  }
  return a;
}

/** The nearest-rank percentile `p` (0..1) of `values`; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
}
