/**
 * A source in its simplest shape: something that opens a stream of bytes from an offset. The
 * fetch kind does the rest as for its built-in sources: the link's pacing, progress, the sha256
 * computed while streaming, continuing after the bytes an interrupted attempt left, and the
 * atomic rename.
 *
 * @module
 */
import type { Source } from "../../kind.ts";
import type { Attempt, Outcome } from "../attempt.ts";
import { openSink } from "../sink.ts";

/** What {@linkcode StreamedSource.open} gives. */
export interface Opened {
  /**
   * The bytes, from `offset`. A chunk may reuse the memory of the one before: each is copied or
   * written before the next is asked for.
   */
  readonly body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /** Where the bytes start: the offset asked for, or 0 when the source can only start over. */
  readonly offset?: number;
  /** The size of the whole data set, when the source knows it. */
  readonly size?: number;
}

/** What {@linkcode StreamedSource.open} is told. */
export interface OpenRequest {
  /** The first byte wanted (bytes before it are under tmp already). */
  readonly offset: number;
  /** Aborted when the attempt stops (the run is cancelled, or the attempt timed out). */
  readonly signal: AbortSignal;
  /** One line for the step's log. */
  readonly log: (line: string) => void;
}

/** A source given by how it opens a location: see {@linkcode streamedSource}. */
export interface StreamedSource extends Omit<Source, "fetch" | "matches"> {
  /** Whether it serves `from` (default: `from` starts with one of its schemes and `://`). */
  matches?(from: string): boolean;
  /**
   * Opens `from` at `request.offset`. Throw a `SourceFailure` for a failure worth telling
   * (`retry: false` when another attempt cannot help).
   */
  open(from: string, request: OpenRequest): Promise<Opened>;
}

/**
 * A {@linkcode Source} from a function that opens a stream of bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { streamedSource } from "./stream.ts";
 *
 * const toy = streamedSource({
 *   key: "toy",
 *   label: "toy://",
 *   schemes: ["toy"],
 *   open: (from) => Promise.resolve({ body: [new TextEncoder().encode(from)] }),
 * });
 * assert(toy.matches("toy://x"));
 * assert(!toy.matches("toys://x"));
 * ```
 */
export function streamedSource(def: StreamedSource): Source {
  const { open, matches, ...rest } = def;
  const prefixes = def.schemes.map((s) => `${s.toLowerCase()}://`);
  return {
    ...rest,
    matches: matches ?? ((from) => prefixes.some((p) => from.toLowerCase().startsWith(p))),
    fetch: (from, attempt) => streamInto(from, attempt, open),
  };
}

async function streamInto(
  from: string,
  attempt: Attempt,
  open: StreamedSource["open"],
): Promise<Outcome> {
  const sink = await openSink(attempt, true);
  attempt.keepTmpOnAbort = true;
  try {
    const request = { offset: sink.bytes, signal: attempt.signal, log: attempt.ctx.log };
    const opened = await open(from, request);
    if ((opened.offset ?? request.offset) !== sink.bytes) {
      if (opened.offset !== 0) {
        throw new Error(`${attempt.label}: opened at an offset not asked for`);
      }
      await sink.reset();
    }
    if (opened.size !== undefined) sink.total = opened.size;
    for await (const chunk of opened.body) {
      attempt.signal.throwIfAborted();
      await attempt.take(chunk.length);
      await sink.push(chunk);
    }
    const { bytes, digest } = await sink.finish();
    return { ok: true, bytes, digest, resumed: sink.resumed, synced: true };
  } finally {
    await sink.close();
  }
}
