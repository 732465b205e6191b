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

/**
 * A write refused because the engine lost its lease on the run: another engine (a standby) holds
 * it now, with a newer token. The engine must change nothing more and stop its steps.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LeaseLost, StoreError } from "./errors.ts";
 * const e = new LeaseLost("store db: run \"r1\": lease lost", "r1", 3);
 * assert.ok(e instanceof StoreError);
 * assert.equal(e.name, "LeaseLost");
 * assert.equal(e.token, 3);
 * ```
 */
export class LeaseLost extends StoreError {
  /** The run whose lease was lost. */
  readonly run: string;
  /** The token this engine held. */
  readonly token: number;
  /** Creates the error. */
  constructor(message: string, run: string, token: number) {
    super(message);
    this.name = "LeaseLost";
    this.run = run;
    this.token = token;
  }
}
