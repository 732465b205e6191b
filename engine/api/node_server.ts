/**
 * Serving a fetch handler (`Request` in, `Response` out) with `node:http`, for its timeouts.
 *
 * `Deno.serve` (Deno 2.9) has no timeout for a client that opens a connection and never finishes
 * its request headers (slowloris): such a client holds its socket forever. Node's server, which
 * Deno 2.9 implements in full, closes it after `headersTimeout` (answering `408`), and ends any
 * request not received whole within `requestTimeout`; its checks run every
 * `connectionsCheckingInterval`. Response bodies are streamed with backpressure, and a client
 * that goes away cancels its body (an event stream stops at once).
 *
 * @module
 */
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** A fetch handler served over HTTP/1.1. */
export interface NodeServer {
  readonly hostname: string;
  readonly port: number;
  /** Open TCP connections. */
  connections(): number;
  /**
   * Stops accepting and lets the requests under way finish (for at most `graceMs`, default
   * 5000), then ends every connection. Event streams must be ended by their handler first.
   */
  close(graceMs?: number): Promise<void>;
}

/** Where and how to listen. */
export interface NodeServeOptions {
  readonly hostname: string;
  readonly port: number;
  /** Most ms a client may take to send its request headers. */
  readonly headersTimeoutMs: number;
  /** Most ms a client may take to send its whole request (headers and body). */
  readonly requestTimeoutMs: number;
}

/** Bodies larger than this are refused (`413`): the API takes no real request bodies. */
const MAX_BODY = 1 << 20;

/**
 * Serves `handler` until {@link NodeServer.close}.
 *
 * @throws the listening error (`EADDRINUSE`, `EACCES`...) as Node reports it.
 */
export async function serveNode(
  handler: (req: Request) => Response | Promise<Response>,
  options: NodeServeOptions,
): Promise<NodeServer> {
  const server = http.createServer({
    headersTimeout: options.headersTimeoutMs,
    requestTimeout: Math.max(options.requestTimeoutMs, options.headersTimeoutMs),
    connectionsCheckingInterval: Math.max(50, Math.min(1000, options.headersTimeoutMs / 4)),
    keepAliveTimeout: 5000,
  }, (req, res) => {
    respond(handler, req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  // Connections that never sent a byte (a client's spare connection) hold no request: at
  // shutdown they go at once, like idle keep-alive ones.
  const closeIdle = () => {
    server.closeIdleConnections();
    for (const s of sockets) if (s.bytesRead === 0) s.destroy();
  };
  return {
    hostname: addr.address,
    port: addr.port,
    connections: () => sockets.size,
    close: (graceMs = 5000) =>
      new Promise<void>((resolve) => {
        const late = setTimeout(() => server.closeAllConnections(), graceMs);
        // Keep-alive connections go as soon as their answer is out.
        const idle = setInterval(closeIdle, 20);
        server.close(() => {
          clearTimeout(late);
          clearInterval(idle);
          resolve();
        });
        closeIdle();
      }),
  };
}

/** One exchange: the request as a `Request`, the `Response` written back. */
async function respond(
  handler: (req: Request) => Response | Promise<Response>,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const raw = req.rawHeaders, pairs: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  const method = req.method ?? "GET";
  let body: Uint8Array | undefined;
  if (method !== "GET" && method !== "HEAD") {
    body = await readBody(req);
    if (body === undefined) {
      res.writeHead(413, { "Content-Type": "application/json", Connection: "close" });
      res.end(JSON.stringify({ error: "request body too large", status: 413 }));
      return;
    }
  }
  const request = new Request(`http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, {
    method,
    headers: pairs,
    ...(body?.length ? { body: body as BodyInit } : {}),
  });
  const response = await handler(request);
  const out: Record<string, string | string[]> = {};
  response.headers.forEach((v, k) => {
    out[k] = k === "set-cookie" ? response.headers.getSetCookie() : v;
  });
  res.writeHead(response.status, out);
  if (!response.body || method === "HEAD") {
    await response.body?.cancel().catch(() => {});
    res.end();
    return;
  }
  if (!/^text\/event-stream/.test(out["content-type"] as string ?? "")) {
    // A whole answer (JSON, text): one write.
    res.end(new Uint8Array(await response.arrayBuffer()));
    return;
  }
  await stream(response.body, res);
}

/** Streams a body (an event stream) with backpressure; the client going cancels it. */
async function stream(body: ReadableStream<Uint8Array>, res: http.ServerResponse): Promise<void> {
  const gone = new AbortController();
  res.once("close", () => gone.abort());
  if (res.destroyed) gone.abort(); // gone before its answer started
  const reader = body.getReader();
  gone.signal.addEventListener("abort", () => reader.cancel().catch(() => {}), { once: true });
  try {
    while (!gone.signal.aborted) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await drained(res, gone.signal);
    }
  } catch {
    // The client went away mid-body: nothing to tell it.
  } finally {
    reader.releaseLock();
    if (!gone.signal.aborted) res.end();
  }
}

function readBody(req: http.IncomingMessage): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    req.on("data", (c: Uint8Array) => {
      size += c.length;
      if (size > MAX_BODY) {
        req.removeAllListeners("data");
        req.resume();
        resolve(undefined);
      } else chunks.push(c);
    });
    req.once("end", () => {
      const all = new Uint8Array(size);
      let at = 0;
      for (const c of chunks) {
        all.set(c, at);
        at += c.length;
      }
      resolve(all);
    });
    req.once("error", reject);
  });
}

function drained(res: http.ServerResponse, gone: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      gone.removeEventListener("abort", done);
      resolve();
    };
    res.once("drain", done);
    gone.addEventListener("abort", done, { once: true });
  });
}
