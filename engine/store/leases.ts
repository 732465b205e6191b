/**
 * The queries behind leases (see `Leases` in `types.ts`). Each is one statement, atomic on every
 * dialect: two standbys that take the same expired lease at once cannot both win (SQLite's write
 * lock, PostgreSQL's row lock and re-check). Expiry goes by the database's clock, `now`.
 *
 * @module
 */
import { type Kysely, type RawBuilder, sql } from "kysely";
import type { StoreDatabase } from "./migrations.ts";
import type { Lease, LeaseState } from "./types.ts";

type Db = Kysely<StoreDatabase>;

/** A run's lease columns as read, with the database's clock. */
export interface LeaseRow {
  readonly run: string;
  readonly holder: string | null;
  readonly token: number;
  readonly expiresAt: number | null;
  readonly now: number;
}

function lease(
  run: string,
  r: { lease_holder: string | null; lease_token: number; lease_expires_at: number | null },
): Lease {
  return {
    run,
    holder: r.lease_holder ?? "",
    token: Number(r.lease_token),
    expiresAt: Number(r.lease_expires_at),
  };
}

/**
 * Gives the lease of `run` to `holder` for `ttlMs` with a new token, when it may: `take` only
 * a running run whose lease expired; `acquire` also one nobody holds, or `holder` holds.
 * Undefined when it may not (or there is no such run).
 */
export async function acquire(
  db: Db,
  now: RawBuilder<number>,
  run: string,
  holder: string,
  ttlMs: number,
  mode: "acquire" | "take",
): Promise<Lease | undefined> {
  const ttl = Math.max(0, Math.round(ttlMs));
  const row = await db.updateTable("runs")
    .set((eb) => ({
      lease_token: eb("lease_token", "+", 1),
      lease_holder: holder,
      lease_expires_at: sql<number>`${now} + ${ttl}`,
    }))
    .where("id", "=", run)
    .where((eb) =>
      mode === "take"
        ? eb.and([
          eb("state", "=", "running"),
          eb("lease_expires_at", "is not", null),
          eb("lease_expires_at", "<", now),
        ])
        : eb.or([
          eb("lease_expires_at", "is", null),
          eb("lease_expires_at", "<", now),
          eb("lease_holder", "=", holder),
        ])
    )
    .returning(["lease_holder", "lease_token", "lease_expires_at"])
    .executeTakeFirst();
  return row === undefined ? undefined : lease(run, row);
}

/** Extends the lease of `run` held with `token`; undefined when the token is not current. */
export async function renew(
  db: Db,
  now: RawBuilder<number>,
  run: string,
  token: number,
  ttlMs: number,
): Promise<Lease | undefined> {
  const ttl = Math.max(0, Math.round(ttlMs));
  const row = await db.updateTable("runs")
    .set({ lease_expires_at: sql<number>`${now} + ${ttl}` })
    .where("id", "=", run).where("lease_token", "=", token)
    .returning(["lease_holder", "lease_token", "lease_expires_at"])
    .executeTakeFirst();
  return row === undefined ? undefined : lease(run, row);
}

/** Clears the lease of `run` held with `token` (nothing when the token is not current). */
export async function release(db: Db, run: string, token: number): Promise<void> {
  await db.updateTable("runs").set({ lease_holder: null, lease_expires_at: null })
    .where("id", "=", run).where("lease_token", "=", token).execute();
}

/** The lease columns of `run` and the database's clock; undefined when there is no run. */
export async function read(
  db: Db,
  now: RawBuilder<number>,
  run: string,
): Promise<LeaseRow | undefined> {
  const r = await db.selectFrom("runs")
    .select(["lease_holder", "lease_token", "lease_expires_at", now.as("now")])
    .where("id", "=", run).executeTakeFirst();
  if (r === undefined) return undefined;
  return {
    run,
    holder: r.lease_holder,
    token: Number(r.lease_token),
    expiresAt: r.lease_expires_at === null ? null : Number(r.lease_expires_at),
    now: Number(r.now),
  };
}

/** Running runs whose lease expired by the database's clock, longest expired first. */
export async function expired(db: Db, now: RawBuilder<number>): Promise<LeaseState[]> {
  const rows = await db.selectFrom("runs")
    .select(["id", "lease_holder", "lease_token", "lease_expires_at", now.as("now")])
    .where("state", "=", "running").where("lease_expires_at", "is not", null)
    .where("lease_expires_at", "<", now)
    .orderBy("lease_expires_at").orderBy("id").execute();
  return rows.map((r) => ({ ...lease(r.id, r), now: Number(r.now) }));
}
