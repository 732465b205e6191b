/**
 * The SQLite store: one file (by default `.thaw/state.db`) in WAL mode, so `thaw status`,
 * `thaw cancel` and `thaw serve` can read and steer a run from other processes while the engine
 * writes. Writes that belong together run in one `BEGIN IMMEDIATE` transaction.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { Kysely, sql, type Transaction } from "kysely";
import { StoreError } from "./errors.ts";
import { migrate, type StepsTable, type StoreDatabase } from "./migrations.ts";
import { NodeSqliteDialect } from "./sqlite_dialect.ts";
import { prepareStoreFile } from "./sqlite_file.ts";
import {
  fold,
  newStepRow,
  progressValues,
  runRow,
  runSet,
  toCommand,
  toEvent,
  toProgress,
  toRun,
  toStep,
} from "./sqlite_rows.ts";
import type {
  Command,
  FetchProgress,
  HistorySample,
  NewRun,
  ProcessChanges,
  ProcessRecord,
  RunPatch,
  RunRecord,
  StepChange,
  StepEvent,
  StepRecord,
  Store,
  StoredState,
} from "./types.ts";

/** How long a statement waits for another process's write lock before it fails, in ms. */
export const BUSY_TIMEOUT_MS = 5000;

/** Most rows in one multi-row insert (SQLite limits the parameters of a statement). */
const CHUNK = 500;

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The {@link Store} over an SQLite file (or `:memory:`). Open one with {@link openSqliteStore}.
 *
 * Errors are {@link StoreError}s that name the store and the cause: an unknown run, a run id
 * used twice, a store another process kept locked for longer than {@link BUSY_TIMEOUT_MS}.
 */
export class SqliteStore implements Store {
  /** The path the store was opened with (`:memory:` for an in-memory store). */
  readonly path: string;
  readonly #db: Kysely<StoreDatabase>;
  #closed = false;

  /** Wraps a migrated database; use {@link openSqliteStore} rather than this. */
  constructor(db: Kysely<StoreDatabase>, path: string) {
    this.#db = db;
    this.path = path;
  }

  /** Runs `fn`, turning what goes wrong into a {@link StoreError} an SRE can read. */
  async #op<T>(what: string, run: string | undefined, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreError(`store ${this.path}: cannot ${what}: store is closed`);
    try {
      return await fn();
    } catch (e) {
      if (e instanceof StoreError) throw e;
      const m = messageOf(e);
      if (run !== undefined && /FOREIGN KEY constraint failed/.test(m)) {
        throw new StoreError(`store ${this.path}: cannot ${what}: no run "${run}"`, { cause: e });
      }
      if (/database is locked|SQLITE_BUSY/i.test(m)) {
        throw new StoreError(
          `store ${this.path}: cannot ${what}: another process kept the store locked for ` +
            `more than ${BUSY_TIMEOUT_MS / 1000}s`,
          { cause: e },
        );
      }
      throw new StoreError(`store ${this.path}: cannot ${what}: ${m}`, { cause: e });
    }
  }

  #noRun(what: string, run: string): StoreError {
    return new StoreError(`store ${this.path}: cannot ${what}: no run "${run}"`);
  }

  /** Records a new run, in state `running`; throws a {@link StoreError} if the id exists. */
  createRun(run: NewRun): Promise<void> {
    return this.#op("create run", undefined, async () => {
      try {
        await this.#db.insertInto("runs").values(runRow(run)).execute();
      } catch (e) {
        if (!/UNIQUE constraint failed: runs\.id/.test(messageOf(e))) throw e;
        throw new StoreError(`store ${this.path}: run "${run.id}" already exists`, { cause: e });
      }
    });
  }

  /** The run, or undefined. */
  getRun(id: string): Promise<RunRecord | undefined> {
    return this.#op("read run", id, async () => {
      const row = await this.#db.selectFrom("runs").selectAll().where("id", "=", id)
        .executeTakeFirst();
      return row === undefined ? undefined : toRun(row);
    });
  }

  /** Runs, newest first (by `startedAt`, then id); all of them without `limit`. */
  listRuns(limit?: number, state?: StoredState): Promise<RunRecord[]> {
    return this.#op("list runs", undefined, async () => {
      let q = this.#db.selectFrom("runs").selectAll()
        .orderBy("started_at", "desc").orderBy("id", "desc");
      if (state !== undefined) q = q.where("state", "=", state);
      if (limit !== undefined) q = q.limit(Math.max(0, Math.floor(limit)));
      return (await q.execute()).map(toRun);
    });
  }

  /** How many runs are in each stored state. */
  countRuns(): Promise<Record<StoredState, number>> {
    return this.#op("count runs", undefined, async () => {
      const counts = { running: 0, done: 0, failed: 0, cancelled: 0 };
      const rows = await this.#db.selectFrom("runs")
        .select(["state", (eb) => eb.fn.countAll<number>().as("n")]).groupBy("state").execute();
      for (const r of rows) counts[r.state as StoredState] = Number(r.n);
      return counts;
    });
  }

  /** Changes the fields `patch` names; throws a {@link StoreError} for an unknown run. */
  updateRun(id: string, patch: RunPatch): Promise<void> {
    return this.#op("update run", id, async () => {
      const set = runSet(patch);
      if (Object.keys(set).length === 0) {
        if (await this.getRun(id) === undefined) throw this.#noRun("update run", id);
        return;
      }
      const r = await this.#db.updateTable("runs").set(set).where("id", "=", id)
        .executeTakeFirst();
      if (r.numUpdatedRows === 0n) throw this.#noRun("update run", id);
    });
  }

  /**
   * Appends state changes, numbered from the run's last `seq` + 1, and folds them into the
   * steps' records, and records and forgets `processes`, all in one transaction.
   */
  recordSteps(
    run: string,
    changes: readonly StepChange[],
    processes?: ProcessChanges,
  ): Promise<void> {
    const procs = processes && processes.add.length + processes.remove.length > 0;
    if (changes.length === 0 && !procs) return Promise.resolve();
    return this.#op(
      "record step changes",
      run,
      () =>
        this.#db.transaction().execute(async (trx) => {
          const last = await trx.selectFrom("step_events")
            .select((eb) => eb.fn.max("seq").as("seq")).where("run", "=", run)
            .executeTakeFirst();
          let seq = Number(last?.seq ?? 0);
          const ids = [...new Set(changes.map((c) => c.step))];
          const rows = new Map<string, StepsTable>();
          for (const part of chunks(ids)) {
            const found = await trx.selectFrom("steps").selectAll().where("run", "=", run)
              .where("step", "in", part).execute();
            for (const r of found) rows.set(r.step, r);
          }
          const events = changes.map((c) => {
            seq += 1;
            const prev = rows.get(c.step) ?? newStepRow(run, c.step, seq);
            rows.set(c.step, fold(prev, c));
            return { run, seq, step: c.step, state: c.state, at: c.at, detail: c.detail ?? null };
          });
          for (const part of chunks(events)) {
            await trx.insertInto("step_events").values(part).execute();
          }
          for (const id of ids) await upsertStep(trx, rows.get(id)!);
          if (procs) await changeProcesses(trx, run, processes!);
        }),
    );
  }

  /** Changes with `seq > after` (default 0: all), in order. */
  stepEvents(run: string, after = 0): Promise<StepEvent[]> {
    return this.#op("read step events", run, async () => {
      const rows = await this.#db.selectFrom("step_events").selectAll()
        .where("run", "=", run).where("seq", ">", after).orderBy("seq").execute();
      return rows.map(toEvent);
    });
  }

  /** Current record of every step that has one, in runbook order. */
  steps(run: string): Promise<StepRecord[]> {
    return this.#op("read steps", run, async () => {
      const r = await this.#db.selectFrom("runs").select("steps").where("id", "=", run)
        .executeTakeFirst();
      const order = new Map<string, number>(
        (r === undefined ? [] : JSON.parse(r.steps) as string[]).map((s, i) => [s, i]),
      );
      const rows = await this.#db.selectFrom("steps").selectAll().where("run", "=", run)
        .orderBy("first_seq").execute();
      const rank = (s: string) => order.get(s) ?? order.size;
      return rows
        .sort((a, b) => rank(a.step) - rank(b.step) || a.first_seq - b.first_seq)
        .map(toStep);
    });
  }

  /** Upserts the progress of fetches (one row per step, the last sample saved wins). */
  saveProgress(run: string, progress: readonly FetchProgress[]): Promise<void> {
    if (progress.length === 0) return Promise.resolve();
    return this.#op("save progress", run, () =>
      this.#db.transaction().execute(async (trx) => {
        for (const p of progress) {
          const values = progressValues(p);
          await trx.insertInto("progress").values({ run, step: p.step, ...values })
            .onConflict((oc) => oc.columns(["run", "step"]).doUpdateSet(values)).execute();
        }
      }));
  }

  /** The latest sample of every fetch that has one, by step id. */
  progress(run: string): Promise<FetchProgress[]> {
    return this.#op("read progress", run, async () => {
      const rows = await this.#db.selectFrom("progress").selectAll().where("run", "=", run)
        .orderBy("step").execute();
      return rows.map(toProgress);
    });
  }

  /** Queues a command (stamped with the wall clock); returns its id. */
  addCommand(run: string, kind: Command["kind"], step?: string): Promise<number> {
    return this.#op(`queue ${kind}`, run, async () => {
      const r = await this.#db.insertInto("commands")
        .values({ run, kind, step: step ?? null, at: Date.now() }).executeTakeFirstOrThrow();
      return Number(r.insertId);
    });
  }

  /** Commands not yet taken, oldest first; marks them taken (each is returned once). */
  takeCommands(run: string): Promise<Command[]> {
    return this.#op("take commands", run, async () => {
      const waiting = () =>
        this.#db.selectFrom("commands").select("id").where("run", "=", run)
          .where("taken", "=", 0).limit(1);
      // The engine polls often: look before taking the write lock.
      if (await waiting().executeTakeFirst() === undefined) return [];
      return await this.#db.transaction().execute(async (trx) => {
        const rows = await trx.selectFrom("commands").selectAll().where("run", "=", run)
          .where("taken", "=", 0).orderBy("id").execute();
        for (const part of chunks(rows.map((r) => r.id))) {
          await trx.updateTable("commands").set({ taken: 1 }).where("id", "in", part).execute();
        }
        return rows.map(toCommand);
      });
    });
  }

  /** Records a process (replacing the step's earlier one). */
  addProcess(run: string, p: ProcessRecord): Promise<void> {
    return this.#op("record process", run, async () => {
      const log = p.log ?? null;
      await this.#db.insertInto("processes")
        .values({ run, step: p.step, pid: p.pid, pgid: p.pgid, log })
        .onConflict((oc) =>
          oc.columns(["run", "step"]).doUpdateSet({ pid: p.pid, pgid: p.pgid, log })
        )
        .execute();
    });
  }

  /** Forgets the step's process, if any. */
  removeProcess(run: string, step: string): Promise<void> {
    return this.#op("remove process", run, async () => {
      await this.#db.deleteFrom("processes").where("run", "=", run).where("step", "=", step)
        .execute();
    });
  }

  /** The processes recorded for the run, by step id. */
  processes(run: string): Promise<ProcessRecord[]> {
    return this.#op(
      "read processes",
      run,
      async () =>
        (await this.#db.selectFrom("processes").select(["step", "pid", "pgid", "log"])
          .where("run", "=", run).orderBy("step").execute())
          .map(({ log, ...p }) => log === null ? p : { ...p, log }),
    );
  }

  /**
   * Done steps (with a start and an end) of the runs of `runbook` that ended `done` (a failed,
   * cancelled, interrupted or unfinished run teaches nothing), newest run first (then by step
   * id), at most `limit` (default 20) per step. `bytes` is the fetch's last progress, else 0;
   * `moving` its seconds moving, when recorded; `endedAt` is the wall-clock ms the step ended.
   */
  history(runbook: string, limit = 20): Promise<HistorySample[]> {
    return this.#op("read history", undefined, async () => {
      if (limit <= 0) return [];
      const ranked = this.#db.selectFrom("runs as r")
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
      const rows = await this.#db.selectFrom(ranked.as("h")).selectAll()
        .where("rank", "<=", Math.floor(limit))
        .orderBy("started_at", "desc").orderBy("run", "desc").orderBy("step").execute();
      return rows.map((r) => ({
        run: r.run,
        step: r.step,
        seconds: r.seconds,
        bytes: r.bytes,
        endedAt: r.started_at + Math.round(r.end_s * 1000),
        ...(r.moving_s === null || r.moving_s === undefined ? {} : { moving: r.moving_s }),
      }));
    });
  }

  /** Closes the database; later calls fail with a {@link StoreError}. Closing twice is fine. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#db.destroy();
  }
}

function* chunks<T>(items: readonly T[]): Generator<T[]> {
  for (let i = 0; i < items.length; i += CHUNK) yield items.slice(i, i + CHUNK);
}

async function changeProcesses(
  trx: Transaction<StoreDatabase>,
  run: string,
  { add, remove }: ProcessChanges,
): Promise<void> {
  for (const part of chunks(remove)) {
    await trx.deleteFrom("processes").where("run", "=", run).where("step", "in", part).execute();
  }
  for (const p of add) {
    const log = p.log ?? null;
    await trx.insertInto("processes").values({ run, step: p.step, pid: p.pid, pgid: p.pgid, log })
      .onConflict((oc) =>
        oc.columns(["run", "step"]).doUpdateSet({ pid: p.pid, pgid: p.pgid, log })
      )
      .execute();
  }
}

async function upsertStep(trx: Transaction<StoreDatabase>, row: StepsTable): Promise<void> {
  const { run: _run, step: _step, first_seq: _first, ...changed } = row;
  await trx.insertInto("steps").values(row)
    .onConflict((oc) => oc.columns(["run", "step"]).doUpdateSet(changed)).execute();
}

/**
 * Opens (creating if needed) the SQLite store at `path`, or an in-memory one for `:memory:`:
 * creates the file owner-only (0600, in a 0700 directory; an existing file that is not thaw's
 * store is refused before anything is written into it, see `sqlite_file.ts`), sets WAL mode (files only), a busy timeout, `synchronous=NORMAL`
 * and foreign keys, and migrates the schema to the latest version. Throws a {@link StoreError}
 * naming the path and the cause when the file is not a database or a migration fails.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { openSqliteStore } from "./sqlite.ts";
 * const store = await openSqliteStore(":memory:");
 * await store.createRun({
 *   id: "r1", runbook: "vod", file: "/rb/vod.yaml", fileSha256: "00", mode: "live",
 *   drill: false, strategy: "aggressive", vars: {}, steps: ["fetch-db"], startedAt: 0,
 *   pid: 1, host: "dr1",
 * });
 * await store.recordSteps("r1", [{ step: "fetch-db", state: "running", at: 0 }]);
 * const [step] = await store.steps("r1");
 * equal(step?.state, "running");
 * equal(step?.startS, 0);
 * await store.close();
 * ```
 */
export async function openSqliteStore(path: string): Promise<SqliteStore> {
  const memory = path === ":memory:";
  const fail = (cause: unknown, why = messageOf(cause)) =>
    new StoreError(`cannot open the store ${path}: ${why}`, { cause });
  // Owner-only, and never a file that is not thaw's store: refused before SQLite writes a byte.
  if (!memory) await prepareStoreFile(path);
  let raw: DatabaseSync;
  try {
    raw = new DatabaseSync(path);
  } catch (e) {
    throw fail(e);
  }
  try {
    raw.exec(`pragma busy_timeout = ${BUSY_TIMEOUT_MS}`);
    if (!memory) raw.exec("pragma journal_mode = wal");
    raw.exec("pragma synchronous = normal");
    raw.exec("pragma foreign_keys = on");
  } catch (e) {
    raw.close();
    const m = messageOf(e);
    throw fail(e, /not a database/.test(m) ? `the file is not an SQLite database (${m})` : m);
  }
  const db = new Kysely<StoreDatabase>({ dialect: new NodeSqliteDialect(raw) });
  try {
    await migrate(db);
  } catch (e) {
    await db.destroy();
    if (raw.isOpen) raw.close();
    throw fail(e instanceof StoreError ? e.cause ?? e : e, messageOf(e));
  }
  return new SqliteStore(db, path);
}
