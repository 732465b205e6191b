/**
 * Serving the API on a socket: `thaw serve` over the store, or `--listen` in the engine's own
 * process during `run` and `drill`.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import { type ApiOptions, createApp } from "./app.ts";

/** Where the API listens unless told otherwise. */
export const DEFAULT_LISTEN = "127.0.0.1:7070";

/** A running API server. */
export interface ApiServer {
  /** Where it listens, e.g. `http://127.0.0.1:7070`. */
  readonly url: string;
  /** Ends the event streams and stops the server. */
  close(): Promise<void>;
}

/**
 * Parses `--listen`: `HOST:PORT`, `[IPv6]:PORT`, `:PORT` or `PORT` (host 127.0.0.1).
 *
 * @example
 * ```ts
 * import { parseListen } from "./serve.ts";
 * const { hostname, port } = parseListen("8080");
 * console.assert(hostname === "127.0.0.1" && port === 8080);
 * console.assert(parseListen("[::1]:0").hostname === "::1");
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

/**
 * Serves the API at `listen` until {@link ApiServer.close}.
 *
 * @example
 * ```ts
 * import { serveApi } from "./serve.ts";
 * import { openStore } from "../store/mod.ts";
 * const store = await openStore(":memory:");
 * const server = serveApi({ store, listen: "127.0.0.1:0" });
 * const res = await fetch(`${server.url}/healthz`);
 * console.assert((await res.text()) === "ok");
 * await server.close();
 * await store.close();
 * ```
 */
export function serveApi(
  options: Omit<ApiOptions, "signal"> & { readonly listen: string },
): ApiServer {
  const { hostname, port } = parseListen(options.listen);
  const stop = new AbortController();
  const app = createApp({ ...options, signal: stop.signal });
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname, port, onListen: () => {} }, app.fetch);
  } catch (e) {
    const why = e instanceof Deno.errors.AddrInUse
      ? "the address is in use (another thaw serve?)"
      : (e as Error).message;
    throw new UsageError(`cannot listen on ${options.listen}: ${why}`);
  }
  const addr = server.addr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return {
    url: `http://${host}:${addr.port}`,
    async close() {
      stop.abort();
      await server.shutdown();
    },
  };
}
