/**
 * The store's schema and its versioned migrations, run with Kysely's `Migrator`.
 *
 * Migrations are named `NNNN_what` and run in name order, each once; Kysely records them in
 * `kysely_migration`. A new version of thaw adds a migration here; it never edits an old one.
 * One set of migrations serves every dialect: each names its column types through
 * {@link ColumnTypes} (SQLite keeps the types it always had; PostgreSQL gets `bigint` for
 * milliseconds and bytes, `double precision` for seconds, `boolean` for flags and `text`
 * compared byte by byte, as SQLite does). JSON values are kept as text; step times are seconds
 * from the start of the run; wall-clock times are milliseconds since the Unix epoch.
 *
 * @module
 */
import {
  type ColumnDataType,
  type ColumnDefinitionBuilder,
  type ColumnType,
  type Expression,
  type Generated,
  type Kysely,
  sql,
} from "kysely";
import { type Migration, type MigrationProvider, Migrator } from "kysely/migration";
import { StoreError } from "./errors.ts";
import { initialMigration } from "./migration_initial.ts";
import { slSamplesMigration, type SlSamplesTable } from "./sl_samples.ts";

/** A row of `runs`. */
export interface RunsTable {
  id: string;
  runbook: string;
  file: string;
  file_sha256: string;
  /** The runbook file's text as run (migration 0004); null for older runs. */
  runbook_text: string | null;
  mode: string;
  /** A flag: 0 or 1 on SQLite, a boolean on PostgreSQL; written as a boolean. */
  drill: Flag;
  strategy: string;
  /** JSON object of `--var` overrides. */
  vars: string;
  /** JSON array of step ids in runbook order. */
  steps: string;
  started_at: number;
  pid: number;
  host: string;
  state: string;
  heartbeat_at: number;
  ended_at: number | null;
  report: string | null;
  outcome: string | null;
  /**
   * The last `seq` given to the run's step changes (migration 0005); kept on PostgreSQL only
   * (SQLite numbers from `step_events` under its write lock, see `kysely_store.ts`).
   */
  last_seq: Generated<number>;
  /** Who holds the run's lease (migration 0005); null when nobody does. */
  lease_holder: Generated<string | null>;
  /** The fencing token: grows by one each time the lease is acquired or taken over. */
  lease_token: Generated<number>;
  /** When the lease expires, by the database's clock, in ms; null when not held. */
  lease_expires_at: Generated<number | null>;
}

/** A row of `step_events`: one state change, numbered per run from 1. */
export interface StepEventsTable {
  run: string;
  seq: number;
  step: string;
  state: string;
  at: number;
  detail: string | null;
}

/** A row of `steps`: a step's current state, folded from its changes. */
export interface StepsTable {
  run: string;
  step: string;
  state: string;
  start_s: number | null;
  end_s: number | null;
  frozen_s: number;
  /** When the step last froze, while it is frozen. */
  frozen_since: number | null;
  detail: string | null;
  /** seq of the step's first change (orders steps missing from the run's list). */
  first_seq: number;
}

/** A row of `progress`: the latest sample of a fetch. */
export interface ProgressTable {
  run: string;
  step: string;
  bytes: number;
  total: number | null;
  prefetched: number;
  demanded: Flag;
  source: number;
  at: number;
  /** Seconds the fetch was moving, once it is done (migration 0003). */
  moving_s: number | null;
}

/** A row of `commands`: a request from outside the engine. */
export interface CommandsTable {
  id: Generated<number>;
  run: string;
  kind: string;
  step: string | null;
  at: number;
  /** False until the engine takes it. */
  taken: ColumnType<boolean | number, boolean | undefined, boolean>;
}

/** A row of `processes`: a process a step started. */
export interface ProcessesTable {
  run: string;
  step: string;
  pid: number;
  pgid: number;
  /** The log file of a background service (migration 0002_add_process_log). */
  log: string | null;
  /** The host (`on:`) it runs on; null: this machine (migration 0006_process_host). */
  host: string | null;
}

/** The store's tables, for Kysely. */
export interface StoreDatabase {
  runs: RunsTable;
  step_events: StepEventsTable;
  steps: StepsTable;
  progress: ProgressTable;
  commands: CommandsTable;
  processes: ProcessesTable;
  /** Service-level samples (migration 0006, `sl_samples.ts`). */
  sl_samples: SlSamplesTable;
}

/** A boolean column: read as 0/1 (SQLite) or a boolean (PostgreSQL), written as a boolean. */
export type Flag = ColumnType<boolean | number, boolean, boolean>;

// deno-lint-ignore no-explicit-any
type AnyDb = Kysely<any>;
type Type = ColumnDataType | Expression<unknown>;

/** The column types a dialect gives the schema (see the module's comment). */
export interface ColumnTypes {
  /** Text: names, ids, JSON. */
  readonly text: Type;
  /** Small integers: pids, sequence numbers, indexes. */
  readonly int: Type;
  /** Large integers: wall-clock milliseconds, bytes. */
  readonly big: Type;
  /** Seconds, with fractions. */
  readonly real: Type;
  /** Flags (with {@link ColumnTypes.no} as their false). */
  readonly flag: Type;
  readonly no: boolean | number;
  /** The type of a generated id, and what makes it generated. */
  readonly id: Type;
  generated(c: ColumnDefinitionBuilder): ColumnDefinitionBuilder;
}

/** SQLite's column types: the ones thaw's SQLite stores always had. */
export const SQLITE_TYPES: ColumnTypes = {
  text: "text",
  int: "integer",
  big: "integer",
  real: "real",
  flag: "integer",
  no: 0,
  id: "integer",
  generated: (c) => c.autoIncrement(),
};

/** PostgreSQL's column types. */
export const POSTGRES_TYPES: ColumnTypes = {
  text: sql`text collate "C"`,
  int: "integer",
  big: "bigint",
  real: "double precision",
  flag: "boolean",
  no: false,
  id: "bigint",
  generated: (c) => c.generatedByDefaultAsIdentity(),
};

/**
 * Every migration, by name, with the column types `t` of a dialect; names sort in the order
 * they run.
 */
export function migrationsFor(t: ColumnTypes): Readonly<Record<string, Migration>> {
  return {
    "0001_initial": initialMigration(t),
    "0002_add_process_log": {
      async up(db: AnyDb): Promise<void> {
        // Where a background service appends its output, for `thaw status RUN_ID`.
        await db.schema.alterTable("processes").addColumn("log", t.text).execute();
      },
    },
    "0003_progress_moving": {
      async up(db: AnyDb): Promise<void> {
        // The seconds a done fetch was moving (not paused, not held back by the link): what
        // history learns its source's rate over.
        await db.schema.alterTable("progress").addColumn("moving_s", t.real).execute();
      },
    },
    "0004_runbook_text": {
      async up(db: AnyDb): Promise<void> {
        // The runbook's text as run, so the API and resume need only the store.
        await db.schema.alterTable("runs").addColumn("runbook_text", t.text).execute();
      },
    },
    "0005_leases": {
      async up(db: AnyDb): Promise<void> {
        // Step changes are numbered from a counter on the run (safe under any isolation), and
        // an engine holds a lease on its run: its writes are fenced by the token.
        await db.schema.alterTable("runs")
          .addColumn("last_seq", t.int, (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable("runs").addColumn("lease_holder", t.text).execute();
        await db.schema.alterTable("runs")
          .addColumn("lease_token", t.big, (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable("runs").addColumn("lease_expires_at", t.big).execute();
        await sql`update runs set last_seq = coalesce(
        (select max(seq) from step_events where step_events.run = runs.id), 0)`.execute(db);
        await db.schema.createIndex("runs_by_lease").on("runs")
          .columns(["state", "lease_expires_at"]).execute();
      },
    },
    // Service-level samples as taken (contract revision 4).
    "0006_sl_samples": slSamplesMigration(t),
    "0006_process_host": {
      async up(db: AnyDb): Promise<void> {
        // The host (`on:`) a process runs on; null: the machine that runs thaw.
        await db.schema.alterTable("processes").addColumn("host", t.text).execute();
      },
    },
  };
}

/** Every migration of an SQLite store, by name. */
export const MIGRATIONS: Readonly<Record<string, Migration>> = migrationsFor(SQLITE_TYPES);

/**
 * The migrations as Kysely's `Migrator` wants them.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { migrationProvider } from "./migrations.ts";
 * const names = Object.keys(await migrationProvider().getMigrations());
 * equal(names[0], "0001_initial");
 * ```
 */
export function migrationProvider(
  migrations: Readonly<Record<string, Migration>> = MIGRATIONS,
): MigrationProvider {
  return { getMigrations: () => Promise.resolve({ ...migrations }) };
}

/**
 * Brings the schema up to date; returns the names of the migrations it ran (none when the store
 * is current). Throws a {@link StoreError} naming the migration that failed and why; a failed
 * migration leaves the schema as it was (it runs in a transaction).
 *
 * @example
 * ```ts
 * import { deepEqual } from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { Kysely } from "kysely";
 * import { NodeSqliteDialect } from "./dialects/node_sqlite.ts";
 * import { migrate, MIGRATIONS } from "./migrations.ts";
 * import type { StoreDatabase } from "./migrations.ts";
 * const db = new Kysely<StoreDatabase>({
 *   dialect: new NodeSqliteDialect(new DatabaseSync(":memory:")),
 * });
 * deepEqual(await migrate(db), Object.keys(MIGRATIONS).sort());
 * deepEqual(await migrate(db), []); // already up to date
 * await db.destroy();
 * ```
 */
export async function migrate(
  db: AnyDb,
  migrations: Readonly<Record<string, Migration>> = MIGRATIONS,
): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider(migrations) });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results.find((r) => r.status === "Error")?.migrationName;
    const cause = error instanceof Error ? error.message : String(error);
    const missing = /previously executed migration (\S+) is missing/.exec(cause);
    if (missing) {
      throw new StoreError(
        `the store was written by a newer thaw (it has migration ${missing[1]}, ` +
          `which this version does not know); upgrade thaw`,
        { cause: error },
      );
    }
    throw new StoreError(
      failed ? `migration ${failed} failed: ${cause}` : `migrations failed: ${cause}`,
      { cause: error },
    );
  }
  return results.filter((r) => r.status === "Success").map((r) => r.migrationName);
}

/** Names of the migrations the store has run, in order (for tests and diagnostics). */
export async function executedMigrations(db: AnyDb): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`select name from kysely_migration order by name`
    .execute(db);
  return rows.map((r) => r.name);
}
