/**
 * A small QMP client (the JSON protocol of QEMU's monitor, which `qemu-storage-daemon` speaks on
 * a unix socket): greeting, `qmp_capabilities`, commands matched to replies by id, and events.
 *
 * @module
 */

/** A message QMP sends: a greeting, a reply (`return` or `error`, with our `id`) or an event. */
export type QmpMessage =
  | { readonly QMP: Readonly<Record<string, unknown>> }
  | { readonly return: unknown; readonly id?: unknown }
  | { readonly error: { readonly class: string; readonly desc: string }; readonly id?: unknown }
  | QmpEvent;

/** An asynchronous event, e.g. `BLOCK_JOB_COMPLETED`. */
export interface QmpEvent {
  readonly event: string;
  readonly data?: Readonly<Record<string, unknown>>;
  readonly timestamp?: { readonly seconds: number; readonly microseconds: number };
}

/** A command QMP refused or failed: `desc` is QMP's own words, `errorClass` its class. */
export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`qemu-storage-daemon refused ${command}: ${desc} (${errorClass})`);
    this.name = "QmpError";
  }
}

/**
 * Splits what arrived on the socket into complete lines, parsed as QMP messages; returns them and
 * the unfinished rest. A line that is not JSON throws (the peer is not speaking QMP).
 *
 * @example Two messages and half of a third
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitMessages } from "./qmp.ts";
 *
 * const { messages, rest } = splitMessages(
 *   '{"return": {}, "id": 1}\r\n{"event": "STOP"}\r\n{"ret',
 * );
 * assert.deepEqual(messages, [{ return: {}, id: 1 }, { event: "STOP" }]);
 * assert.equal(rest, '{"ret');
 * ```
 */
export function splitMessages(buffer: string): { messages: QmpMessage[]; rest: string } {
  const lines = buffer.split("\n");
  const rest = lines.pop() ?? "";
  const messages: QmpMessage[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (line === "") continue;
    try {
      messages.push(JSON.parse(line) as QmpMessage);
    } catch {
      throw new Error(`not a QMP message (is this a QMP socket?): ${line.slice(0, 120)}`);
    }
  }
  return { messages, rest };
}

interface Pending {
  readonly command: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface Waiter {
  readonly name: string;
  readonly pred: (event: QmpEvent) => boolean;
  resolve(event: QmpEvent): void;
}

const HUNG_UP = "qemu-storage-daemon closed the QMP connection (did it exit? see its log)";

/** Events kept for {@linkcode QmpClient.waitEvent} callers that ask after the event came. */
const KEPT_EVENTS = 256;

/**
 * One QMP session on a unix socket. Make it with {@linkcode QmpClient.connect}; it has already
 * negotiated capabilities. Events are kept (the last {@linkcode KEPT_EVENTS}) and can be awaited.
 */
export class QmpClient {
  #conn: Deno.UnixConn;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #waiters = new Set<Waiter>();
  #events: QmpEvent[] = [];
  #closed: Error | undefined;
  #reader: Promise<void>;
  #greeting: Promise<Readonly<Record<string, unknown>>>;
  #greeted!: (g: Readonly<Record<string, unknown>>) => void;
  #listeners = new Set<(event: QmpEvent) => void>();

  private constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
    this.#greeting = new Promise((resolve) => this.#greeted = resolve);
    this.#reader = this.#read();
  }

  /**
   * Connects to the QMP socket at `path`, reads the greeting and sends `qmp_capabilities`.
   * Retries a socket that is not there yet (a daemon starting) until `timeoutMs` have passed.
   */
  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const deadline = performance.now() + timeoutMs;
    let pause = 2;
    for (;;) {
      let conn: Deno.UnixConn;
      try {
        conn = await Deno.connect({ transport: "unix", path });
      } catch (e) {
        const retry = e instanceof Deno.errors.NotFound ||
          e instanceof Deno.errors.ConnectionRefused;
        if (!retry || performance.now() > deadline) {
          throw new Error(
            `cannot reach the QMP socket ${path} (${(e as Error).message}): is ` +
              `qemu-storage-daemon running? See its log.`,
          );
        }
        await new Promise((r) => setTimeout(r, pause));
        pause = Math.min(pause * 2, 50);
        continue;
      }
      const client = new QmpClient(conn);
      try {
        const left = Math.max(1, deadline - performance.now());
        await withTimeout(client.#greeting, left, `no QMP greeting on ${path}`);
        await client.execute("qmp_capabilities");
      } catch (e) {
        client.close();
        throw e;
      }
      return client;
    }
  }

  /** The events received so far (the most recent {@linkcode KEPT_EVENTS}). */
  get events(): readonly QmpEvent[] {
    return this.#events;
  }

  /** Calls `listener` for each event from now on; returns a function that stops it. */
  onEvent(listener: (event: QmpEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Runs `command` with `args`; resolves with its `return`, or throws a {@linkcode QmpError}
   * carrying QMP's `desc`. Throws an `Error` when the connection closes first.
   */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#nextId++;
    const message = args === undefined
      ? { execute: command, id }
      : { execute: command, arguments: args, id };
    const reply = new Promise<unknown>((resolve, reject) => {
      this.#pending.set(id, { command, resolve, reject });
    });
    const bytes = new TextEncoder().encode(JSON.stringify(message) + "\n");
    this.#write(bytes).catch(() => this.#fail(new Error(HUNG_UP)));
    return reply as Promise<T>;
  }

  /**
   * Resolves with the first event named `name` for which `pred` holds, counting those already
   * received; rejects after `timeoutMs` or when the connection closes.
   */
  waitEvent(
    name: string,
    pred: (event: QmpEvent) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<QmpEvent> {
    const seen = this.#events.find((e) => e.event === name && pred(e));
    if (seen) return Promise.resolve(seen);
    if (this.#closed) return Promise.reject(this.#closed);
    let waiter!: Waiter;
    const got = new Promise<QmpEvent>((resolve) => {
      waiter = { name, pred, resolve };
      this.#waiters.add(waiter);
    });
    const closed = this.#reader.then(() => {
      throw this.#closed ?? new Error("QMP connection closed");
    });
    return withTimeout(
      Promise.race([got, closed]),
      timeoutMs,
      `no ${name} event from qemu-storage-daemon within ${timeoutMs} ms`,
    ).finally(() => this.#waiters.delete(waiter));
  }

  /** Closes the connection; pending commands and waits reject. */
  close(): void {
    if (!this.#closed) this.#fail(new Error("QMP connection closed"));
  }

  /** Settles once the reader has stopped (after {@linkcode close} or the peer hung up). */
  get done(): Promise<void> {
    return this.#reader;
  }

  async #write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#closed = error;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    const buf = new Uint8Array(64 * 1024);
    let text = "";
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        const { messages, rest } = splitMessages(text + decoder.decode(buf.subarray(0, n)));
        text = rest;
        for (const m of messages) this.#dispatch(m);
      }
      this.#fail(new Error(HUNG_UP));
    } catch (e) {
      const reset = e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BrokenPipe;
      this.#fail(reset ? new Error(HUNG_UP) : e instanceof Error ? e : new Error(String(e)));
    }
  }

  #dispatch(m: QmpMessage): void {
    if ("QMP" in m) return this.#greeted(m.QMP);
    if ("event" in m) {
      this.#events.push(m);
      if (this.#events.length > KEPT_EVENTS) this.#events.shift();
      for (const w of this.#waiters) {
        if (w.name === m.event && w.pred(m)) w.resolve(m);
      }
      for (const l of this.#listeners) {
        try {
          l(m);
        } catch { /* a listener's failure is its own */ }
      }
      return;
    }
    const id = typeof m.id === "number" ? m.id : undefined;
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (!pending || id === undefined) return;
    this.#pending.delete(id);
    if ("error" in m) {
      pending.reject(new QmpError(pending.command, m.error.class, m.error.desc));
    } else pending.resolve(m.return);
  }
}

/** `promise`, or a rejection with `message` after `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
