/**
 * The process records of a live run, written with the loop's one commit per turn.
 *
 * The store keeps the process group of every step that runs, so that a resumed engine can stop
 * what a killed one left. A step's record is written in the commit of the first turn at least
 * {@linkcode RECORD_AFTER_MS} after its start (so at most about {@linkcode PROCESS_RECORD_MS}
 * after it: the loop wakes every `RECORD_AFTER_MS` while a record waits), and forgotten in the
 * commit of the turn that sees it end: a step that ends before its record was written leaves no
 * process behind, and costs no write. Meanwhile `thaw resume` finds such a process by its
 * environment (`strays.ts`).
 *
 * @module
 */
import type { ProcessChanges, ProcessRecord } from "../store/types.ts";

/** Longest a running step's process goes unrecorded, in ms (about). */
export const PROCESS_RECORD_MS = 20;
/** How long a step's process runs before its record is written, in ms. */
export const RECORD_AFTER_MS = PROCESS_RECORD_MS / 2;

/** Process records waiting for the next commit. */
export class ProcessBook {
  #add = new Map<string, ProcessRecord>();
  /** When each record waiting in `#add` was added (`performance.now()`). */
  #since = new Map<string, number>();
  #remove = new Set<string>();
  /** Steps that may have a record in the store (all of them, unless the run is new). */
  readonly #stored = new Set<string>();
  readonly #fresh: boolean;

  /** A book for a new run (`fresh`: nothing is recorded yet), or a resumed one. */
  constructor(fresh = false) {
    this.#fresh = fresh;
  }

  /** Whether a started process waits to be recorded. */
  get unrecorded(): boolean {
    return this.#add.size > 0;
  }

  /** Records the process of `p.step` with the next commit (replacing its earlier one). */
  add(p: ProcessRecord, at = performance.now()): void {
    this.#remove.delete(p.step);
    this.#add.set(p.step, p);
    this.#since.set(p.step, at);
  }

  /** Drops what waits to be written for `step` (its record is written another way). */
  drop(step: string): void {
    this.#add.delete(step);
    this.#since.delete(step);
    this.#stored.add(step);
  }

  /** Forgets the process of `step` with the next commit (and any record of it not yet written). */
  remove(step: string): void {
    this.#add.delete(step);
    this.#since.delete(step);
    // An earlier record (an earlier attempt's, or a killed engine's) may be stored: delete it.
    if (!this.#fresh || this.#stored.has(step)) this.#remove.add(step);
  }

  /**
   * What to write with this turn's commit: the records added at least {@linkcode RECORD_AFTER_MS}
   * before `now` (every one without `now`) and the removals; they leave the book.
   *
   * @example
   * ```ts
   * import { ProcessBook } from "./procs.ts";
   * import assert from "node:assert/strict";
   *
   * const book = new ProcessBook();
   * book.add({ step: "a", pid: 10, pgid: 10 });
   * book.add({ step: "b", pid: 11, pgid: 11 });
   * book.remove("b"); // ended before its record was written
   * assert.deepEqual(book.take(), { add: [{ step: "a", pid: 10, pgid: 10 }], remove: ["b"] });
   * assert.deepEqual(book.take(), { add: [], remove: [] });
   *
   * const fresh = new ProcessBook(true); // a new run: nothing stored to delete
   * fresh.add({ step: "c", pid: 12, pgid: 12 });
   * fresh.remove("c");
   * assert.deepEqual(fresh.take(), { add: [], remove: [] });
   *
   * const young = new ProcessBook(true); // a record waits until its process ran a while
   * young.add({ step: "d", pid: 13, pgid: 13 }, 1000);
   * assert.deepEqual(young.take(1005), { add: [], remove: [] });
   * assert.deepEqual(young.take(1010), { add: [{ step: "d", pid: 13, pgid: 13 }], remove: [] });
   * ```
   */
  take(now?: number): ProcessChanges {
    if (this.#add.size === 0 && this.#remove.size === 0) return { add: [], remove: [] };
    const add: ProcessRecord[] = [];
    for (const [step, p] of this.#add) {
      if (now !== undefined && now - this.#since.get(step)! < RECORD_AFTER_MS) continue;
      add.push(p);
      this.#add.delete(step);
      this.#since.delete(step);
      this.#stored.add(step);
    }
    const changes = { add, remove: [...this.#remove] };
    for (const step of changes.remove) this.#stored.delete(step);
    this.#remove.clear();
    return changes;
  }
}
