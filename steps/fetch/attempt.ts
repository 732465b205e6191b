/**
 * What the source kinds of a fetch share: one attempt's context (its signal, its timeout and its
 * pacing on the link) and the shape of what an attempt reports.
 *
 * @module
 */

import type { Hash } from "node:crypto";
import type { Clock, FetchContext, FetchSpec, SourceSpec } from "../types.ts";
import { type Source, sourceFor, sources } from "../kind.ts";
import "./sources/builtin.ts";

/** What one attempt of one source produced; the data, if any, is under `spec.tmp`. */
export type Outcome =
  | {
    readonly ok: true;
    /** Bytes under tmp. */
    readonly bytes: number;
    /** The sha256 of a single file, when `spec.sha256` is set. */
    readonly digest?: string;
    /** Part of the data came from an earlier attempt or run (resumed): a bad digest restarts. */
    readonly resumed: boolean;
    /** Already flushed to disk. */
    readonly synced: boolean;
  }
  | {
    readonly ok: false;
    /** Worth another attempt of this source (after a backoff). */
    readonly retry: boolean;
    /** One line for the SRE. */
    readonly reason: string;
  };

/** A failure a source kind reports by throwing, from deep inside a transfer. */
export class SourceFailure extends Error {
  /**
   * Makes a failure.
   *
   * @param message One line for the SRE.
   * @param retry Whether another attempt may succeed.
   */
  constructor(message: string, readonly retry: boolean) {
    super(message);
    this.name = "SourceFailure";
  }
}

/** The message of an error, on one line, without Deno's boilerplate. */
export function describeError(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s+/g, " ").trim() || "unknown error";
}

/**
 * A source for the SRE, without secrets: the password of a URL and its query (often a signature)
 * are hidden; a long command is cut (each source says how, see `Source.describe`).
 */
export function describeSource(source: SourceSpec): string {
  if (source.kind === "run") return describeWith(sourceNamed("run"), source.command);
  return describeWith(sourceFor(source.location), source.location);
}

function describeWith(source: Source | undefined, from: string): string {
  return source?.describe?.(from) ?? from;
}

function sourceNamed(key: string): Source | undefined {
  return sources().find((s) => s.key === key);
}

/** A duration for people: `250ms`, `30s`, `1.5s`. */
export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${Number((ms / 1000).toFixed(1))}s`;
}

/**
 * The per-attempt timeout. Time spent waiting for the link (the scheduler pausing or pacing the
 * fetch) is not counted: only the time the attempt could have made progress.
 */
export class AttemptTimer {
  readonly #timeout = new AbortController();
  readonly #done = new AbortController();
  readonly #clock: Clock;
  readonly #start: number;
  #paused = 0;
  #pausedAt: number | undefined;
  /** Whether the timeout fired. */
  fired = false;

  /**
   * Starts the timer; without `timeoutMs` it never fires.
   *
   * @param clock Where time comes from.
   * @param timeoutMs The limit, milliseconds.
   */
  constructor(clock: Clock, readonly timeoutMs?: number) {
    this.#clock = clock;
    this.#start = clock.now();
    if (timeoutMs !== undefined) this.#run(timeoutMs);
  }

  /** Aborted when the timeout fires. */
  get signal(): AbortSignal {
    return this.#timeout.signal;
  }

  async #run(limit: number): Promise<void> {
    let wait = limit;
    for (;;) {
      try {
        await this.#clock.sleep(wait, this.#done.signal);
      } catch {
        return;
      }
      const now = this.#clock.now();
      const active = now - this.#start - this.#paused -
        (this.#pausedAt === undefined ? 0 : now - this.#pausedAt);
      if (active >= limit) {
        this.fired = true;
        this.#timeout.abort(new Error(`timed out after ${formatMs(limit)}`));
        return;
      }
      wait = limit - active;
    }
  }

  /** Stops counting (while waiting for the link). */
  pause(): void {
    if (this.timeoutMs !== undefined) this.#pausedAt = this.#clock.now();
  }

  /** Counts again. */
  resume(): void {
    if (this.#pausedAt === undefined) return;
    this.#paused += this.#clock.now() - this.#pausedAt;
    this.#pausedAt = undefined;
  }

  /** Stops the timer for good. */
  dispose(): void {
    this.#done.abort();
  }
}

/** What the attempts of one fetch call share. */
export interface CallState {
  /** Bytes that crossed the link in the whole call so far; the source kinds add to it. */
  transferred: number;
  /**
   * The digest state of the bytes a streamed attempt left under tmp (its size and mtime then),
   * so that the next attempt continues without reading them again.
   */
  prefix?: { readonly bytes: number; readonly mtime: number; readonly hash: Hash };
}

/** One attempt of one source: what the source kinds get. */
export interface Attempt {
  /** The source, for log lines (no secrets: see {@linkcode describeSource}). */
  readonly label: string;
  /** The source as the fetch gives it (a `run:` source reads its shell and user here). */
  readonly source?: SourceSpec;
  /** The fetch. */
  readonly spec: FetchSpec;
  /** What the engine gave the fetch. */
  readonly ctx: FetchContext;
  /** Aborted by the run (`ctx.signal`) or by this attempt's timeout. */
  readonly signal: AbortSignal;
  /** This attempt's timeout. */
  readonly timer: AttemptTimer;
  /** What the attempts of this fetch call share. */
  readonly call: CallState;
  /** Waits for the link to let `bytes` more cross (not counted against the timeout). */
  take(bytes: number): Promise<void>;
  /**
   * Set by a source kind while it streams a single file into tmp: when the run aborts, those
   * bytes stay there for the next run to continue after.
   */
  keepTmpOnAbort: boolean;
}

/** Makes the context of one attempt; dispose of its timer when the attempt ends. */
export function newAttempt(
  label: string,
  spec: FetchSpec,
  ctx: FetchContext,
  call: CallState,
  source?: SourceSpec,
): Attempt {
  const timer = new AttemptTimer(ctx.clock, spec.timeoutMs);
  const signal = spec.timeoutMs === undefined
    ? ctx.signal
    : AbortSignal.any([ctx.signal, timer.signal]);
  const take = spec.timeoutMs === undefined
    ? (bytes: number) => ctx.link.take(bytes, ctx.signal)
    : async (bytes: number) => {
      timer.pause();
      try {
        await ctx.link.take(bytes, ctx.signal);
      } finally {
        timer.resume();
      }
    };
  return {
    label,
    spec,
    ctx,
    signal,
    timer,
    call,
    take,
    keepTmpOnAbort: false,
    ...(source ? { source } : {}),
  };
}
