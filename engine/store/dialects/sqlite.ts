/**
 * The SQLite dialect of the store: one file (by default `.thaw/state.db`) in WAL mode, so
 * `thaw status`, `thaw cancel` and `thaw serve` read and steer a run from other processes while
 * the engine writes. Transactions begin immediate (they take the write lock at once), so two
 * processes wait on the busy timeout instead of failing half-way; since a write transaction
 * holds the one write lock from BEGIN, the store numbers and fences by reading the run's row,
 * not writing it (`locksOnBegin`). The store's compiled statements run on the connection
 * directly, each prepared once.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { Kysely, type QueryResult, sql } from "kysely";
import { StoreError } from "../errors.ts";
import { migrate, SQLITE_TYPES, type StoreDatabase } from "../migrations.ts";
import { prepareStoreFile } from "../sqlite_file.ts";
import { type Failure, messageOf, type Row, type StoreDialect } from "./dialect.ts";
import { NodeSqliteDialect } from "./node_sqlite.ts";

/** How long a statement waits for another process's write lock before it fails, in ms. */
export const BUSY_TIMEOUT_MS = 5000;

/**
 * What an error of `node:sqlite` means. It gives only its message (no result code), so the
 * words are read here, in the one place that knows SQLite's wording.
 */
export function classifySqlite(e: unknown): Failure | undefined {
  const m = messageOf(e);
  if (/FOREIGN KEY constraint failed/.test(m)) return { kind: "no-run" };
  if (/UNIQUE constraint failed|PRIMARY KEY constraint failed/.test(m)) return { kind: "exists" };
  if (/database is locked|SQLITE_BUSY/i.test(m)) {
    return {
      kind: "busy",
      why: `another process kept the store locked for more than ${BUSY_TIMEOUT_MS / 1000}s`,
    };
  }
  return undefined;
}

/**
 * Opens (creating if needed) the SQLite database at `path`, or an in-memory one for `:memory:`:
 * creates the file owner-only (an existing file that is not thaw's store is refused before
 * anything is written into it, see `sqlite_file.ts`), sets WAL mode (files only), a busy
 * timeout, `synchronous=NORMAL` and foreign keys, and migrates the schema to the latest version.
 * Throws a {@link StoreError} naming the path and the cause.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sql } from "kysely";
 * import { openSqlite } from "./sqlite.ts";
 * const dialect = await openSqlite(":memory:");
 * const { rows } = await sql<{ n: number }>`select count(*) as n from runs`.execute(dialect.db);
 * assert.equal(rows[0]?.n, 0);
 * await dialect.close();
 * ```
 */
export async function openSqlite(path: string): Promise<StoreDialect> {
  const memory = path === ":memory:";
  const fail = (cause: unknown, why = messageOf(cause)) =>
    new StoreError(`cannot open the store ${path}: ${why}`, { cause });
  // Owner-only, and never a file that is not thaw's store: refused before SQLite writes a byte.
  if (!memory) await prepareStoreFile(path);
  let raw: DatabaseSync;
  try {
    raw = new DatabaseSync(path);
  } catch (e) {
    throw fail(e);
  }
  try {
    raw.exec(`pragma busy_timeout = ${BUSY_TIMEOUT_MS}`);
    if (!memory) raw.exec("pragma journal_mode = wal");
    raw.exec("pragma synchronous = normal");
    raw.exec("pragma foreign_keys = on");
  } catch (e) {
    raw.close();
    const m = messageOf(e);
    throw fail(e, /not a database/.test(m) ? `the file is not an SQLite database (${m})` : m);
  }
  const dialect = new NodeSqliteDialect(raw);
  const db = new Kysely<StoreDatabase>({ dialect });
  try {
    await migrate(db);
  } catch (e) {
    await db.destroy();
    if (raw.isOpen) raw.close();
    throw fail(e instanceof StoreError ? e.cause ?? e : e, messageOf(e));
  }
  return {
    name: "sqlite",
    where: path,
    db,
    types: SQLITE_TYPES,
    // SQLite runs on this machine: its clock is this machine's.
    now: sql<number>`cast(unixepoch('subsec') * 1000 as integer)`,
    maxParams: 32766,
    // Takes the write lock at once: two processes wait on the busy timeout, not fail half-way.
    begin: "begin immediate",
    pipelines: false,
    locksOnBegin: true,
    // Compiled statements run on the connection itself (prepared once per SQL text, see
    // `node_sqlite.ts`), holding it as Kysely's own queries do.
    session: (fn) =>
      dialect.hold((c) =>
        fn(async (queries) => {
          const out: QueryResult<Row>[] = [];
          for (const q of queries) out.push(await c.executeQuery<Row>(q));
          return out;
        })
      ),
    classify: classifySqlite,
    message: messageOf,
    close: () => db.destroy(),
  };
}
