/**
 * Store URLs as people may see them: a password is never printed.
 *
 * @module
 */

/**
 * The URL with its password replaced by `***`, fit to print.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactUrl } from "./url.ts";
 * assert.equal(redactUrl("postgres://thaw:s3cret@db1:5433/thaw"), "postgres://thaw:***@db1:5433/thaw");
 * assert.equal(redactUrl("postgresql://db1/thaw"), "postgresql://db1/thaw");
 * ```
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/?#]*:)[^@/?#]*@/i, "$1***@")
    .replace(/([?&]password=)[^&#]*/gi, "$1***");
}
