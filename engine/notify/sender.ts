/**
 * Sends notifications to webhooks without ever holding up the run: {@linkcode WebhookSender.send}
 * only queues (a bounded queue per webhook: when it is full, the oldest waiting notification is
 * dropped and counted); each webhook has one worker that POSTs its queue in order, with a
 * timeout per request and retries with exponential backoff (capped) on network errors, timeouts,
 * 408, 425, 429 and 5xx. Another 4xx or a redirect is not retried (the request itself is wrong:
 * thaw does not follow redirects with your headers).
 *
 * Every failed attempt, drop and give-up is one log line, with the address and error text
 * redacted (see `redact.ts`); {@linkcode WebhookSender.stats} and
 * {@linkcode WebhookSender.summary} say what was sent, failed and dropped, for the end of a run.
 *
 * @module
 */
import { formatDuration } from "../runbook/units.ts";
import type { Payload } from "./payload.ts";
import type { ResolvedWebhook } from "./resolve.ts";

/** How a sender queues and retries. */
export interface SenderOptions {
  /** Where failure lines go (default: stderr). */
  readonly log?: (line: string) => void;
  /** Most notifications waiting per webhook (default 100); the oldest goes first. */
  readonly queue?: number;
  /** Wait before the first retry, ms (default 1000); it doubles each retry. */
  readonly backoffMs?: number;
  /** Longest wait between attempts, ms (default 30000; also caps `Retry-After`). */
  readonly maxBackoffMs?: number;
}

/** What happened to the notifications of one webhook. */
export interface WebhookStats {
  /** The address, redacted. */
  readonly url: string;
  /** Delivered (a 2xx answer). */
  readonly sent: number;
  /** Given up on after their attempts, or not retried (4xx). */
  readonly failed: number;
  /** Dropped from a full queue, or still queued when the sender closed. */
  readonly dropped: number;
  /** Requests made, retries included. */
  readonly attempts: number;
  /** Waiting or in flight now. */
  readonly pending: number;
  /** The last failure's reason (redacted). */
  readonly lastError?: string;
}

/** One attempt's result. */
type Attempt = { ok: true } | { ok: false; reason: string; retry: boolean; afterMs?: number };

/** Longest part of a response body quoted in a log line. */
const BODY_QUOTED = 200;

/** Reads at most `most` bytes of a body as text, then lets the rest go. */
async function readSome(body: ReadableStream<Uint8Array> | null, most: number): Promise<string> {
  if (!body) return "";
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < most) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) all.set(c, (at += c.length) - c.length);
  return new TextDecoder().decode(all.subarray(0, most)).replace(/\s+/g, " ").trim();
}

/** An error's message with its causes (`fetch failed` alone says nothing). */
function errorText(e: unknown): string {
  const parts: string[] = [];
  for (let x = e, depth = 0; x !== undefined && x !== null && depth < 4; depth++) {
    const message = x instanceof Error ? x.message : String(x);
    if (message && !parts.includes(message)) parts.push(message);
    x = x instanceof Error ? x.cause : undefined;
  }
  return parts.join(": ") || "unknown error";
}

/** `Retry-After` in ms (seconds or an HTTP date), if given. */
function retryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const s = Number(value);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** The queue and worker of one webhook. */
class Lane {
  readonly hook: ResolvedWebhook;
  readonly #sender: WebhookSender;
  readonly #queue: Payload[] = [];
  #busy = false;
  #idle: (() => void)[] = [];
  sent = 0;
  failed = 0;
  dropped = 0;
  attempts = 0;
  lastError: string | undefined;

  constructor(hook: ResolvedWebhook, sender: WebhookSender) {
    this.hook = hook;
    this.#sender = sender;
  }

  get pending(): number {
    return this.#queue.length + (this.#busy ? 1 : 0);
  }

  push(p: Payload, max: number): void {
    if (this.#queue.length >= max) {
      const old = this.#queue.shift()!;
      this.dropped++;
      this.#sender.log(
        `thaw: notify: dropped the ${old.event} notification of ${old.at_s}s for ` +
          `${this.hook.shown}: ${max} were waiting (the webhook is down or slow); ` +
          `${this.dropped} dropped so far`,
      );
    }
    this.#queue.push(p);
    if (!this.#busy) {
      this.#busy = true;
      void this.#drain();
    }
  }

  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void> {
    if (!this.#busy) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Forgets what is queued (the sender closes); returns how many. */
  clear(): number {
    const n = this.#queue.length;
    this.#queue.length = 0;
    this.dropped += n;
    return n;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length && !this.#sender.closed) await this.#deliver(this.#queue.shift()!);
    } finally {
      this.#busy = false;
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  async #deliver(p: Payload): Promise<void> {
    const { hook } = this;
    const body = JSON.stringify(p);
    const tries = hook.retries + 1;
    for (let attempt = 1; attempt <= tries; attempt++) {
      if (this.#sender.closed) {
        this.dropped++; // stopped while it waited to try again
        return;
      }
      this.attempts++;
      const r = await this.#sender.post(hook, body);
      if (r.ok) {
        this.sent++;
        return;
      }
      const closed = this.#sender.closed;
      const last = closed || !r.retry || attempt === tries;
      const wait = Math.min(r.afterMs ?? this.#sender.backoff(attempt), this.#sender.maxBackoffMs);
      const next = closed
        ? "; thaw stopped, not retried"
        : !r.retry
        ? "; not retried: fix the webhook"
        : last
        ? "; gave up"
        : `; again in ${formatDuration(wait / 1000)}`;
      this.#sender.log(
        `thaw: notify: ${p.event} notification to ${hook.shown} failed: ${r.reason} ` +
          `(attempt ${attempt} of ${tries}${next})`,
      );
      if (last) {
        this.failed++;
        this.lastError = r.reason;
        return;
      }
      await this.#sender.sleep(wait);
    }
  }
}

/**
 * Sends payloads to the webhooks whose `on` lists their event; see the module's comment.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WebhookSender } from "./sender.ts";
 * const sender = new WebhookSender([]);
 * assert.equal(await sender.flush(100), true);
 * await sender.close();
 * ```
 */
export class WebhookSender {
  readonly #lanes: Lane[];
  readonly #queue: number;
  readonly #backoffMs: number;
  /** Longest wait between attempts, ms. */
  readonly maxBackoffMs: number;
  readonly #log: (line: string) => void;
  readonly #closing = new AbortController();
  readonly #client: Deno.HttpClient = Deno.createHttpClient({});
  #clientClosed = false;

  /** A sender to `hooks` (resolved for this run). */
  constructor(hooks: readonly ResolvedWebhook[], options: SenderOptions = {}) {
    this.#lanes = hooks.map((h) => new Lane(h, this));
    this.#queue = Math.max(1, options.queue ?? 100);
    this.#backoffMs = options.backoffMs ?? 1000;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.#log = options.log ?? ((line) => console.error(line));
  }

  /** Whether {@linkcode close} was called. */
  get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /**
   * Queues `payload` for every webhook that takes its event; returns at once, never throws.
   * After {@linkcode close}, does nothing.
   */
  send(payload: Payload): void {
    if (this.closed) return;
    for (const lane of this.#lanes) {
      if (lane.hook.on.has(payload.event)) lane.push(payload, this.#queue);
    }
  }

  /**
   * Waits until every queue is empty and nothing is in flight, or `ms` passed (the end of a run:
   * give the last notifications a moment before the process exits).
   *
   * @returns true when everything was delivered or given up on in time.
   */
  async flush(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    try {
      return await Promise.race([
        Promise.all(this.#lanes.map((l) => l.idle())).then(() => true),
        late,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops: requests in flight are aborted, what is queued is dropped (and counted). */
  async close(): Promise<void> {
    if (!this.closed) this.#closing.abort();
    for (const lane of this.#lanes) {
      const n = lane.clear();
      if (n) {
        this.log(`thaw: notify: ${n} notification(s) to ${lane.hook.shown} not sent: thaw stopped`);
      }
    }
    await Promise.all(this.#lanes.map((l) => l.idle()));
    if (!this.#clientClosed) this.#client.close();
    this.#clientClosed = true;
  }

  /** What each webhook was sent so far. */
  stats(): WebhookStats[] {
    return this.#lanes.map((l) => ({
      url: l.hook.shown,
      sent: l.sent,
      failed: l.failed,
      dropped: l.dropped,
      attempts: l.attempts,
      pending: l.pending,
      ...(l.lastError ? { lastError: l.lastError } : {}),
    }));
  }

  /** A line per webhook that missed notifications (for stderr at the end of a run); else none. */
  summary(): string[] {
    return this.stats().filter((s) => s.failed || s.dropped || s.pending).map((s) =>
      `thaw: notify: ${s.url}: ${s.sent} sent, ${s.failed} failed, ${s.dropped} dropped` +
      (s.pending ? `, ${s.pending} unsent` : "") + (s.lastError ? ` (last: ${s.lastError})` : "")
    );
  }

  /** @internal Writes a log line. */
  log(line: string): void {
    try {
      this.#log(line);
    } catch {
      // A log that fails must not stop the sender.
    }
  }

  /** @internal The wait before retry `attempt` (1-based), ms. */
  backoff(attempt: number): number {
    return Math.min(this.maxBackoffMs, this.#backoffMs * 2 ** (attempt - 1));
  }

  /** @internal Waits `ms`, or less when the sender closes. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.#closing.signal;
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done);
    });
  }

  /** @internal One POST of `body` to `hook`, within its timeout. */
  async post(hook: ResolvedWebhook, body: string): Promise<Attempt> {
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, hook.timeoutMs);
    const stop = () => ac.abort();
    this.#closing.signal.addEventListener("abort", stop);
    try {
      const res = await fetch(hook.url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "thaw", ...hook.headers },
        body,
        signal: ac.signal,
        redirect: "manual",
        client: this.#client,
      });
      if (res.status >= 200 && res.status < 300) {
        await res.body?.cancel().catch(() => {});
        return { ok: true };
      }
      const text = await readSome(res.body, BODY_QUOTED);
      const redirect = res.status >= 300 && res.status < 400;
      const reason = redirect
        ? `HTTP ${res.status}: it redirects elsewhere, and thaw does not follow redirects ` +
          "with your headers; put the final address in url"
        : `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}${
          text ? `: ${text}` : ""
        }`;
      const retry = res.status >= 500 || [408, 425, 429].includes(res.status);
      const after = retryAfter(res.headers.get("retry-after"));
      return {
        ok: false,
        reason: hook.redactor.text(reason),
        retry,
        ...(after === undefined ? {} : { afterMs: after }),
      };
    } catch (e) {
      const reason = timedOut
        ? `no answer within ${formatDuration(hook.timeoutMs / 1000)} (timeout)`
        : this.closed
        ? "thaw stopped while it was being sent"
        : errorText(e);
      return { ok: false, reason: hook.redactor.text(reason), retry: !this.closed };
    } finally {
      clearTimeout(timer);
      this.#closing.signal.removeEventListener("abort", stop);
    }
  }
}
