/**
 * `thaw serve` guards itself, over real sockets on 127.0.0.1: a cap on open event streams (503
 * beyond it), a timeout for clients that never finish their request headers (slowloris), and
 * every slot given back when clients go.
 *
 * @module
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { hostname } from "node:os";
import { join } from "node:path";
import { StreamGate } from "../engine/api/events.ts";
import { type ApiServer, serveApi } from "../engine/api/serve.ts";
import { newRunId } from "../engine/schedule/report.ts";
import { openStore } from "../engine/store/mod.ts";
import type { Store } from "../engine/store/types.ts";

/** A store with one run whose engine is alive (this process): its event streams stay open. */
async function withRun(
  body: (store: Store, run: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-serve-limits-" });
  const store = await openStore(join(dir, "state.db"));
  try {
    const run = newRunId();
    await store.createRun({
      id: run,
      runbook: "guarded",
      file: join(dir, "rb.yaml"),
      fileSha256: "0".repeat(64),
      mode: "live",
      drill: true,
      strategy: "aggressive",
      vars: {},
      steps: ["a"],
      startedAt: Date.now(),
      pid: Deno.pid,
      host: hostname(),
    });
    await body(store, run);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Waits until `probe` holds, for at most `ms`. */
async function until(what: string, probe: () => boolean, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Opens an event stream and reads its first bytes (the stream is then surely counted). */
async function openStream(server: ApiServer, run: string, signal: AbortSignal) {
  const res = await fetch(`${server.url}/runs/${run}/events`, { signal });
  if (res.status === 200) {
    const reader = res.body!.getReader();
    await reader.read();
    return { res, reader };
  }
  return { res, reader: undefined };
}

Deno.test("serveApi() answers 503 with a JSON error beyond its cap on event streams, and serves again once clients go", async () => {
  await withRun(async (store, run) => {
    const server = await serveApi({ store, listen: "127.0.0.1:0", maxStreams: 3 });
    const clients = Array.from({ length: 3 }, () => new AbortController());
    try {
      for (const c of clients) equal((await openStream(server, run, c.signal)).res.status, 200);
      equal(server.openStreams, 3);
      const refused = await fetch(`${server.url}/runs/${run}/events`);
      equal(refused.status, 503);
      equal(refused.headers.get("retry-after"), "5");
      const body = await refused.json();
      equal(body.status, 503);
      match(body.error, /at most 3 at once \(THAW_MAX_STREAMS raises it\)/);
      // Other endpoints still answer.
      const detail = await fetch(`${server.url}/runs/${run}`);
      equal(detail.status, 200);
      await detail.body?.cancel();
      clients[0]!.abort();
      await until("a slot given back", () => server.openStreams === 2);
      const again = new AbortController();
      clients.push(again);
      equal((await openStream(server, run, again.signal)).res.status, 200);
    } finally {
      for (const c of clients) c.abort();
      await server.close();
    }
  });
});

Deno.test("serveApi() disconnects a client that never finishes its request headers, within the header timeout", async () => {
  await withRun(async (store) => {
    const server = await serveApi({ store, listen: "127.0.0.1:0", headersTimeoutMs: 300 });
    const port = Number(new URL(server.url).port);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(new TextEncoder().encode("GET /runs HTTP/1.1\r\nHost: x\r\nX-Slow: "));
      // Read until the server ends the connection; give up (fail) well after the timeout.
      const got: number[] = [];
      const buf = new Uint8Array(4096);
      const closed = (async () => {
        while (true) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) return true;
          got.push(...buf.subarray(0, n));
        }
      })();
      const verdict = await Promise.race([
        closed,
        new Promise<false>((r) => setTimeout(() => r(false), 5000)),
      ]);
      ok(verdict, "the half-sent request still holds its connection after 5 s");
      match(new TextDecoder().decode(new Uint8Array(got)), /^(HTTP\/1\.1 408|$)/);
      // A whole request on a fresh connection is served as usual.
      equal(await (await fetch(`${server.url}/healthz`)).text(), "ok");
    } finally {
      try {
        conn.close();
      } catch { /* closed by the server */ }
      await server.close();
    }
  });
});

Deno.test("serveApi() gives back every stream slot and connection, when 50 clients open event streams and go", async () => {
  await withRun(async (store, run) => {
    const server = await serveApi({ store, listen: "127.0.0.1:0", maxStreams: 50 });
    const clients = Array.from({ length: 50 }, () => new AbortController());
    try {
      const opened = await Promise.all(clients.map((c) => openStream(server, run, c.signal)));
      deepEqual(new Set(opened.map((o) => o.res.status)), new Set([200]));
      equal(server.openStreams, 50);
      equal(server.followedRuns, 1, "50 streams of one run share one feed");
      const refused = await fetch(`${server.url}/runs/${run}/events`);
      equal(refused.status, 503);
      await refused.body?.cancel();
      for (const c of clients) c.abort();
      await until("every slot given back", () => server.openStreams === 0);
      await until("every connection closed", () => server.connections === 0);
      equal(server.followedRuns, 0, "a run's shared store reads outlive its streams");
    } finally {
      for (const c of clients) c.abort();
      await server.close();
    }
  });
});

Deno.test("StreamGate calls its burst-end hook once, when the last of a burst of streams goes", () => {
  let calls = 0;
  const gate = new StreamGate(100, () => calls++);
  for (let i = 0; i < 40; i++) ok(gate.tryOpen());
  for (let i = 0; i < 39; i++) gate.close();
  equal(calls, 0, "streams are still open");
  gate.close();
  equal(calls, 1);
  equal(gate.open, 0);
  // A few streams are no burst: nothing to give back.
  ok(gate.tryOpen());
  gate.close();
  equal(calls, 1);
});
