/**
 * Who may change a run through the API: whoever sends `Authorization: Bearer TOKEN` with the
 * server's token. The comparison takes the same time whatever the guess (both sides are hashed
 * to equal length, then compared with `timingSafeEqual`). Without a token configured, every
 * change is refused.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";

/** Why a change is allowed or not. */
export type Verdict = "ok" | "no-token-configured" | "missing" | "wrong";

/**
 * Checks an `Authorization` header against `token`.
 *
 * @example
 * ```ts
 * import { authorize } from "./auth.ts";
 * import assert from "node:assert/strict";
 * assert.equal(authorize("Bearer s3cret", "s3cret"), "ok");
 * assert.equal(authorize("Bearer guess", "s3cret"), "wrong");
 * assert.equal(authorize(undefined, "s3cret"), "missing");
 * assert.equal(authorize("Bearer s3cret", undefined), "no-token-configured");
 * ```
 */
export function authorize(header: string | undefined, token: string | undefined): Verdict {
  if (!token) return "no-token-configured";
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? "");
  if (!m) return "missing";
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(m[1]!), digest(token)) ? "ok" : "wrong";
}
