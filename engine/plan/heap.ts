/**
 * An indexed binary min-heap of small integers (step indexes) keyed by numbers, with removal and
 * re-keying of any member in O(log n). The scheduler keeps its queues in these.
 *
 * @module
 */

/**
 * A min-heap over items `0..capacity-1`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { IndexedHeap } from "./heap.ts";
 * const h = new IndexedHeap(4);
 * h.push(2, 5); h.push(0, 1); h.push(3, 3);
 * h.remove(0);
 * assert.deepEqual([h.pop(), h.pop(), h.size], [3, 2, 0]);
 * ```
 */
export class IndexedHeap {
  readonly #items: Int32Array;
  readonly #keys: Float64Array;
  readonly #pos: Int32Array;
  #size = 0;

  /** A heap for items below `capacity`. */
  constructor(capacity: number) {
    this.#items = new Int32Array(capacity);
    this.#keys = new Float64Array(capacity);
    this.#pos = new Int32Array(capacity).fill(-1);
  }

  /** How many items are in the heap. */
  get size(): number {
    return this.#size;
  }

  /** Whether `item` is in the heap. */
  has(item: number): boolean {
    return this.#pos[item]! >= 0;
  }

  /** The smallest item, without removing it (-1 when empty). */
  peek(): number {
    return this.#size ? this.#items[0]! : -1;
  }

  /** The key of the smallest item (Infinity when empty). */
  peekKey(): number {
    return this.#size ? this.#keys[this.#items[0]!]! : Infinity;
  }

  /** Adds `item` with `key`, or re-keys it if present. */
  push(item: number, key: number): void {
    const p = this.#pos[item]!;
    if (p >= 0) {
      const old = this.#keys[item]!;
      this.#keys[item] = key;
      if (key < old) this.#up(p);
      else this.#down(p);
      return;
    }
    this.#keys[item] = key;
    this.#items[this.#size] = item;
    this.#pos[item] = this.#size;
    this.#up(this.#size++);
  }

  /** Removes and returns the smallest item (-1 when empty). */
  pop(): number {
    if (this.#size === 0) return -1;
    const top = this.#items[0]!;
    this.remove(top);
    return top;
  }

  /** Removes `item` if present. */
  remove(item: number): void {
    const p = this.#pos[item]!;
    if (p < 0) return;
    this.#pos[item] = -1;
    const last = this.#items[--this.#size]!;
    if (p === this.#size) return;
    this.#items[p] = last;
    this.#pos[last] = p;
    this.#up(p);
    this.#down(this.#pos[last]!);
  }

  #up(i: number): void {
    const items = this.#items, keys = this.#keys, pos = this.#pos;
    const item = items[i]!, key = keys[item]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pi = items[parent]!;
      if (keys[pi]! <= key) break;
      items[i] = pi;
      pos[pi] = i;
      i = parent;
    }
    items[i] = item;
    pos[item] = i;
  }

  #down(i: number): void {
    const items = this.#items, keys = this.#keys, pos = this.#pos, n = this.#size;
    const item = items[i]!, key = keys[item]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && keys[items[c + 1]!]! < keys[items[c]!]!) c++;
      const ci = items[c]!;
      if (keys[ci]! >= key) break;
      items[i] = ci;
      pos[ci] = i;
      i = c;
    }
    items[i] = item;
    pos[item] = i;
  }
}
