/**
 * The store's history query: what earlier runs of a runbook teach about its steps' durations
 * and sizes (for estimates). One query for every dialect.
 *
 * @module
 */
import { type Kysely, sql } from "kysely";
import type { StoreDatabase } from "./migrations.ts";
import type { HistorySample } from "./types.ts";

/**
 * Done steps (with a start and an end) of the runs of `runbook` that ended `done`, newest run
 * first (then by step id), at most `limit` per step (see `Store.history`).
 */
export async function history(
  db: Kysely<StoreDatabase>,
  runbook: string,
  limit: number,
): Promise<HistorySample[]> {
  if (limit <= 0) return [];
  const ranked = db.selectFrom("runs as r")
    .innerJoin("steps as s", "s.run", "r.id")
    .leftJoin(
      "progress as p",
      (j) => j.onRef("p.run", "=", "s.run").onRef("p.step", "=", "s.step"),
    )
    .where("r.runbook", "=", runbook).where("r.state", "=", "done")
    .where("s.state", "=", "done")
    .where("s.start_s", "is not", null).where("s.end_s", "is not", null)
    .select([
      "r.id as run",
      "s.step as step",
      "r.started_at as started_at",
      sql<number>`s.end_s - s.start_s`.as("seconds"),
      sql<number>`s.end_s`.as("end_s"),
      sql<number>`coalesce(p.bytes, 0)`.as("bytes"),
      "p.moving_s as moving_s",
      sql<number>`row_number() over (partition by s.step order by r.started_at desc, r.id desc)`
        .as("rank"),
    ]);
  const rows = await db.selectFrom(ranked.as("h")).selectAll()
    .where("rank", "<=", Math.floor(limit))
    .orderBy("started_at", "desc").orderBy("run", "desc").orderBy("step").execute();
  return rows.map((r) => ({
    run: r.run,
    step: r.step,
    seconds: Number(r.seconds),
    bytes: Number(r.bytes),
    endedAt: Number(r.started_at) + Math.round(Number(r.end_s) * 1000),
    ...(r.moving_s === null || r.moving_s === undefined ? {} : { moving: r.moving_s }),
  }));
}
