/**
 * The store, written once over Kysely for every dialect (`dialects/sqlite.ts`,
 * `dialects/postgres.ts`): what differs between databases comes from the {@link StoreDialect}.
 *
 * Step changes are numbered in the transaction that records them: on PostgreSQL from a counter
 * on the run's row, bumped (its row lock orders concurrent writers); on SQLite, whose write
 * transactions hold the one write lock from BEGIN, from the run's last change, read (writing the
 * run's row would copy its report and runbook text on every commit). Writes of an engine that
 * holds the run's lease are fenced in the same transaction (`store_core.ts`, which also turns
 * failures into errors an SRE can read; the lease methods are in `lease_ops.ts`, their queries in
 * `leases.ts`). The hot writes are compiled once (`writes.ts`).
 *
 * @module
 */
import type { StoreDialect } from "./dialects/dialect.ts";
import { StoreError } from "./errors.ts";
import * as leaseOps from "./lease_ops.ts";
import type { StepsTable } from "./migrations.ts";
import { runRow, runSet, toCommand, toEvent, toProgress, toRun, toStep } from "./rows.ts";
import { history } from "./history.ts";
import { insertSlSamples, listSlSamples } from "./sl_samples.ts";
import { REFUSED, StoreCore } from "./store_core.ts";
import { transaction } from "./transaction.ts";
import type {
  Command,
  FetchProgress,
  HistorySample,
  Lease,
  Leases,
  LeaseState,
  NewRun,
  ProcessChanges,
  ProcessRecord,
  RunPatch,
  RunRecord,
  SlSampleRow,
  StepChange,
  StepEvent,
  StepRecord,
  Store,
  StoredState,
} from "./types.ts";

/**
 * The {@link Store} (with {@link Leases}) over a dialect. Open one with `openStore()`.
 *
 * Errors are {@link StoreError}s that name the store and the cause: an unknown run, a run id
 * used twice, a store locked too long by another process, a database out of reach; a fenced
 * write throws `LeaseLost`.
 */
export class KyselyStore implements Store, Leases {
  /** Where the store is: the path or URL it was opened with (any password hidden). */
  readonly path: string;
  /** The dialect's name: `sqlite` or `postgres`. */
  readonly dialect: string;
  /** Errors, fencing, the compiled writes (`store_core.ts`). */
  readonly #c: StoreCore;
  /**
   * Every step row of a run as this store last committed them, with the run's last `seq` then:
   * while it is still that, nobody else recorded a change, and the rows need no read.
   */
  readonly #folded = new Map<string, { seq: number; rows: Map<string, StepsTable> }>();

  /** Wraps an opened, migrated dialect. */
  constructor(dialect: StoreDialect) {
    this.#c = new StoreCore(dialect);
    this.path = dialect.where;
    this.dialect = dialect.name;
  }

  /** Records a new run, in state `running`; throws a {@link StoreError} if the id exists. */
  createRun(run: NewRun): Promise<void> {
    return this.#c.op("create run", undefined, async () => {
      try {
        await this.#c.db.insertInto("runs").values(runRow(run)).execute();
      } catch (e) {
        if (this.#c.d.classify(e)?.kind !== "exists") throw e;
        throw new StoreError(`store ${this.path}: run "${run.id}" already exists`, { cause: e });
      }
    });
  }

  /** The run, or undefined. */
  getRun(id: string): Promise<RunRecord | undefined> {
    return this.#c.op("read run", id, async () => {
      const row = await this.#c.db.selectFrom("runs").selectAll().where("id", "=", id)
        .executeTakeFirst();
      return row === undefined ? undefined : toRun(row);
    });
  }

  /** Runs, newest first (by `startedAt`, then id); all of them without `limit`. */
  listRuns(limit?: number, state?: StoredState): Promise<RunRecord[]> {
    return this.#c.op("list runs", undefined, async () => {
      let q = this.#c.db.selectFrom("runs").selectAll()
        .orderBy("started_at", "desc").orderBy("id", "desc");
      if (state !== undefined) q = q.where("state", "=", state);
      if (limit !== undefined) q = q.limit(Math.max(0, Math.floor(limit)));
      return (await q.execute()).map(toRun);
    });
  }

  /** How many runs are in each stored state. */
  countRuns(): Promise<Record<StoredState, number>> {
    return this.#c.op("count runs", undefined, async () => {
      const counts = { running: 0, done: 0, failed: 0, cancelled: 0 };
      const rows = await this.#c.db.selectFrom("runs")
        .select(["state", (eb) => eb.fn.countAll<number>().as("n")]).groupBy("state").execute();
      for (const r of rows) counts[r.state as StoredState] = Number(r.n);
      return counts;
    });
  }

  /** Changes the fields `patch` names; throws a {@link StoreError} for an unknown run. */
  updateRun(id: string, patch: RunPatch): Promise<void> {
    return this.#c.op("update run", id, async () => {
      const token = this.#c.tokens.get(id);
      const set = runSet(patch);
      if (Object.keys(set).length === 0) {
        if (await this.getRun(id) === undefined) throw this.#c.noRun("update run", id);
        return;
      }
      const r = await this.#c.one(this.#c.w.updateRun(id, set, token));
      if (r.numAffectedRows === 0n) throw await this.#c.refused("update run", id);
    });
  }

  /**
   * Appends state changes, numbered from the run's last `seq` + 1, and folds them into the
   * steps' records, and records and forgets `processes`, all in one transaction: two round trips
   * (numbering with BEGIN; the writes with COMMIT), a third when this store does not know the
   * run's step rows yet.
   */
  recordSteps(
    run: string,
    changes: readonly StepChange[],
    processes?: ProcessChanges,
  ): Promise<void> {
    const procs = processes && processes.add.length + processes.remove.length > 0;
    if (changes.length === 0 && !procs) return Promise.resolve();
    const what = "record step changes";
    const w = this.#c.w;
    return this.#c.op(what, run, async () => {
      let folded: { seq: number; rows: Map<string, StepsTable> } | undefined;
      try {
        await transaction(this.#c.d, async (send) => {
          const token = this.#c.tokens.get(run);
          const [numbered] = await send([w.numbering(run, changes.length, token)]);
          const last = w.lastSeq(numbered!, changes.length, token);
          if (last === undefined) throw REFUSED;
          const seq = last + changes.length;
          // The rows as this store last committed them are changed in place: taken out of the
          // cache until this transaction commits, so that no other write folds into changes
          // that may yet roll back (it reads the rows instead).
          const known = this.#folded.get(run);
          this.#folded.delete(run);
          const rows = known?.seq === last ? known.rows : new Map(
            ((await send([w.selectSteps(run)]))[0]!.rows as unknown as StepsTable[])
              .map((r) => [r.step, r]),
          );
          folded = { seq, rows };
          const writes = w.stepWrites(run, last, changes, rows);
          if (procs) writes.push(...w.processWrites(run, processes!));
          return writes;
        });
        this.#folded.set(run, folded!);
      } catch (e) {
        this.#folded.delete(run);
        throw e === REFUSED ? await this.#c.refused(what, run) : e;
      }
    });
  }

  /** Changes with `seq > after` (default 0: all), in order. */
  stepEvents(run: string, after = 0): Promise<StepEvent[]> {
    return this.#c.op("read step events", run, async () => {
      const rows = await this.#c.db.selectFrom("step_events").selectAll()
        .where("run", "=", run).where("seq", ">", after).orderBy("seq").execute();
      return rows.map(toEvent);
    });
  }

  /** Current record of every step that has one, in runbook order. */
  steps(run: string): Promise<StepRecord[]> {
    return this.#c.op("read steps", run, async () => {
      const r = await this.#c.db.selectFrom("runs").select("steps").where("id", "=", run)
        .executeTakeFirst();
      const order = new Map<string, number>(
        (r === undefined ? [] : JSON.parse(r.steps) as string[]).map((s, i) => [s, i]),
      );
      const rows = await this.#c.db.selectFrom("steps").selectAll().where("run", "=", run)
        .orderBy("first_seq").execute();
      const rank = (s: string) => order.get(s) ?? order.size;
      return rows
        .sort((a, b) => rank(a.step) - rank(b.step) || a.first_seq - b.first_seq)
        .map(toStep);
    });
  }

  /** Upserts the progress of fetches (one row per step, the last sample saved wins). */
  async saveProgress(run: string, progress: readonly FetchProgress[]): Promise<void> {
    if (progress.length === 0) return;
    await this.#c.write(
      "save progress",
      run,
      () => this.#c.w.progressWrites(run, progress),
    );
  }

  /** The latest sample of every fetch that has one, by step id. */
  progress(run: string): Promise<FetchProgress[]> {
    return this.#c.op("read progress", run, async () => {
      const rows = await this.#c.db.selectFrom("progress").selectAll().where("run", "=", run)
        .orderBy("step").execute();
      return rows.map(toProgress);
    });
  }

  /** Queues a command (stamped with the wall clock); returns its id. Never fenced. */
  addCommand(run: string, kind: Command["kind"], step?: string): Promise<number> {
    return this.#c.op(`queue ${kind}`, run, async () => {
      const r = await this.#c.db.insertInto("commands")
        .values({ run, kind, step: step ?? null, at: Date.now() }).returning("id")
        .executeTakeFirstOrThrow();
      return Number(r.id);
    });
  }

  /** Commands not yet taken, oldest first; marks them taken (each is returned once). */
  takeCommands(run: string): Promise<Command[]> {
    return this.#c.op("take commands", run, async () => {
      // The engine polls often: look before taking a lock.
      const waiting = await this.#c.one(this.#c.w.waitingCommand(run));
      if (waiting.rows.length === 0) return [];
      const [taken] = await this.#c.write(
        "take commands",
        run,
        () => [this.#c.w.takeCommands(run)],
      );
      return (taken!.rows as unknown as Parameters<typeof toCommand>[0][]).map(toCommand)
        .sort((a, b) => a.id - b.id);
    });
  }

  /** Records a process (replacing the step's earlier one). */
  async addProcess(run: string, p: ProcessRecord): Promise<void> {
    await this.#c.write(
      "record process",
      run,
      () => this.#c.w.processWrites(run, { add: [p], remove: [] }),
    );
  }

  /** Forgets the step's process, if any. */
  async removeProcess(run: string, step: string): Promise<void> {
    await this.#c.write(
      "remove process",
      run,
      () => this.#c.w.processWrites(run, { add: [], remove: [step] }),
    );
  }

  /** The processes recorded for the run, by step id. */
  processes(run: string): Promise<ProcessRecord[]> {
    return this.#c.op(
      "read processes",
      run,
      async () =>
        (await this.#c.db.selectFrom("processes").select(["step", "pid", "pgid", "log", "host"])
          .where("run", "=", run).orderBy("step").execute())
          .map(({ log, host, ...p }) => ({
            ...p,
            ...(log === null ? {} : { log }),
            ...(host === null ? {} : { host }),
          })),
    );
  }

  /**
   * Done steps (with a start and an end) of the runs of `runbook` that ended `done` (a failed,
   * cancelled, interrupted or unfinished run teaches nothing), newest run first (then by step
   * id), at most `limit` (default 20) per step. `bytes` is the fetch's last progress, else 0;
   * `moving` its seconds moving, when recorded; `endedAt` is the wall-clock ms the step ended.
   */
  history(runbook: string, limit = 20): Promise<HistorySample[]> {
    return this.#c.op("read history", undefined, () => history(this.#c.db, runbook, limit));
  }

  /** Stores service-level samples (fenced like every write of an engine); see `sl_samples.ts`. */
  async addSlSamples(run: string, rows: readonly SlSampleRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.#c.write(
      "save service-level samples",
      run,
      () => insertSlSamples(this.#c.db, run, rows, this.#c.d.maxParams),
    );
  }

  /** The run's service-level samples with `seq > afterSeq`, in `seq` order. */
  slSamples(run: string, afterSeq = 0): Promise<SlSampleRow[]> {
    return this.#c.op(
      "read service-level samples",
      run,
      () => listSlSamples(this.#c.db, run, afterSeq),
    );
  }

  /** Acquires the run's lease (see {@link Leases.acquireLease}); this store's writes are fenced. */
  acquireLease(run: string, holder: string, ttlMs: number): Promise<Lease> {
    return leaseOps.acquireLease(this.#c, run, holder, ttlMs);
  }

  /** Renews the lease (see {@link Leases.renewLease}); `LeaseLost` once taken over. */
  renewLease(run: string, token: number, ttlMs: number): Promise<Lease> {
    return leaseOps.renewLease(this.#c, run, token, ttlMs);
  }

  /** Gives the lease up; this store's writes to the run are no longer fenced. */
  releaseLease(run: string, token: number): Promise<void> {
    return leaseOps.releaseLease(this.#c, run, token);
  }

  /** Takes over a run whose lease expired (see {@link Leases.takeLease}). */
  takeLease(run: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    return leaseOps.takeLease(this.#c, run, holder, ttlMs);
  }

  /** Running runs whose lease expired, by the database's clock. */
  expiredLeases(): Promise<LeaseState[]> {
    return leaseOps.expiredLeases(this.#c);
  }

  /** The run's lease, or undefined when none is held. */
  lease(run: string): Promise<LeaseState | undefined> {
    return leaseOps.lease(this.#c, run);
  }

  /** Closes the database; later calls fail with a {@link StoreError}. Closing twice is fine. */
  async close(): Promise<void> {
    if (this.#c.closed) return;
    this.#c.closed = true;
    this.#folded.clear();
    await this.#c.d.close();
  }
}
