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
 * import { adaptDatabase } from "./node_sqlite.ts";
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

/** A lock handed from holder to holder, in the order they asked. */
class Lock {
  #held = false;
  readonly #waiting: (() => void)[] = [];

  async take(): Promise<void> {
    if (!this.#held) {
      this.#held = true;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  give(): void {
    const next = this.#waiting.shift();
    if (next === undefined) this.#held = false;
    else next();
  }
}

/**
 * Kysely's SQLite driver, with transactions that take the write lock when they begin, and its
 * one connection held by one user at a time, be it Kysely or {@link NodeSqliteDialect.hold}.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  readonly #lock = new Lock();

  override async acquireConnection(): Promise<DatabaseConnection> {
    await this.#lock.take();
    return await super.acquireConnection();
  }

  override releaseConnection(): Promise<void> {
    this.#lock.give();
    return Promise.resolve();
  }

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
 * import { NodeSqliteDialect } from "./node_sqlite.ts";
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
  #driver: ImmediateSqliteDriver | undefined;

  /** Creates the dialect for an open database. */
  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** The driver: one connection, transactions begin immediate. */
  createDriver(): Driver {
    this.#driver = new ImmediateSqliteDriver({ database: adaptDatabase(this.#db) });
    return this.#driver;
  }

  /**
   * Holds the database's one connection while `fn` runs (Kysely's own queries wait for it), for
   * statements already compiled: they run on it without going through Kysely's executor. Only
   * once the Kysely instance over this dialect has run a query (opening its driver).
   */
  async hold<T>(fn: (connection: DatabaseConnection) => Promise<T>): Promise<T> {
    const driver = this.#driver;
    if (driver === undefined) throw new Error("the SQLite dialect is not open yet");
    const connection = await driver.acquireConnection();
    try {
      return await fn(connection);
    } finally {
      await driver.releaseConnection();
    }
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
