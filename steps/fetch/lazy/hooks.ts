/**
 * What a lazy fetch (contract revision 5) tells the engine while it runs, and what it asks of it:
 * the engine side of `execute.ts`. The live engine gives one {@linkcode LazyHooks} per lazy
 * fetch (`engine/live/lazy_volumes.ts`); outside it (a test, a tool) {@linkcode standaloneHooks}
 * streams at full speed and reports nothing.
 *
 * @module
 */

/** The engine's side of one lazy fetch. */
export interface LazyHooks {
  /** The volume can be opened at `to`: the steps that need it may start. Called once. */
  attached(): void;
  /** The stream's share of the link now, bytes per second (0: paused; Infinity: no limit). */
  share(): number;
  /**
   * The most the fetch may take from the backup, stream and demanded reads together, bytes per
   * second (Infinity: no cap): the link's `bandwidth` (or the fetch's `rate`). nbdkit holds all it
   * fetches to it, so reads faster than the link wait there instead of exceeding it.
   */
  ceiling?(): number;
  /**
   * About once a second: bytes fetched from the backup so far by this attempt, and bytes the
   * stream has covered (what was fetched beyond the stream was read on demand).
   */
  sample(fetched: number, streamed: number): void;
}

/**
 * Hooks for a lazy fetch run outside the live engine: no limit, nothing reported.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { standaloneHooks } from "./hooks.ts";
 * assert.equal(standaloneHooks.share(), Infinity);
 * ```
 */
export const standaloneHooks: LazyHooks = {
  attached: () => {},
  share: () => Infinity,
  ceiling: () => Infinity,
  sample: () => {},
};
