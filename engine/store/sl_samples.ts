/**
 * Service-level samples in the store (contract revision 4, "Service level"): the `sl_samples`
 * table (migration `0006_sl_samples`), its rows, and the statements that insert and list them,
 * for every dialect. A sample is stored as it is taken, numbered by the engine per run (`seq`);
 * inserting a row twice keeps the first.
 *
 * @module
 */
import type { CompiledQuery, Kysely } from "kysely";
import type { Migration } from "kysely/migration";
import type { SlSampleRow } from "../service_level/events.ts";
import type { ColumnTypes, Flag, StoreDatabase } from "./migrations.ts";
import { chunks } from "./writes.ts";

export type { SlSampleRow } from "../service_level/events.ts";

/** A row of `sl_samples`: one service-level sample, numbered per run from 1. */
export interface SlSamplesTable {
  run: string;
  seq: number;
  probe: string;
  /** When the probe started, seconds from the start of the run. */
  t_s: number;
  /** Latency in ms (http, tcp) or the number printed (run); null when none measured. */
  value: number | null;
  ok: Flag;
  /** Why the sample failed (failed samples only). */
  error: string | null;
}

// deno-lint-ignore no-explicit-any
type AnyDb = Kysely<any>;
type Db = Kysely<StoreDatabase>;

/** The migration that adds `sl_samples`, with the column types `t` of a dialect. */
export function slSamplesMigration(t: ColumnTypes): Migration {
  return {
    async up(db: AnyDb): Promise<void> {
      await db.schema.createTable("sl_samples")
        .addColumn("run", t.text, (c) => c.notNull().references("runs.id").onDelete("cascade"))
        .addColumn("seq", t.int, (c) => c.notNull())
        .addColumn("probe", t.text, (c) => c.notNull())
        .addColumn("t_s", t.real, (c) => c.notNull())
        .addColumn("value", t.real)
        .addColumn("ok", t.flag, (c) => c.notNull())
        .addColumn("error", t.text)
        .addPrimaryKeyConstraint("sl_samples_pk", ["run", "seq"])
        .execute();
    },
  };
}

/** The statements that insert `rows` of `run` (a row already stored is kept as it was). */
export function insertSlSamples(
  db: Db,
  run: string,
  rows: readonly SlSampleRow[],
  maxParams: number,
): CompiledQuery[] {
  return [...chunks(rows, 7, maxParams)].map((part) =>
    db.insertInto("sl_samples")
      .values(part.map((r) => ({
        run,
        seq: r.seq,
        probe: r.probe,
        t_s: r.t_s,
        value: r.value,
        ok: r.ok,
        error: r.ok ? null : r.error,
      })))
      .onConflict((oc) => oc.columns(["run", "seq"]).doNothing())
      .compile()
  );
}

/** The samples of `run` with `seq > afterSeq`, in `seq` order. */
export async function listSlSamples(
  db: Db,
  run: string,
  afterSeq = 0,
): Promise<SlSampleRow[]> {
  const rows = await db.selectFrom("sl_samples")
    .select(["seq", "probe", "t_s", "value", "ok", "error"])
    .where("run", "=", run).where("seq", ">", afterSeq).orderBy("seq").execute();
  return rows.map((r) => ({
    seq: Number(r.seq),
    probe: r.probe,
    t_s: Number(r.t_s),
    value: r.value === null ? null : Number(r.value),
    ok: r.ok === true || r.ok === 1,
    error: r.error,
  }));
}
