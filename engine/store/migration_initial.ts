/**
 * The store's first migration, `0001_initial`: the tables of runs, their steps' changes and
 * records, fetch progress, commands and processes, with the column types of a dialect (see
 * `migrations.ts`, which lists every migration).
 *
 * @module
 */
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";
import type { ColumnTypes } from "./migrations.ts";

// deno-lint-ignore no-explicit-any
type AnyDb = Kysely<any>;

/** The first migration, with the column types `t` of a dialect. */
export function initialMigration(t: ColumnTypes): Migration {
  return {
    async up(db: AnyDb): Promise<void> {
      await createRuns(db, t);
      await createStepTables(db, t);
      await createCommandTables(db, t);
    },
  };
}

/** `runs`, with its indexes. */
async function createRuns(db: AnyDb, t: ColumnTypes): Promise<void> {
  await db.schema.createTable("runs")
    .addColumn("id", t.text, (c) => c.primaryKey().notNull())
    .addColumn("runbook", t.text, (c) => c.notNull())
    .addColumn("file", t.text, (c) => c.notNull())
    .addColumn("file_sha256", t.text, (c) => c.notNull())
    .addColumn("mode", t.text, (c) => c.notNull())
    .addColumn("drill", t.flag, (c) => c.notNull())
    .addColumn("strategy", t.text, (c) => c.notNull())
    .addColumn("vars", t.text, (c) => c.notNull())
    .addColumn("steps", t.text, (c) => c.notNull())
    .addColumn("started_at", t.big, (c) => c.notNull())
    .addColumn("pid", t.int, (c) => c.notNull())
    .addColumn("host", t.text, (c) => c.notNull())
    .addColumn("state", t.text, (c) => c.notNull())
    .addColumn("heartbeat_at", t.big, (c) => c.notNull())
    .addColumn("ended_at", t.big)
    .addColumn("report", t.text)
    .addColumn("outcome", t.text)
    .execute();
  await db.schema.createIndex("runs_by_start").on("runs")
    .columns(["started_at desc", "id desc"]).execute();
  await db.schema.createIndex("runs_by_runbook").on("runs")
    .columns(["runbook", "started_at desc"]).execute();
}

/** `step_events` (every change), `steps` (each step's record) and `progress` (fetches). */
async function createStepTables(db: AnyDb, t: ColumnTypes): Promise<void> {
  await db.schema.createTable("step_events")
    .addColumn("run", t.text, (c) => c.notNull().references("runs.id").onDelete("cascade"))
    .addColumn("seq", t.int, (c) => c.notNull())
    .addColumn("step", t.text, (c) => c.notNull())
    .addColumn("state", t.text, (c) => c.notNull())
    .addColumn("at", t.real, (c) => c.notNull())
    .addColumn("detail", t.text)
    .addPrimaryKeyConstraint("step_events_pk", ["run", "seq"])
    .execute();

  await db.schema.createTable("steps")
    .addColumn("run", t.text, (c) => c.notNull().references("runs.id").onDelete("cascade"))
    .addColumn("step", t.text, (c) => c.notNull())
    .addColumn("state", t.text, (c) => c.notNull())
    .addColumn("start_s", t.real)
    .addColumn("end_s", t.real)
    .addColumn("frozen_s", t.real, (c) => c.notNull().defaultTo(0))
    .addColumn("frozen_since", t.real)
    .addColumn("detail", t.text)
    .addColumn("first_seq", t.int, (c) => c.notNull())
    .addPrimaryKeyConstraint("steps_pk", ["run", "step"])
    .execute();

  await db.schema.createTable("progress")
    .addColumn("run", t.text, (c) => c.notNull().references("runs.id").onDelete("cascade"))
    .addColumn("step", t.text, (c) => c.notNull())
    .addColumn("bytes", t.big, (c) => c.notNull())
    .addColumn("total", t.big)
    .addColumn("prefetched", t.big, (c) => c.notNull())
    .addColumn("demanded", t.flag, (c) => c.notNull())
    .addColumn("source", t.int, (c) => c.notNull())
    .addColumn("at", t.big, (c) => c.notNull())
    .addPrimaryKeyConstraint("progress_pk", ["run", "step"])
    .execute();
}

/** `commands` (a person's, queued for the engine) and `processes` (what runs, by step). */
async function createCommandTables(db: AnyDb, t: ColumnTypes): Promise<void> {
  await db.schema.createTable("commands")
    .addColumn("id", t.id, (c) => t.generated(c.primaryKey()))
    .addColumn("run", t.text, (c) => c.notNull().references("runs.id").onDelete("cascade"))
    .addColumn("kind", t.text, (c) => c.notNull())
    .addColumn("step", t.text)
    .addColumn("at", t.big, (c) => c.notNull())
    .addColumn("taken", t.flag, (c) => c.notNull().defaultTo(t.no))
    .execute();
  await db.schema.createIndex("commands_waiting").on("commands")
    .columns(["run", "taken", "id"]).execute();

  await db.schema.createTable("processes")
    .addColumn("run", t.text, (c) => c.notNull().references("runs.id").onDelete("cascade"))
    .addColumn("step", t.text, (c) => c.notNull())
    .addColumn("pid", t.int, (c) => c.notNull())
    .addColumn("pgid", t.int, (c) => c.notNull())
    .addPrimaryKeyConstraint("processes_pk", ["run", "step"])
    .execute();
}
