/**
 * What people see of a step that waits for a person, and how another process tells it waits.
 *
 * Two things hold a step until someone decides: its `approval` gate, and (revision 2) having
 * been running when its engine died without being `idempotent: true` (it may have half-done its
 * work, and running it again blindly is how recoveries go wrong). `thaw approve RUN STEP` lets
 * the step run; `thaw done RUN STEP` marks it done by hand, and its dependents may start.
 *
 * Whether a step waits is scheduler state (`approvals.ts`, used by the `Scheduler`), so the
 * simulator and the live engine make the same decisions about it. This module holds what people
 * see of a wait: the details the store keeps.
 *
 * The reason a step waits is its `detail` in the store; {@link waitsForPerson} reads it back, so
 * that another process (the CLI, the HTTP API) can tell whether a step waits before asking.
 *
 * @module
 */

/** The start of the detail of a step that waits for its approval. */
export const APPROVAL_WAIT = "waiting for approval";
/** What the detail of a step that was running when its engine died says. */
export const INTERRUPTED_WAIT = "was running when the engine stopped";
/** The detail of a step a person marked done. */
export const DONE_BY_HAND = "marked done by hand (thaw done)";

/** The detail of a step that waits for its approval. */
export function approvalDetail(text: string, run: string, step: string): string {
  return `${APPROVAL_WAIT}: ${text} (thaw approve ${run} ${step}; or thaw done ${run} ${step} ` +
    "if a person did it)";
}

/** The detail of a step held because it was running when its engine died. */
export function interruptedDetail(run: string, step: string): string {
  return `${step} ${INTERRUPTED_WAIT}; it may have half-done its work: ` +
    `thaw approve ${run} ${step} runs it again, thaw done ${run} ${step} marks it done`;
}

/**
 * Whether a step with this state and detail (as stored) waits for a person.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { interruptedDetail, waitsForPerson } from "./waits.ts";
 * assert.equal(waitsForPerson("running", interruptedDetail("R1", "restore-db")), "interrupted");
 * assert.equal(waitsForPerson("running", "approved"), undefined);
 * ```
 */
export function waitsForPerson(
  state: string,
  detail: string | null | undefined,
): "approval" | "interrupted" | undefined {
  if (state !== "running" || !detail) return undefined;
  if (detail.startsWith(APPROVAL_WAIT)) return "approval";
  if (detail.includes(INTERRUPTED_WAIT)) return "interrupted";
  return undefined;
}
