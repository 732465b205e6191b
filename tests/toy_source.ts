/**
 * A toy fetch source defined outside the engine, the way a third party writes one:
 * `toy://SEED/BYTES` delivers BYTES deterministic bytes made from SEED, from any offset. Used by
 * `toy_source_test.ts` (in-process) and `toy_thaw.ts` (the real `thaw` command with it).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { type Source, SourceFailure, streamedSource } from "../mod.ts";

/** Bytes per chunk the toy source yields. */
const CHUNK = 16 << 10;

/** Byte `i` of the toy data set made from `seed`. */
function byteAt(seed: number, i: number): number {
  return (seed + i * 31 + (i >> 8)) & 255;
}

function seedOf(name: string): number {
  let h = 7;
  for (const c of name) h = (h * 33 + c.charCodeAt(0)) & 0xffff;
  return h;
}

/** The bytes `toy://SEED/BYTES` delivers, from `offset`, `CHUNK` at a time. */
export function* toyBytes(seed: string, bytes: number, offset = 0): Generator<Uint8Array> {
  const s = seedOf(seed);
  for (let at = offset; at < bytes; at += CHUNK) {
    const chunk = new Uint8Array(Math.min(CHUNK, bytes - at));
    for (let k = 0; k < chunk.length; k++) chunk[k] = byteAt(s, at + k);
    yield chunk;
  }
}

/** The sha256 of what `toy://SEED/BYTES` delivers. */
export function toySha256(seed: string, bytes: number): string {
  const hash = createHash("sha256");
  for (const chunk of toyBytes(seed, bytes)) hash.update(chunk);
  return hash.digest("hex");
}

/** How often the toy source was opened, and from which offsets (for the tests). */
export const toyOpens: number[] = [];

/** The toy source: `toy://SEED/BYTES`. */
export const toySource: Source = streamedSource({
  key: "toy",
  label: "toy://",
  schemes: ["toy"],
  open(from, request) {
    const match = /^toy:\/\/([a-z0-9-]+)\/(\d+)$/i.exec(from);
    if (!match) {
      return Promise.reject(new SourceFailure("expected toy://SEED/BYTES", false));
    }
    const bytes = Number(match[2]);
    toyOpens.push(request.offset);
    return Promise.resolve({
      body: toyBytes(match[1]!, bytes, request.offset),
      offset: request.offset,
      size: bytes,
    });
  },
});
