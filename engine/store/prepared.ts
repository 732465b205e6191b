/**
 * Queries built and compiled once: the live engine makes the same few writes every turn, and
 * building a Kysely query and compiling it cost more CPU than SQLite takes to run it. A
 * {@link Prepared} query is written with Kysely as usual, with placeholders where the values go;
 * it is compiled on first use, and each use after that only binds new values to the same SQL
 * (which the dialects also keep prepared: `node:sqlite` statements, PostgreSQL named
 * statements).
 *
 * @module
 */
import type { Compilable, CompiledQuery } from "kysely";

/** What a placeholder is compiled as: a text no real value has. */
const MARK = "\u0000thaw-placeholder:";

/** Gives the placeholder of argument `i` (typed to fit wherever a value goes). */
export type Placeholder = (i: number) => never;

/**
 * A query compiled once with placeholders; {@link Prepared.bind} gives it with values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Kysely, SqliteDialect } from "kysely";
 * import { Prepared } from "./prepared.ts";
 * interface Db { t: { a: number; b: string; c: boolean } }
 * // Never connects: only compiles.
 * const db = new Kysely<Db>({ dialect: new SqliteDialect({ database: {} as never }) });
 * const q = new Prepared(2, (p) =>
 *   db.updateTable("t").set({ a: p(0) }).where("b", "=", p(1)).where("c", "=", false));
 * const one = q.bind([7, "x"]);
 * assert.equal(one.sql, 'update "t" set "a" = ? where "b" = ? and "c" = ?');
 * assert.deepEqual(one.parameters, [7, "x", false]);
 * assert.deepEqual(q.bind([8, "y"]).parameters, [8, "y", false]);
 * ```
 */
export class Prepared {
  readonly #compiled: CompiledQuery;
  /** For each parameter of the SQL: the index of its argument, or -1 for a constant. */
  readonly #slots: readonly number[];

  /** Builds the query with `arity` placeholders (`p(0)` … `p(arity - 1)`) and compiles it. */
  constructor(arity: number, build: (p: Placeholder) => Compilable<unknown>) {
    const p = ((i: number) => `${MARK}${i}`) as unknown as Placeholder;
    this.#compiled = build(p).compile();
    const seen = new Set<number>();
    this.#slots = this.#compiled.parameters.map((v) => {
      if (typeof v !== "string" || !v.startsWith(MARK)) return -1;
      const i = Number(v.slice(MARK.length));
      seen.add(i);
      return i;
    });
    if (seen.size !== arity) {
      throw new Error(`prepared query binds ${seen.size} of its ${arity} placeholders`);
    }
  }

  /** The SQL it runs. */
  get sql(): string {
    return this.#compiled.sql;
  }

  /** The query with `args` in place of its placeholders (by index). */
  bind(args: readonly unknown[]): CompiledQuery {
    const c = this.#compiled, slots = this.#slots;
    const parameters = new Array<unknown>(slots.length);
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      parameters[i] = s < 0 ? c.parameters[i] : args[s];
    }
    return { sql: c.sql, parameters, query: c.query, queryId: c.queryId };
  }
}

/**
 * {@link Prepared} queries of one shape, by a key such as a number of rows (at most `max` kept:
 * past that, a query is compiled for each use).
 */
export class PreparedSet<K> {
  readonly #made = new Map<K, Prepared>();
  readonly #make: (key: K) => Prepared;
  readonly #max: number;

  /** `make` builds the query of a key. */
  constructor(make: (key: K) => Prepared, max = 64) {
    this.#make = make;
    this.#max = max;
  }

  /** The query of `key`, compiled on first use. */
  get(key: K): Prepared {
    let q = this.#made.get(key);
    if (q === undefined) {
      q = this.#make(key);
      if (this.#made.size < this.#max) this.#made.set(key, q);
    }
    return q;
  }
}
