/**
 * What holds a step for a person, as scheduler state: its `approval` gate, or (on resume) having
 * been running when its engine died without being `idempotent`. The {@link Scheduler} asks
 * {@link PersonGates} when it reaches a step; a held step waits (it lends its run slot) until a
 * person approves it or marks it done by hand. Pure: no clock, no process, so the simulator makes
 * the same decisions as the live engine and a test drives it with a fake clock.
 *
 * @module
 */

/** Why a step waits for a person. */
export type WaitReason = "approval" | "interrupted";

const NONE = 0, APPROVAL = 1, INTERRUPTED = 2;
const REASONS = [undefined, "approval", "interrupted"] as const;

/**
 * The person gates of one run, by step index.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PersonGates } from "./approvals.ts";
 * const gates = new PersonGates(3, new Uint8Array([1, 1, 0]));
 * gates.approve(1); // given before step 1 is reached: it counts
 * assert.equal(gates.reach(0), "approval");
 * assert.equal(gates.reach(1), undefined);
 * assert.equal(gates.reach(2), undefined);
 * assert.equal(gates.waiting(0), "approval");
 * assert.equal(gates.approve(0), true); // released
 * assert.equal(gates.waiting(0), undefined);
 * ```
 */
export class PersonGates {
  /** What will hold each step when it is reached. */
  readonly #hold: Uint8Array;
  /** What holds each step now (it was reached and waits). */
  readonly #waiting: Uint8Array;

  /** Gates for `n` steps; `gated` marks the steps with an `approval` gate. */
  constructor(n: number, gated?: Uint8Array) {
    this.#hold = gated ? Uint8Array.from(gated, (g) => (g ? APPROVAL : NONE)) : new Uint8Array(n);
    this.#waiting = new Uint8Array(n);
  }

  /** Step `i` was running when its engine died: when reached again, it waits for a person. */
  interrupt(i: number): void {
    this.#hold[i] = INTERRUPTED;
  }

  /** Step `i` is reached (it would start): why it waits now, or undefined when it may run. */
  reach(i: number): WaitReason | undefined {
    const h = this.#hold[i]!;
    this.#hold[i] = NONE;
    this.#waiting[i] = h;
    return REASONS[h];
  }

  /** Why step `i` waits now, if it does. */
  waiting(i: number): WaitReason | undefined {
    return REASONS[this.#waiting[i]!];
  }

  /**
   * A person approves step `i`: a waiting step is released (true); an approval given before the
   * step is reached counts when it is (false). Running again after an interruption also passes
   * the step's approval gate.
   */
  approve(i: number): boolean {
    this.#hold[i] = NONE;
    return this.release(i);
  }

  /** Step `i` no longer waits (approved, done by hand, cancelled); true if it waited. */
  release(i: number): boolean {
    const was = this.#waiting[i] !== NONE;
    this.#waiting[i] = NONE;
    return was;
  }
}
