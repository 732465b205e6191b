/**
 * A Kysely dialect over `node:sqlite` (`DatabaseSync`), so thaw needs no native add-on.
 *
 * Kysely's own SQLite dialect expects a database shaped like better-sqlite3; {@link adaptDatabase}
 * gives a `DatabaseSync` that shape. {@link NodeSqliteDialect} adds two things SQLite does well
 * and Kysely's defaults leave out: transactions start with `BEGIN IMMEDIATE` (they take the write
 * lock at once, so two processes wait on `busy_timeout` instead of failing half-way), and
 * migrations run inside one transaction (SQLite's DDL is transactional).
 *
 * @module
 */
import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import {
  CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  SqliteAdapter,
  type SqliteDatabase,
  SqliteDriver,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type SqliteStatement,
} from "kysely";

/** Turns a value Kysely binds into one `node:sqlite` accepts (booleans become 0 and 1). */
function bindable(value: unknown): SQLInputValue {
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value === undefined) return null;
  return value as SQLInputValue;
}

/**
 * Wraps a `node:sqlite` database in the better-sqlite3 shape Kysely's SQLite driver uses.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { adaptDatabase } from "./sqlite_dialect.ts";
 * const db = adaptDatabase(new DatabaseSync(":memory:"));
 * const stmt = db.prepare("select ? + 1 as n");
 * equal(stmt.reader, true);
 * equal((stmt.all([41])[0] as { n: number }).n, 42);
 * equal(db.prepare("create table t (a)").reader, false);
 * db.close();
 * ```
 */
export function adaptDatabase(db: DatabaseSync): SqliteDatabase {
  // Prepared once per text: the live engine runs the same few statements every turn.
  const prepared = new Map<string, SqliteStatement>();
  return {
    close: () => {
      prepared.clear();
      if (db.isOpen) db.close();
    },
    prepare(sql: string): SqliteStatement {
      let statement = prepared.get(sql);
      if (statement === undefined) {
        if (prepared.size >= MAX_PREPARED) prepared.clear();
        statement = prepare(db, sql);
        prepared.set(sql, statement);
      }
      return statement;
    },
  };
}

/** Most statements {@linkcode adaptDatabase} keeps prepared. */
const MAX_PREPARED = 256;

function prepare(db: DatabaseSync, sql: string): SqliteStatement {
  const stmt = db.prepare(sql);
  const args = (parameters: ReadonlyArray<unknown>) => parameters.map(bindable);
  return {
    reader: stmt.columns().length > 0,
    all: (parameters) => stmt.all(...args(parameters)),
    run(parameters) {
      const { changes, lastInsertRowid } = stmt.run(...args(parameters));
      return { changes: Number(changes), lastInsertRowid: Number(lastInsertRowid) };
    },
    iterate: (parameters) => stmt.iterate(...args(parameters)),
  };
}

/** Kysely's SQLite driver, with transactions that take the write lock when they begin. */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("begin immediate"));
  }
}

/** Kysely's SQLite adapter, with migrations in one transaction (SQLite's DDL is transactional). */
class TransactionalSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

/**
 * A Kysely dialect for a `node:sqlite` database. Kysely owns the database from then on:
 * `kysely.destroy()` closes it.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { Kysely, sql } from "kysely";
 * import { NodeSqliteDialect } from "./sqlite_dialect.ts";
 * const db = new Kysely<Record<string, never>>({
 *   dialect: new NodeSqliteDialect(new DatabaseSync(":memory:")),
 * });
 * const { rows } = await sql<{ n: number }>`select 6 * 7 as n`.execute(db);
 * equal(rows[0]?.n, 42);
 * await db.destroy();
 * ```
 */
export class NodeSqliteDialect implements Dialect {
  readonly #db: DatabaseSync;

  /** Creates the dialect for an open database. */
  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** The driver: one connection, transactions begin immediate. */
  createDriver(): Driver {
    return new ImmediateSqliteDriver({ database: adaptDatabase(this.#db) });
  }

  /** SQLite's query compiler. */
  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }

  /** SQLite's adapter, with transactional DDL. */
  createAdapter(): DialectAdapter {
    return new TransactionalSqliteAdapter();
  }

  /** SQLite's introspector. */
  // deno-lint-ignore no-explicit-any
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }
}
