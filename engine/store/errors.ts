/**
 * The error the store throws.
 *
 * @module
 */

/**
 * A problem with the store that an SRE can act on: the message names the store and the cause
 * (not a database, a failed migration, an unknown run, a run id used twice, ...). The original
 * error, when there is one, is the `cause`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { StoreError } from "./errors.ts";
 * const e = new StoreError(".thaw/state.db: file is not a database");
 * equal(e instanceof Error, true);
 * equal(e.name, "StoreError");
 * ```
 */
export class StoreError extends Error {
  /** Creates the error; `cause` is the error it explains, if any. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreError";
  }
}
