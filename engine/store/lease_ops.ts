/**
 * The `Leases` half of a `KyselyStore`: acquire, renew, release and take over a
 * run's lease, over the queries of `leases.ts`; a lease this store holds fences its writes (the
 * token is kept in the `StoreCore`).
 *
 * @module
 */
import { StoreError } from "./errors.ts";
import * as leases from "./leases.ts";
import type { StoreCore } from "./store_core.ts";
import type { Lease, LeaseState } from "./types.ts";

/** Acquires the run's lease (see `Leases.acquireLease`); the store's writes are fenced. */
export function acquireLease(
  c: StoreCore,
  run: string,
  holder: string,
  ttlMs: number,
): Promise<Lease> {
  return c.op("acquire the lease", run, async () => {
    const got = await leases.acquire(c.db, c.d.now, run, holder, ttlMs, "acquire");
    if (got === undefined) {
      const now = await leases.read(c.db, c.d.now, run);
      if (now === undefined) throw c.noRun("acquire the lease", run);
      throw new StoreError(
        `store ${c.path}: cannot acquire the lease of run "${run}": ${now.holder} holds it ` +
          `for ${Math.max(0, (now.expiresAt ?? now.now) - now.now) / 1000}s more ` +
          `(token ${now.token}); another engine runs it`,
      );
    }
    c.tokens.set(run, got.token);
    return got;
  });
}

/** Renews the lease (see `Leases.renewLease`); `LeaseLost` once taken over. */
export function renewLease(
  c: StoreCore,
  run: string,
  token: number,
  ttlMs: number,
): Promise<Lease> {
  return c.op("renew the lease", run, async () => {
    const got = await leases.renew(c.db, c.d.now, run, token, ttlMs);
    if (got !== undefined) return got;
    if (!c.tokens.has(run)) c.tokens.set(run, token);
    throw await c.refused("renew the lease", run);
  });
}

/** Gives the lease up; the store's writes to the run are no longer fenced. */
export function releaseLease(c: StoreCore, run: string, token: number): Promise<void> {
  return c.op("release the lease", run, async () => {
    await leases.release(c.db, run, token);
    if (c.tokens.get(run) === token) c.tokens.delete(run);
  });
}

/** Takes over a run whose lease expired (see `Leases.takeLease`). */
export function takeLease(
  c: StoreCore,
  run: string,
  holder: string,
  ttlMs: number,
): Promise<Lease | undefined> {
  return c.op("take over the lease", run, async () => {
    const got = await leases.acquire(c.db, c.d.now, run, holder, ttlMs, "take");
    if (got !== undefined) c.tokens.set(run, got.token);
    return got;
  });
}

/** Running runs whose lease expired, by the database's clock. */
export function expiredLeases(c: StoreCore): Promise<LeaseState[]> {
  return c.op("list expired leases", undefined, () => leases.expired(c.db, c.d.now));
}

/** The run's lease, or undefined when none is held. */
export function lease(c: StoreCore, run: string): Promise<LeaseState | undefined> {
  return c.op("read the lease", run, async () => {
    const now = await leases.read(c.db, c.d.now, run);
    return now?.holder == null || now.expiresAt == null ? undefined : now as LeaseState;
  });
}
