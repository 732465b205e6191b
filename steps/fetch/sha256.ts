/**
 * sha256 for fetches and file checks, from `node:crypto` loaded on first use: loading it takes
 * about 10 ms, which a command that hashes nothing (`thaw status`, a runbook without a checked
 * fetch) no longer pays at start-up. Web Crypto has no incremental hash, which a fetch needs (it
 * hashes as the bytes land).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { newSha256, sha256Ready } from "./sha256.ts";
 *
 * await sha256Ready();
 * assert.equal(
 *   newSha256().update("hello").digest("hex"),
 *   "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
 * );
 * ```
 *
 * @module
 */
import type { Hash } from "node:crypto";

let create: ((algorithm: string) => Hash) | undefined;

/** Loads `node:crypto` once; {@linkcode newSha256} may be called after it resolved. */
export async function sha256Ready(): Promise<void> {
  create ??= (await import("node:crypto")).createHash;
}

/** A new incremental sha256; only after {@linkcode sha256Ready} resolved. */
export function newSha256(): Hash {
  if (create === undefined) throw new Error("newSha256() before sha256Ready()");
  return create("sha256");
}
