/**
 * The engine's lease on its run (contract revision 3, "Shared state and takeover"): acquired once
 * the run exists (or before a resumed run is touched), renewed on its own timer about every
 * second (a slow turn of the loop does not hold it back), given up when the run ends. Once the
 * store refuses a write or a renewal ({@link LeaseLost}: a standby took the run over; or any other
 * `StoreError`: the store is out of reach), the engine changes nothing more: the loop stops its
 * steps' processes (services of done steps stay up) and the run ends with {@link EngineStopped},
 * which the CLI turns into exit code {@link EXIT_ENGINE_STOPPED}.
 *
 * @module
 */
import { hostname } from "node:os";
import { LeaseLost, StoreError } from "../store/errors.ts";
import { processAlive } from "../../steps/process/process.ts";
import type { Lease, LeaseStore, RunRecord, Store } from "../store/types.ts";

/**
 * How long a lease lasts unless renewed (ms). A standby takes a run over at most this long after
 * its engine's last renewal, plus its poll (about 1 s): within 10 s of the engine's death.
 */
export const LEASE_TTL_MS = 5000;

/** How often the engine renews its lease (ms). */
export const RENEW_MS = 1000;

/** The exit code of an engine that lost its lease (or its store) mid-run and stopped its steps. */
export const EXIT_ENGINE_STOPPED = 4;

/** How an engine holds its run's lease. */
export interface LeaseOptions {
  /** Who holds it (default `host:pid`, see {@link engineName}). */
  readonly holder?: string;
  /** How long it lasts unless renewed (default {@link LEASE_TTL_MS}). */
  readonly ttlMs?: number;
  /** A lease already taken (a standby's takeover): held from the start, not acquired again. */
  readonly taken?: Lease;
}

/** The name an engine holds leases under: `host:pid` (as `thaw status` shows the holder). */
export function engineName(): string {
  return `${hostname()}:${Deno.pid}`;
}

/** Whether `store` has leases (every store `openStore()` gives has). */
export function hasLeases(store: Store): store is LeaseStore {
  return typeof (store as Partial<LeaseStore>).acquireLease === "function";
}

/**
 * The engine gave its run up mid-way: it lost the lease (another engine runs the run now) or
 * its store; it stopped its steps and wrote nothing more. The CLI exits with {@link exitCode}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EngineStopped, EXIT_ENGINE_STOPPED } from "./lease.ts";
 * const e = new EngineStopped("r1", "lost the lease on run r1 to db2:77; stopped its steps");
 * assert.equal(e.exitCode, EXIT_ENGINE_STOPPED);
 * assert.equal(e.run, "r1");
 * ```
 */
export class EngineStopped extends Error {
  /** The run given up. */
  readonly run: string;
  /** The exit code of `thaw` for it. */
  readonly exitCode = EXIT_ENGINE_STOPPED;
  /** Builds the error; `cause` is the store's error. */
  constructor(run: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "EngineStopped";
    this.run = run;
  }
}

/** Holds, renews and gives up one run's lease; a no-op without lease options or leases. */
export class LeaseKeeper {
  readonly #store: Store;
  readonly #run: string;
  readonly #options: LeaseOptions | undefined;
  #lease: Lease | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #renewing = false;
  #lost: StoreError | undefined;
  /** Called once when the lease (or the store) is lost, so the loop wakes up at once. */
  onLost: (() => void) | undefined;

  /** A keeper of the lease of `run` in `store` (`options` undefined: no lease is held). */
  constructor(store: Store, run: string, options: LeaseOptions | undefined) {
    this.#store = store;
    this.#run = run;
    this.#options = options;
  }

  /** Whether this engine holds (or is to hold) a lease: its store errors then stop it. */
  get active(): boolean {
    return this.#options !== undefined && hasLeases(this.#store);
  }

  /** The store's error that made this engine lose its lease, if it did. */
  get lost(): StoreError | undefined {
    return this.#lost;
  }

  /** Whether the lease was acquired (or taken): from then on, store errors stop the engine. */
  get held(): boolean {
    return this.active && this.#lease !== undefined;
  }

  /** Acquires the lease (unless it was taken already) and starts renewing it. */
  async hold(): Promise<void> {
    if (!this.active || this.#lease !== undefined) return;
    const store = this.#store as LeaseStore;
    const o = this.#options!;
    const holder = o.holder ?? engineName();
    this.#lease = o.taken ?? await store.acquireLease(this.#run, holder, this.#ttl()).catch(
      async (e) => {
        // Held by an engine of this machine that is gone (`thaw resume` after a kill -9): its
        // lease runs out within its TTL; wait for that, then acquire it.
        if (!(await this.#waitDeadHolder(store))) throw e;
        return await store.acquireLease(this.#run, holder, this.#ttl());
      },
    );
    this.#timer = setInterval(() => void this.#renew(), RENEW_MS);
  }

  /** Waits for the lease of a dead engine of this machine to expire; false if it is not so. */
  async #waitDeadHolder(store: LeaseStore): Promise<boolean> {
    const now = await store.lease(this.#run).catch(() => undefined);
    const m = /^(.*):(\d+)$/.exec(now?.holder ?? "");
    if (!now || !m || m[1] !== hostname() || processAlive(Number(m[2]))) return false;
    const wait = Math.min(Math.max(0, now.expiresAt - now.now) + 50, this.#ttl() + 1000);
    await new Promise((r) => setTimeout(r, wait));
    return true;
  }

  #ttl(): number {
    return this.#options?.ttlMs ?? LEASE_TTL_MS;
  }

  async #renew(): Promise<void> {
    if (this.#renewing || this.#lost || this.#lease === undefined) return;
    this.#renewing = true;
    try {
      const store = this.#store as LeaseStore;
      this.#lease = await store.renewLease(this.#run, this.#lease.token, this.#ttl());
    } catch (e) {
      this.fail(e);
    } finally {
      this.#renewing = false;
    }
  }

  /** Notes a store error of this engine: the lease (or the store) is lost; renewing stops. */
  fail(e: unknown): void {
    if (!this.active || this.#lost || !(e instanceof StoreError)) return;
    this.#lost = e;
    this.stop();
    this.onLost?.();
  }

  /** Throws the store's error if the lease was lost (the loop asks before each step starts). */
  check(): void {
    if (this.#lost) throw this.#lost;
  }

  /** Stops renewing (the lease then expires on its own). */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Gives the lease up: the run has ended (its final state is stored). */
  async release(): Promise<void> {
    this.stop();
    if (!this.active || this.#lease === undefined || this.#lost) return;
    // The run has ended in the store: a lease left behind only expires (no standby takes an
    // ended run), so a store that fails now changes nothing.
    await (this.#store as LeaseStore).releaseLease(this.#run, this.#lease.token).catch(() => {});
  }

  /** The error the engine ends with, once it stopped its steps after `e` (a store error). */
  async stopped(e: StoreError): Promise<EngineStopped> {
    this.fail(e);
    const run = this.#run;
    if (e instanceof LeaseLost) {
      const now = await (this.#store as LeaseStore).lease(run).catch(() => undefined);
      const holder = now?.holder || "another engine";
      return new EngineStopped(
        run,
        `lost the lease on run ${run} to ${holder}; stopped its steps and changed nothing ` +
          `more (${holder} carries the run on; thaw status ${run} shows it)`,
        { cause: e },
      );
    }
    return new EngineStopped(
      run,
      `lost the store while running run ${run} (${e.message}); stopped its steps and wrote ` +
        `nothing more: its lease expires within ${this.#ttl() / 1000}s, then a standby ` +
        `(thaw standby) takes the run over, or run thaw resume ${run} once the store is back`,
      { cause: e },
    );
  }
}

/**
 * What a live run that failed with `e` throws: when `lease` was held and `e` is a store error
 * (or the lease was lost meanwhile), `abandon` stops the steps and the run ends with
 * {@link EngineStopped}; any other error is thrown as it is.
 */
export async function giveUp(
  lease: LeaseKeeper,
  e: unknown,
  abandon: () => Promise<void> | undefined,
): Promise<unknown> {
  const cause = lease.lost ?? (e instanceof StoreError ? e : undefined);
  if (!lease.held || cause === undefined) return e;
  lease.fail(cause);
  await abandon();
  return await lease.stopped(cause);
}

/**
 * Steps of the run `record` whose recorded process runs on the machine of its earlier engine,
 * when that is another machine (a standby took the run over): out of reach here, so neither
 * stopped nor watched; that engine stops them itself when it wakes up, or they died with it.
 */
export async function awaySteps(store: Store, record: RunRecord): Promise<Set<string>> {
  if (record.host === hostname()) return new Set();
  const processes = await store.processes(record.id);
  return new Set(processes.filter((p) => p.host === undefined).map((p) => p.step));
}
