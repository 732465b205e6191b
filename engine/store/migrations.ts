/**
 * The store's schema and its versioned migrations, run with Kysely's `Migrator`.
 *
 * Migrations are named `NNNN_what` and run in name order, each once; Kysely records them in
 * `kysely_migration`. A new version of thaw adds a migration here; it never edits an old one.
 * JSON values are kept as TEXT; step times are REAL seconds from the start of the run; wall-clock
 * times are INTEGER milliseconds.
 *
 * @module
 */
import { type Generated, type Kysely, sql } from "kysely";
import { type Migration, type MigrationProvider, Migrator } from "kysely/migration";
import { StoreError } from "./errors.ts";

/** A row of `runs`. */
export interface RunsTable {
  id: string;
  runbook: string;
  file: string;
  file_sha256: string;
  mode: string;
  /** 0 or 1. */
  drill: number;
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
  /** 0 or 1. */
  demanded: number;
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
  /** 0 until the engine takes it, then 1. */
  taken: Generated<number>;
}

/** A row of `processes`: a process a step started. */
export interface ProcessesTable {
  run: string;
  step: string;
  pid: number;
  pgid: number;
  /** The log file of a background service (migration 0002_add_process_log). */
  log: string | null;
}

/** The store's tables, for Kysely. */
export interface StoreDatabase {
  runs: RunsTable;
  step_events: StepEventsTable;
  steps: StepsTable;
  progress: ProgressTable;
  commands: CommandsTable;
  processes: ProcessesTable;
}

// deno-lint-ignore no-explicit-any
type AnyDb = Kysely<any>;

/** Every migration, by name; names sort in the order they run. */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  "0001_initial": {
    async up(db: AnyDb): Promise<void> {
      await db.schema.createTable("runs")
        .addColumn("id", "text", (c) => c.primaryKey().notNull())
        .addColumn("runbook", "text", (c) => c.notNull())
        .addColumn("file", "text", (c) => c.notNull())
        .addColumn("file_sha256", "text", (c) => c.notNull())
        .addColumn("mode", "text", (c) => c.notNull())
        .addColumn("drill", "integer", (c) => c.notNull())
        .addColumn("strategy", "text", (c) => c.notNull())
        .addColumn("vars", "text", (c) => c.notNull())
        .addColumn("steps", "text", (c) => c.notNull())
        .addColumn("started_at", "integer", (c) => c.notNull())
        .addColumn("pid", "integer", (c) => c.notNull())
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("heartbeat_at", "integer", (c) => c.notNull())
        .addColumn("ended_at", "integer")
        .addColumn("report", "text")
        .addColumn("outcome", "text")
        .execute();
      await db.schema.createIndex("runs_by_start").on("runs")
        .columns(["started_at desc", "id desc"]).execute();
      await db.schema.createIndex("runs_by_runbook").on("runs")
        .columns(["runbook", "started_at desc"]).execute();

      await db.schema.createTable("step_events")
        .addColumn("run", "text", (c) => c.notNull().references("runs.id").onDelete("cascade"))
        .addColumn("seq", "integer", (c) => c.notNull())
        .addColumn("step", "text", (c) => c.notNull())
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("at", "real", (c) => c.notNull())
        .addColumn("detail", "text")
        .addPrimaryKeyConstraint("step_events_pk", ["run", "seq"])
        .execute();

      await db.schema.createTable("steps")
        .addColumn("run", "text", (c) => c.notNull().references("runs.id").onDelete("cascade"))
        .addColumn("step", "text", (c) => c.notNull())
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("start_s", "real")
        .addColumn("end_s", "real")
        .addColumn("frozen_s", "real", (c) => c.notNull().defaultTo(0))
        .addColumn("frozen_since", "real")
        .addColumn("detail", "text")
        .addColumn("first_seq", "integer", (c) => c.notNull())
        .addPrimaryKeyConstraint("steps_pk", ["run", "step"])
        .execute();

      await db.schema.createTable("progress")
        .addColumn("run", "text", (c) => c.notNull().references("runs.id").onDelete("cascade"))
        .addColumn("step", "text", (c) => c.notNull())
        .addColumn("bytes", "integer", (c) => c.notNull())
        .addColumn("total", "integer")
        .addColumn("prefetched", "integer", (c) => c.notNull())
        .addColumn("demanded", "integer", (c) => c.notNull())
        .addColumn("source", "integer", (c) => c.notNull())
        .addColumn("at", "integer", (c) => c.notNull())
        .addPrimaryKeyConstraint("progress_pk", ["run", "step"])
        .execute();

      await db.schema.createTable("commands")
        .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
        .addColumn("run", "text", (c) => c.notNull().references("runs.id").onDelete("cascade"))
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("step", "text")
        .addColumn("at", "integer", (c) => c.notNull())
        .addColumn("taken", "integer", (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex("commands_waiting").on("commands")
        .columns(["run", "taken", "id"]).execute();

      await db.schema.createTable("processes")
        .addColumn("run", "text", (c) => c.notNull().references("runs.id").onDelete("cascade"))
        .addColumn("step", "text", (c) => c.notNull())
        .addColumn("pid", "integer", (c) => c.notNull())
        .addColumn("pgid", "integer", (c) => c.notNull())
        .addPrimaryKeyConstraint("processes_pk", ["run", "step"])
        .execute();
    },
  },
  "0002_add_process_log": {
    async up(db: AnyDb): Promise<void> {
      // Where a background service appends its output, for `thaw status RUN_ID`.
      await db.schema.alterTable("processes").addColumn("log", "text").execute();
    },
  },
  "0003_progress_moving": {
    async up(db: AnyDb): Promise<void> {
      // The seconds a done fetch was moving (not paused, not held back by the link): what
      // history learns its source's rate over.
      await db.schema.alterTable("progress").addColumn("moving_s", "real").execute();
    },
  },
};

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
 * import { NodeSqliteDialect } from "./sqlite_dialect.ts";
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
