/**
 * Serving the API on a socket: `thaw serve` over the store, or `--listen` in the engine's own
 * process during `run` and `drill`. The server guards itself: a cap on open event streams, and a
 * timeout for clients that never finish their request headers (see node_server.ts).
 *
 * @module
 */
import { UsageError } from "../runbook/errors.ts";
import { type ApiOptions, createApp } from "./app.ts";
import { DEFAULT_MAX_STREAMS, StreamGate } from "./events.ts";
import { type NodeServer, serveNode } from "./node_server.ts";
import { reclaimSoon } from "./reclaim.ts";

/** Where the API listens unless told otherwise. */
export const DEFAULT_LISTEN = "127.0.0.1:7070";

/** A running API server. */
export interface ApiServer {
  /** Where it listens, e.g. `http://127.0.0.1:7070`. */
  readonly url: string;
  /** Event streams open now (each holds a slot of `maxStreams` until its client goes). */
  readonly openStreams: number;
  /** Runs whose events the open streams follow (their shared store reads). */
  readonly followedRuns: number;
  /** TCP connections open now. */
  readonly connections: number;
  /**
   * Ends the event streams and stops the server. With `drainMs`, first gives the open streams up
   * to that long to end on their own: a run's stream ends after its `end` event, once it sees the
   * run ended in the store (`--listen`: a page watching the run gets its end).
   */
  close(options?: { readonly drainMs?: number }): Promise<void>;
}

/**
 * Parses `--listen`: `HOST:PORT`, `[IPv6]:PORT`, `:PORT` or `PORT` (host 127.0.0.1).
 *
 * @example
 * ```ts
 * import { parseListen } from "./serve.ts";
 * import assert from "node:assert/strict";
 * const { hostname, port } = parseListen("8080");
 * assert.equal(hostname, "127.0.0.1");
 * assert.equal(port, 8080);
 * assert.equal(parseListen("[::1]:0").hostname, "::1");
 * ```
 * @throws {UsageError} for anything else.
 */
export function parseListen(text: string): { hostname: string; port: number } {
  const m = /^(?:(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]\s]*)):)?(\d{1,5})$/.exec(text.trim());
  const port = Number(m?.[3]);
  if (!m || port > 65535) {
    throw new UsageError(
      `--listen ${text}: expected HOST:PORT (e.g. 127.0.0.1:7070), :PORT or PORT`,
    );
  }
  return { hostname: m[1] ?? (m[2] || "127.0.0.1"), port };
}

/** How the server guards itself; every field has a documented default. */
export interface ServeLimits {
  /**
   * Most event streams (`GET /runs/ID/events`) open at once; beyond it, `503`. Default
   * {@link DEFAULT_MAX_STREAMS}, or `THAW_MAX_STREAMS`.
   */
  readonly maxStreams?: number;
  /**
   * Most ms a client may take to send its request headers before it is disconnected (slowloris).
   * Default {@link DEFAULT_HEADERS_TIMEOUT_MS}, or `THAW_HEADERS_TIMEOUT_MS`.
   */
  readonly headersTimeoutMs?: number;
}

/** Default most ms to receive a request's headers. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;

/** `THAW_NAME` as a positive whole number, else `fallback`. */
function fromEnv(name: string, fallback: number): number {
  const text = Deno.env.get(name);
  if (text === undefined || text === "") return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !(n > 0)) {
    throw new UsageError(`${name}=${text}: expected a whole number above 0`);
  }
  return n;
}

/**
 * Serves the API at `listen` until {@link ApiServer.close}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serveApi } from "./serve.ts";
 * import { openStore } from "../store/mod.ts";
 * const store = await openStore(":memory:");
 * const server = await serveApi({ store, listen: "127.0.0.1:0" });
 * const res = await fetch(`${server.url}/healthz`);
 * assert.equal(await res.text(), "ok");
 * await server.close();
 * await store.close();
 * ```
 * @throws {UsageError} when it cannot listen there.
 */
export async function serveApi(
  options: Omit<ApiOptions, "signal" | "streams"> & ServeLimits & { readonly listen: string },
): Promise<ApiServer> {
  const { hostname, port } = parseListen(options.listen);
  const streams = new StreamGate(
    options.maxStreams ?? fromEnv("THAW_MAX_STREAMS", DEFAULT_MAX_STREAMS),
    () => reclaimSoon(),
  );
  const headersTimeoutMs = options.headersTimeoutMs ??
    fromEnv("THAW_HEADERS_TIMEOUT_MS", DEFAULT_HEADERS_TIMEOUT_MS);
  const stop = new AbortController();
  const app = createApp({ ...options, streams, signal: stop.signal });
  let server: NodeServer;
  try {
    server = await serveNode(app.fetch, {
      hostname,
      port,
      headersTimeoutMs,
      requestTimeoutMs: 2 * headersTimeoutMs,
    });
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === "EADDRINUSE"
      ? "the address is in use (another thaw serve?)"
      : (e as Error).message;
    throw new UsageError(`cannot listen on ${options.listen}: ${why}`);
  }
  const host = server.hostname.includes(":") ? `[${server.hostname}]` : server.hostname;
  return {
    url: `http://${host}:${server.port}`,
    get openStreams() {
      return streams.open;
    },
    get followedRuns() {
      return streams.feeds.size;
    },
    get connections() {
      return server.connections();
    },
    async close(o?: { readonly drainMs?: number }) {
      const until = Date.now() + (o?.drainMs ?? 0);
      while (streams.open > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
      stop.abort();
      await server.close();
    },
  };
}
