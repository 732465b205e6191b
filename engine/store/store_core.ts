/**
 * What every operation of a `KyselyStore` goes through: errors turned into a
 * {@link StoreError} an SRE can read, and writes fenced by the run's lease when this store holds
 * it (the tokens of the leases it holds live here). Shared by `kysely_store.ts` and
 * `lease_ops.ts`.
 *
 * @module
 */
import type { CompiledQuery, Kysely, QueryResult } from "kysely";
import type { Row, StoreDialect } from "./dialects/dialect.ts";
import { LeaseLost, StoreError } from "./errors.ts";
import * as leases from "./leases.ts";
import type { StoreDatabase } from "./migrations.ts";
import { transaction } from "./transaction.ts";
import { Writes } from "./writes.ts";

/** The store's database, typed. */
export type Db = Kysely<StoreDatabase>;

/** Thrown inside a transaction when a fenced write found no row: the reason is read after. */
export const REFUSED = Symbol("refused");

/** One store's dialect, its compiled writes, the leases it holds and whether it is closed. */
export class StoreCore {
  /** Where the store is: the path or URL it was opened with (any password hidden). */
  readonly path: string;
  readonly d: StoreDialect;
  readonly db: Db;
  /** The hot write statements, compiled once. */
  readonly w: Writes;
  /** Tokens of the leases this store holds, by run: its writes to those runs are fenced. */
  readonly tokens = new Map<string, number>();
  closed = false;

  /** Wraps an opened, migrated dialect. */
  constructor(dialect: StoreDialect) {
    this.d = dialect;
    this.db = dialect.db;
    this.w = new Writes(dialect.db, dialect.maxParams, dialect.locksOnBegin);
    this.path = dialect.where;
  }

  /** Runs `fn`, turning what goes wrong into a {@link StoreError} an SRE can read. */
  async op<T>(what: string, run: string | undefined, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError(`store ${this.path}: cannot ${what}: store is closed`);
    try {
      return await fn();
    } catch (e) {
      if (e instanceof StoreError) throw e;
      const f = this.d.classify(e);
      if (f?.kind === "no-run" && run !== undefined) throw this.noRun(what, run, e);
      const why = f?.kind === "busy" || f?.kind === "unreachable" ? f.why : this.d.message(e);
      throw new StoreError(`store ${this.path}: cannot ${what}: ${why}`, { cause: e });
    }
  }

  /** The error for a run the store does not have. */
  noRun(what: string, run: string, cause?: unknown): StoreError {
    return new StoreError(`store ${this.path}: cannot ${what}: no run "${run}"`, { cause });
  }

  /** Why a fenced write of `run` found no row: the run is gone, or another engine holds it. */
  async refused(what: string, run: string): Promise<StoreError> {
    const token = this.tokens.get(run);
    if (token === undefined) return this.noRun(what, run);
    const now = await leases.read(this.db, this.d.now, run);
    if (now === undefined) return this.noRun(what, run);
    return new LeaseLost(
      `store ${this.path}: cannot ${what}: run "${run}" was taken over by ` +
        `${now.holder ?? "another engine"} (lease token ${now.token}, this engine held ` +
        `${token}); this engine changes nothing more and stops its steps`,
      run,
      token,
    );
  }

  /**
   * Runs the statements `writes` gives in one transaction, fenced when this store holds the
   * run's lease (the fence goes with BEGIN, the writes with COMMIT: two round trips).
   */
  write(
    what: string,
    run: string,
    writes: () => readonly CompiledQuery[],
  ): Promise<QueryResult<Row>[]> {
    return this.op(what, run, async () => {
      try {
        return await transaction(this.d, async (send) => {
          const token = this.tokens.get(run);
          if (token !== undefined) {
            const [fenced] = await send([this.w.fence(run, token)]);
            if (!this.w.fenced(fenced!, token)) throw REFUSED;
          }
          return writes();
        });
      } catch (e) {
        throw e === REFUSED ? await this.refused(what, run) : e;
      }
    });
  }

  /** Runs one compiled statement on its own (in a transaction of its own). */
  async one(query: CompiledQuery): Promise<QueryResult<Row>> {
    return (await this.d.session((send) => send([query])))[0]!;
  }
}
