/**
 * The `http(s)://` source of a fetch: one attempt streams the body into the temporary file,
 * continuing after the bytes already there with `Range: bytes=N-`.
 *
 * - A connection dropped mid-body (the reader fails, or the body ends before its
 *   `Content-Length`) is resumed at once, after a short backoff, with a Range request from the
 *   bytes received, up to {@linkcode MAX_RESUMES} times per attempt. After the first answer of
 *   the call, resumes carry `If-Range` (its strong ETag or Last-Modified), so a file that changed
 *   on the server is fetched again whole rather than spliced.
 * - 206 continues; 200 to a Range request (a server without ranges, or a changed file) starts
 *   over from byte 0; 416 means the temporary file already holds the whole file (when the
 *   server's size matches) or else starts over.
 * - 5xx, 429 and network errors fail the attempt (the caller retries); any other 4xx or 3xx
 *   fails the source at once, with the status.
 * - `Accept-Encoding: identity`: the bytes hashed and resumed are the bytes of the file.
 *
 * @module
 */

import { describeError, SourceFailure } from "../attempt.ts";
import type { Attempt, Outcome } from "../attempt.ts";
import { openSink, type Sink } from "../sink.ts";

/** Resumes of dropped connections allowed within one attempt. */
export const MAX_RESUMES = 5;
/** The largest first delay before a resume, milliseconds (doubled after each). */
const RESUME_DELAY_MS = 200;

/** A connection that broke while the body was read. */
class Dropped extends Error {}

/** Parses `Content-Range`: `bytes START-END/TOTAL`, or `bytes *` + `/TOTAL` (416 answers). */
function parseContentRange(
  header: string | null,
): { start?: number; total?: number } | undefined {
  if (header === null) return undefined;
  const match = /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)\s*$/i.exec(header);
  if (!match) return undefined;
  return {
    start: match[1] === undefined ? undefined : Number(match[1]),
    total: match[2] === "*" ? undefined : Number(match[2]),
  };
}

/** The validator for `If-Range`: a strong ETag, else Last-Modified. */
function validatorOf(headers: Headers): string | undefined {
  const etag = headers.get("etag");
  if (etag !== null && !etag.startsWith("W/")) return etag;
  return headers.get("last-modified") ?? undefined;
}

function statusLine(response: Response): string {
  return `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
}

/**
 * Bytes one read of the body may fill: the reads land in one buffer, reused. A read gives what
 * the connection holds (about 100 KiB at a time on a fast one), taken on the link at once: the
 * size bounds how far one read may run ahead of a fetch's share of the link.
 */
const READ_SIZE = 256 << 10;

/**
 * A reader of the body: BYOB where the stream allows it (Deno's fetch bodies do), so every read
 * lands in the same buffer instead of a fresh one per chunk (the allocations cost more CPU than
 * the bytes themselves); the default reader otherwise.
 */
function readerOf(body: ReadableStream<Uint8Array>): ReadableStreamReader<Uint8Array> {
  try {
    return body.getReader({ mode: "byob" });
  } catch {
    return body.getReader();
  }
}

/**
 * Streams the body into the sink: each read is taken on the link, then handed to the sink, which
 * copies it or writes it before the next read reuses the buffer.
 */
async function pump(
  reader: ReadableStreamReader<Uint8Array>,
  sink: Sink,
  attempt: Attempt,
): Promise<void> {
  let buffer: Uint8Array | undefined = reader instanceof ReadableStreamBYOBReader
    ? new Uint8Array(READ_SIZE)
    : undefined;
  for (;;) {
    let result: ReadableStreamReadResult<Uint8Array>;
    try {
      result = buffer === undefined
        ? await (reader as ReadableStreamDefaultReader<Uint8Array>).read()
        : await (reader as ReadableStreamBYOBReader).read(buffer);
    } catch (error) {
      throw attempt.signal.aborted ? error : new Dropped(describeError(error));
    }
    if (result.done) return;
    const chunk = result.value;
    if (buffer !== undefined) buffer = new Uint8Array(chunk.buffer); // the read moved it
    await attempt.take(chunk.length);
    await sink.push(chunk);
  }
}

/**
 * One attempt of an http(s) source into `spec.tmp`. Throws a {@linkcode SourceFailure}, or the
 * abort reason of `attempt.signal`.
 *
 * @example A file served on 127.0.0.1
 * ```ts ignore
 * const outcome = await fetchHttp("http://127.0.0.1:8000/db.dump", attempt);
 * ```
 */
export async function fetchHttp(url: string, attempt: Attempt): Promise<Outcome> {
  const { spec, ctx } = attempt;
  const sink = await openSink(attempt, true);
  attempt.keepTmpOnAbort = true;
  try {
    let validator: string | undefined;
    let drops = 0;
    for (;;) {
      const offset = sink.bytes;
      const headers = new Headers({ "accept-encoding": "identity" });
      if (offset > 0) {
        headers.set("range", `bytes=${offset}-`);
        if (validator !== undefined) headers.set("if-range", validator);
      }
      let response: Response;
      try {
        response = await fetch(url, { headers, signal: attempt.signal });
      } catch (error) {
        if (attempt.signal.aborted) throw error;
        throw new SourceFailure(`request failed: ${describeError(error)}`, true);
      }
      if (response.status === 416 && offset > 0) {
        await response.body?.cancel();
        const total = parseContentRange(response.headers.get("content-range"))?.total;
        if (total === offset) break; // tmp already holds the whole file
        ctx.log(`${attempt.label}: the server has no byte ${offset}: restart from byte 0`);
        await sink.reset();
        continue;
      }
      if (!response.ok) {
        await response.body?.cancel();
        const retry = response.status >= 500 || response.status === 429;
        throw new SourceFailure(statusLine(response), retry);
      }
      const length = response.headers.get("content-length");
      if (response.status === 206) {
        const range = parseContentRange(response.headers.get("content-range"));
        if (range?.start !== offset) {
          await response.body?.cancel();
          ctx.log(`${attempt.label}: the server answered another range: restart from byte 0`);
          await sink.reset();
          continue;
        }
        sink.resumed = true;
        sink.total = range.total ?? spec.size;
      } else {
        if (offset > 0) {
          ctx.log(`${attempt.label}: the server sent the whole file (${statusLine(response)})`);
          await sink.reset();
        }
        sink.total = length === null ? spec.size : Number(length);
      }
      validator ??= validatorOf(response.headers);
      const start = sink.bytes;
      const end = length === null ? undefined : start + Number(length);
      if (response.body === null) {
        throw new SourceFailure(`${statusLine(response)} without a body`, true);
      }
      const reader = readerOf(response.body);
      let why: string;
      try {
        await pump(reader, sink, attempt);
        if (end === undefined || sink.bytes >= end) break;
        why = `the body ended after ${sink.bytes - start} of ${end - start} bytes`;
      } catch (error) {
        if (!(error instanceof Dropped)) throw error;
        why = error.message;
      } finally {
        reader.cancel().catch(() => {});
      }
      drops++;
      if (drops > MAX_RESUMES) {
        throw new SourceFailure(
          `connection dropped ${drops} times, last at byte ${sink.bytes}: ${why}`,
          true,
        );
      }
      await sink.drain();
      const delay = Math.min(spec.backoffMs ?? 1000, RESUME_DELAY_MS) * 2 ** (drops - 1);
      ctx.log(`${attempt.label}: connection dropped at byte ${sink.bytes} (${why}); resuming`);
      await ctx.clock.sleep(delay, attempt.signal);
    }
    const { bytes, digest } = await sink.finish();
    return { ok: true, bytes, digest, resumed: sink.resumed, synced: true };
  } finally {
    await sink.close();
  }
}
