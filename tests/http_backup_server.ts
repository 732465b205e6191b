/**
 * A real HTTP server on 127.0.0.1 (or another address of this host) for testing fetches: it
 * serves the files of a directory, honours `Range: bytes=N-` (206, or 416 past the end) and
 * `If-Range`, and injects the faults of a flaky backup tier on demand: a connection dropped after
 * N body bytes (once), 503 answers, corrupt bytes, Range requests ignored, or answers that start
 * only after a delay.
 *
 * Run it on its own (`deno run -A tests/http_backup_server.ts DIR`) to serve DIR from another
 * process: it prints its base URL on the first line of stdout and serves until killed.
 *
 * @module
 */

/** Faults to inject; change them between requests through {@linkcode BackupServer.faults}. */
export interface Faults {
  /** Drop the connection after this many body bytes of the next full or partial answer (once). */
  dropAfter?: number;
  /** Answer this many of the next requests with 503 (each answer decrements it). */
  fail503?: number;
  /** Answer this many of the next requests that carry `Range` with 503. */
  fail503Ranges?: number;
  /** Stop sending after this many body bytes of the next answer, keeping it open (once). */
  stallAfter?: number;
  /** Serve every file with its middle byte flipped (same size, wrong sha256). */
  corrupt?: boolean;
  /** Ignore `Range` and always answer 200 with the whole file. */
  ignoreRange?: boolean;
  /** Answer every request only after this many milliseconds (a source slow to start). */
  firstByteMs?: number;
}

/** One request the server answered. */
export interface ServedRequest {
  /** The URL's path, decoded. */
  readonly path: string;
  /** The `Range` header, if any. */
  readonly range: string | null;
  /** The status answered. */
  readonly status: number;
}

/** A running server. */
export interface BackupServer {
  /** Base URL with a trailing slash: `http://127.0.0.1:PORT/`. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** The faults to inject; mutable. */
  readonly faults: Faults;
  /** Every request answered, in order. */
  readonly requests: readonly ServedRequest[];
  /** Body bytes handed to the connection so far (including those of dropped answers). */
  readonly bytesSent: number;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

const CHUNK = 1 << 20;

/**
 * Starts serving `dir` on 127.0.0.1 (or `options.hostname`, an address of this host: the URL
 * then names it) on a free port.
 *
 * @example Serve a directory
 * ```ts ignore
 * const server = startBackupServer(dir, { fail503: 1 });
 * const response = await fetch(server.url + "db.dump"); // 503
 * await response.body?.cancel();
 * await server.close();
 * ```
 */
export function startBackupServer(
  dir: string,
  faults: Faults = {},
  options: { hostname?: string } = {},
): BackupServer {
  const hostname = options.hostname ?? "127.0.0.1";
  const requests: ServedRequest[] = [];
  let bytesSent = 0;
  const controller = new AbortController();
  const stalls = new Set<() => void>();
  const answer = (path: string, range: string | null, status: number, init?: ResponseInit) => {
    requests.push({ path, range, status });
    return new Response(status >= 400 ? `${status}\n` : null, { status, ...init });
  };

  const handler = async (request: Request): Promise<Response> => {
    const path = decodeURIComponent(new URL(request.url).pathname);
    const range = request.headers.get("range");
    if ((faults.firstByteMs ?? 0) > 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          stalls.delete(done);
          resolve();
        };
        const timer = setTimeout(done, faults.firstByteMs);
        stalls.add(done);
      });
    }
    if (path.split("/").includes("..")) return answer(path, range, 400);
    if ((faults.fail503 ?? 0) > 0) {
      faults.fail503 = (faults.fail503 ?? 0) - 1;
      return answer(path, range, 503);
    }
    if (range !== null && (faults.fail503Ranges ?? 0) > 0) {
      faults.fail503Ranges = (faults.fail503Ranges ?? 0) - 1;
      return answer(path, range, 503);
    }
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(`${dir}/${path}`);
    } catch {
      return answer(path, range, 404);
    }
    if (!info.isFile) return answer(path, range, 404);
    const size = info.size;
    const etag = `"${size.toString(16)}-${(info.mtime?.getTime() ?? 0).toString(16)}"`;
    let start = 0;
    let status = 200;
    const ifRange = request.headers.get("if-range");
    const match = range && !faults.ignoreRange ? /^bytes=(\d+)-$/.exec(range) : null;
    if (match && (ifRange === null || ifRange === etag)) {
      start = Number(match[1]);
      if (start >= size) {
        return answer(path, range, 416, { headers: { "content-range": `bytes */${size}` } });
      }
      status = 206;
    }
    const headers = new Headers({
      "content-length": String(size - start),
      "accept-ranges": "bytes",
      "content-type": "application/octet-stream",
      etag,
    });
    if (status === 206) headers.set("content-range", `bytes ${start}-${size - 1}/${size}`);
    if (request.method === "HEAD") return answer(path, range, status, { headers });

    const file = await Deno.open(`${dir}/${path}`);
    if (start > 0) await file.seek(start, Deno.SeekMode.Start);
    const flip = faults.corrupt ? Math.floor(size / 2) : -1;
    let limit = faults.dropAfter ?? faults.stallAfter;
    const stall = faults.dropAfter === undefined && faults.stallAfter !== undefined;
    delete faults.dropAfter;
    if (stall) delete faults.stallAfter;
    let release = () => {};
    let position = start;
    const body = new ReadableStream<Uint8Array>({
      type: "bytes",
      async pull(stream) {
        const chunk = new Uint8Array(CHUNK);
        const n = await file.read(chunk);
        if (n === null) {
          file.close();
          stream.close();
          return;
        }
        let out = chunk.subarray(0, n);
        if (flip >= position && flip < position + n) out[flip - position]! ^= 0xff;
        if (limit !== undefined) {
          if (limit <= n) {
            out = out.subarray(0, limit);
            bytesSent += out.length;
            if (out.length > 0) stream.enqueue(out);
            file.close();
            if (stall) {
              // Send nothing more until the client goes away or the server closes.
              await new Promise<void>((resolve) => {
                release = resolve;
                stalls.add(resolve);
              });
              stalls.delete(release);
              stream.close();
              return;
            }
            // Give the connection a moment to flush what was sent, then break it.
            await new Promise((resolve) => setTimeout(resolve, 20));
            stream.error(new Error("fault injected: connection dropped"));
            return;
          }
          limit -= n;
        }
        position += n;
        bytesSent += n;
        stream.enqueue(out);
      },
      cancel() {
        release();
        try {
          file.close();
        } catch { /* already closed */ }
      },
    });
    requests.push({ path, range, status });
    return new Response(body, { status, headers });
  };

  const server = Deno.serve({
    hostname,
    port: 0,
    signal: controller.signal,
    onListen: () => {},
    onError: () => new Response("500\n", { status: 500 }),
  }, handler);
  const port = server.addr.port;
  return {
    url: `http://${hostname}:${port}/`,
    port,
    faults,
    requests,
    get bytesSent() {
      return bytesSent;
    },
    async close() {
      for (const release of stalls) release();
      controller.abort();
      await server.finished;
    },
  };
}

if (import.meta.main) {
  const dir = Deno.args[0];
  if (!dir) {
    console.error("usage: http_backup_server.ts DIR");
    Deno.exit(2);
  }
  const server = startBackupServer(dir);
  console.log(server.url);
}
