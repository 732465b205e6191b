/**
 * What a store needs from a database, one implementation per dialect (`sqlite.ts`,
 * `postgres.ts`), in the spirit of Kysely's own `Dialect`: the shared {@link KyselyStore} writes
 * every query once, and each dialect brings what differs: how to open and close the database,
 * its column types, its clock, and what its errors mean.
 *
 * @module
 */
import type { CompiledQuery, Kysely, QueryResult, RawBuilder } from "kysely";
import type { ColumnTypes, StoreDatabase } from "../migrations.ts";

/** What went wrong, in the store's own terms (the dialect reads its driver's errors). */
export type Failure =
  /** A row names a run that does not exist. */
  | { readonly kind: "no-run" }
  /** A row with that key exists already. */
  | { readonly kind: "exists" }
  /** Another process held a lock for too long; `why` says so for an SRE. */
  | { readonly kind: "busy"; readonly why: string }
  /** The database cannot be reached (or refused the login); `why` has the server's words. */
  | { readonly kind: "unreachable"; readonly why: string };

/** A database, opened and migrated, as the store uses it. */
export interface StoreDialect {
  /** `sqlite` or `postgres`. */
  readonly name: string;
  /** Where the store is, for messages: a path, or a URL with any password hidden. */
  readonly where: string;
  readonly db: Kysely<StoreDatabase>;
  /** The column types its migrations use. */
  readonly types: ColumnTypes;
  /** The database's clock, in milliseconds since the Unix epoch (leases expire by it). */
  readonly now: RawBuilder<number>;
  /** Most values one statement binds (multi-row writes are cut to fit). */
  readonly maxParams: number;
  /** The statement that begins a write transaction (SQLite: `begin immediate`). */
  readonly begin: string;
  /**
   * True when statements sent together travel in one round trip and an error aborts the whole
   * transaction (PostgreSQL, pipelined): COMMIT then goes with a transaction's last writes.
   */
  readonly pipelines: boolean;
  /**
   * True when {@link StoreDialect.begin} takes the database's one write lock (SQLite's `begin
   * immediate`): nothing a write transaction reads can change before it commits, so numbering
   * step changes and checking a lease token read the run's row instead of writing it (a write
   * would copy the whole row, report and runbook text included, on every commit).
   */
  readonly locksOnBegin: boolean;
  /**
   * Holds one connection while `fn` runs; `fn` sends statements on it with {@link Send}.
   * Statements of one `send` travel together where the dialect {@link StoreDialect.pipelines}.
   */
  session<T>(fn: (send: Send) => Promise<T>): Promise<T>;
  /** What an error of its driver means, or undefined when it is none of the {@link Failure}s. */
  classify(e: unknown): Failure | undefined;
  /** Text of an error, with anything secret (a password) taken out. */
  message(e: unknown): string;
  /** Closes the database (the Kysely instance with it). */
  close(): Promise<void>;
}

/** A row as a statement gives it back. */
export type Row = Record<string, unknown>;

/**
 * Sends statements on a session's connection, in order; resolves with their results in order,
 * or rejects with the first error (once every statement has answered).
 */
export type Send = (queries: readonly CompiledQuery[]) => Promise<QueryResult<Row>[]>;

/** The message of any thrown value. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A flag read back from any dialect: 0/1 (SQLite) or a boolean (PostgreSQL). */
export function flag(v: unknown): boolean {
  return v === true || v === 1 || v === 1n || v === "1" || v === "t";
}
