/**
 * A write transaction in as few round trips as the dialect allows: on PostgreSQL (pipelined),
 * BEGIN travels with the first statements and COMMIT with the last ones, so an engine's commit
 * costs two round trips, not one per statement.
 *
 * @module
 */
import { CompiledQuery, type QueryResult } from "kysely";
import type { Row, Send, StoreDialect } from "./dialects/dialect.ts";

const COMMIT = CompiledQuery.raw("commit");
const ROLLBACK = CompiledQuery.raw("rollback");

/**
 * One transaction on one connection of `d`: BEGIN goes with the first statements `fn` sends;
 * the statements `fn` returns go with COMMIT where an error aborts the whole transaction
 * (PostgreSQL), before it otherwise (SQLite, which commits after they all succeeded). Any error
 * rolls back. Resolves with the results of the statements `fn` returned.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CompiledQuery } from "kysely";
 * import { openSqlite } from "./dialects/sqlite.ts";
 * import { transaction } from "./transaction.ts";
 * const d = await openSqlite(":memory:");
 * const [r] = await transaction(d, async (send) => {
 *   await send([CompiledQuery.raw("select 1")]); // with BEGIN
 *   return [CompiledQuery.raw("select 6 * 7 as n")]; // with (or before) COMMIT
 * });
 * assert.equal(r?.rows[0]?.n, 42);
 * await d.close();
 * ```
 */
export function transaction(
  d: StoreDialect,
  fn: (send: Send) => Promise<readonly CompiledQuery[]>,
): Promise<QueryResult<Row>[]> {
  return d.session(async (raw) => {
    let begun = false;
    const send: Send = async (queries) => {
      if (begun) return await raw(queries);
      begun = true;
      return (await raw([CompiledQuery.raw(d.begin), ...queries])).slice(1);
    };
    try {
      const last = await fn(send);
      if (d.pipelines) return (await send([...last, COMMIT])).slice(0, last.length);
      const out = await send(last);
      await raw([COMMIT]);
      return out;
    } catch (e) {
      if (begun) await raw([ROLLBACK]).catch(() => {});
      throw e;
    }
  });
}
