/**
 * Steps that wait for a person in a live run, and what a person can tell them.
 *
 * Two things hold a step until someone decides: its `approval` gate, and (revision 2) having
 * been running when its engine died without being `idempotent: true` (it may have half-done its
 * work, and running it again blindly is how recoveries go wrong). `thaw approve RUN STEP` lets
 * the step run; `thaw done RUN STEP` marks it done by hand, and its dependents may start.
 *
 * The waits live beside the live loop, not in the scheduler: to the scheduler a waiting step has
 * started (it holds a run slot, as an approval always has). The decisions are here, free of
 * clocks and processes, so they are tested without running anything.
 *
 * The reason a step waits is its `detail` in the store; {@link waitsForPerson} reads it back, so
 * that another process (the CLI, the HTTP API) can tell whether a step waits before asking.
 *
 * @module
 */

/** What a person decided about a waiting step. */
export type Verdict = "run" | "done" | "cancelled";

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

/**
 * The waits of one live run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PersonWaits } from "./waits.ts";
 * const waits = new PersonWaits("R1", [0]);
 * const details: string[] = [];
 * const verdict = waits.gate(0, "restore-db", undefined, new AbortController().signal, (d) => {
 *   details.push(d);
 * });
 * assert.equal(waits.waiting(0), "interrupted");
 * assert.equal(waits.command("done", 0), true);
 * assert.equal(await verdict, "done");
 * assert.match(details[0]!, /restore-db was running when the engine stopped/);
 * ```
 */
export class PersonWaits {
  readonly #run: string;
  readonly #interrupted: Set<number>;
  readonly #approved = new Set<number>();
  readonly #waiting = new Map<
    number,
    { kind: "approval" | "interrupted"; go: (v: Verdict) => void }
  >();

  /** The waits of run `run`; `interrupted` lists the steps held because their engine died. */
  constructor(run: string, interrupted: Iterable<number> = []) {
    this.#run = run;
    this.#interrupted = new Set(interrupted);
  }

  /** What step `i` waits for now, if anything. */
  waiting(i: number): "approval" | "interrupted" | undefined {
    return this.#waiting.get(i)?.kind;
  }

  /**
   * Step `i` (id `step`) is about to run. Resolves `"run"` at once when nothing holds it; else
   * calls `announce` with why it waits and resolves with what a person decides (or `"cancelled"`
   * when `signal` aborts). `approval` is the step's approval text, if it has a gate.
   */
  async gate(
    i: number,
    step: string,
    approval: string | undefined,
    signal: AbortSignal,
    announce: (detail: string) => void,
  ): Promise<Verdict> {
    if (this.#interrupted.has(i)) {
      this.#interrupted.delete(i);
      const v = await this.#wait(
        i,
        "interrupted",
        interruptedDetail(this.#run, step),
        signal,
        announce,
      );
      // Running it again once a person said so also passes its approval gate.
      if (v !== "run") return v;
      this.#approved.add(i);
      return "run";
    }
    if (approval === undefined || this.#approved.has(i)) return "run";
    return await this.#wait(
      i,
      "approval",
      approvalDetail(approval, this.#run, step),
      signal,
      announce,
    );
  }

  /**
   * A person's command about step `i`: `approve` lets it run (and stands if it does not wait
   * yet: an approval given before the gate is met), `done` marks a waiting step done. Returns
   * whether a waiting step was released.
   */
  command(kind: "approve" | "done", i: number): boolean {
    const w = this.#waiting.get(i);
    if (kind === "approve") {
      this.#approved.add(i);
      this.#interrupted.delete(i);
    }
    if (!w) return false;
    this.#waiting.delete(i);
    w.go(kind === "approve" ? "run" : "done");
    return true;
  }

  #wait(
    i: number,
    kind: "approval" | "interrupted",
    detail: string,
    signal: AbortSignal,
    announce: (detail: string) => void,
  ): Promise<Verdict> {
    if (signal.aborted) return Promise.resolve("cancelled");
    announce(detail);
    return new Promise<Verdict>((resolve) => {
      const cancelled = () => {
        this.#waiting.delete(i);
        resolve("cancelled");
      };
      signal.addEventListener("abort", cancelled, { once: true });
      this.#waiting.set(i, {
        kind,
        go: (v) => {
          signal.removeEventListener("abort", cancelled);
          resolve(v);
        },
      });
    });
  }
}
