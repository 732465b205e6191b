/**
 * Marker lines in a stream a host writes over ssh: a line of thaw's own, framed by a random
 * nonce so that nothing else in the stream can be mistaken for it (`\x1eNONCE pid PID`, `\x1eNONCE
 * exit CODE`); {@linkcode MarkerFilter} takes them out of the stream. Used by the file sessions
 * (`ssh_files.ts`); commands go over the command loop (`ssh_loop_script.ts`).
 *
 * @module
 */

/** The byte that opens a marker line (ASCII record separator). */
const RS = 0x1e;
/** A marker's body, after its prefix. */
const MARKER = /^(pid|exit) (\d+)$/;

/** A fresh random nonce, 16 hex digits. */
export function nonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** One marker line the wrapper wrote. */
export interface Marker {
  readonly kind: "pid" | "exit";
  readonly value: number;
}

/**
 * Takes the wrapper's marker lines out of a stream of chunks and passes everything else on. A
 * chunk may end inside a marker: those bytes wait for the next chunk.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MarkerFilter } from "./ssh_script.ts";
 *
 * const seen: string[] = [];
 * let text = "";
 * const f = new MarkerFilter("ab12", (m) => seen.push(`${m.kind}=${m.value}`),
 *   (c) => text += new TextDecoder().decode(c));
 * f.push(new TextEncoder().encode("\x1eab12 pid 42\nhello\n\x1eab"));
 * f.push(new TextEncoder().encode("12 exit 3\n"));
 * f.end();
 * assert.deepEqual(seen, ["pid=42", "exit=3"]);
 * assert.equal(text, "hello\n");
 * ```
 */
export class MarkerFilter {
  readonly #prefix: Uint8Array;
  readonly #onMarker: (m: Marker) => void;
  readonly #sink: (chunk: Uint8Array) => void;
  #held: Uint8Array = new Uint8Array(0);

  constructor(id: string, onMarker: (m: Marker) => void, sink: (chunk: Uint8Array) => void) {
    this.#prefix = new TextEncoder().encode(`\x1e${id} `);
    this.#onMarker = onMarker;
    this.#sink = sink;
  }

  /** The longest marker line: prefix, `exit `, up to 20 digits and a newline. */
  get #longest(): number {
    return this.#prefix.length + 5 + 20 + 1;
  }

  /** Passes on a chunk, minus markers. */
  push(chunk: Uint8Array): void {
    let data = chunk;
    if (this.#held.length > 0) {
      data = new Uint8Array(this.#held.length + chunk.length);
      data.set(this.#held);
      data.set(chunk, this.#held.length);
      this.#held = new Uint8Array(0);
    }
    let from = 0;
    let at = data.indexOf(RS, from);
    while (at !== -1) {
      const end = this.#markerEnd(data, at);
      if (end === undefined) {
        if (at > from) this.#sink(data.subarray(from, at));
        this.#held = data.slice(at);
        return;
      }
      if (end > at) {
        if (at > from) this.#sink(data.subarray(from, at));
        this.#parse(data.subarray(at + this.#prefix.length, end - 1));
        from = end;
      }
      at = data.indexOf(RS, end > at ? end : at + 1);
    }
    if (from < data.length) this.#sink(from === 0 ? data : data.subarray(from));
  }

  /**
   * Where the marker starting at `at` ends (after its newline); `at` itself when it is no
   * marker; undefined when the data ends before it can tell.
   */
  #markerEnd(data: Uint8Array, at: number): number | undefined {
    const p = this.#prefix;
    for (let i = 0; i < p.length; i++) {
      if (at + i >= data.length) return undefined;
      if (data[at + i] !== p[i]) return at;
    }
    const nl = data.indexOf(0x0a, at + p.length);
    if (nl === -1) return data.length - at >= this.#longest ? at : undefined;
    if (nl - at >= this.#longest) return at;
    return MARKER.test(new TextDecoder().decode(data.subarray(at + p.length, nl))) ? nl + 1 : at;
  }

  #parse(body: Uint8Array): void {
    const m = MARKER.exec(new TextDecoder().decode(body));
    if (m) this.#onMarker({ kind: m[1] as Marker["kind"], value: Number(m[2]) });
  }

  /** The stream ended: passes on what was held back. */
  end(): void {
    if (this.#held.length > 0) this.#sink(this.#held);
    this.#held = new Uint8Array(0);
  }
}
