/**
 * The statements of the store's hot writes (the live engine's commit every turn, its progress,
 * heartbeat and polls), written once with Kysely for every dialect and compiled once per store
 * ({@link Prepared}): each write only binds its values. The shared `KyselyStore` sends them
 * together (one round trip on a dialect that pipelines).
 *
 * @module
 */
import type { CompiledQuery, Insertable, Kysely, QueryResult } from "kysely";
import type { RunsTable, StepsTable, StoreDatabase } from "./migrations.ts";
import { type Placeholder, Prepared, PreparedSet } from "./prepared.ts";
import { fold, newStepRow, progressValues } from "./rows.ts";
import type { FetchProgress, ProcessChanges, StepChange } from "./types.ts";

type Db = Kysely<StoreDatabase>;

/** `items` cut in parts that bind at most `maxParams` values (`width` per item, 500 rows at most). */
export function* chunks<T>(items: readonly T[], width: number, maxParams: number): Generator<T[]> {
  const n = Math.max(1, Math.min(500, Math.floor(maxParams / width) - 1));
  for (let i = 0; i < items.length; i += n) yield items.slice(i, i + n);
}

/** Columns of `step_events`, in the order their values are bound. */
const EVENT_COLUMNS = ["run", "seq", "step", "state", "at", "detail"] as const;
/** Columns of `steps`, in the order their values are bound. */
const STEP_COLUMNS = [
  "run",
  "step",
  "state",
  "start_s",
  "end_s",
  "frozen_s",
  "frozen_since",
  "detail",
  "first_seq",
] as const satisfies readonly (keyof StepsTable)[];
/** Columns of `progress`, in the order their values are bound. */
const PROGRESS_COLUMNS = [
  "run",
  "step",
  "bytes",
  "total",
  "prefetched",
  "demanded",
  "source",
  "at",
  "moving_s",
] as const;
/** Columns of `processes`, in the order their values are bound. */
const PROCESS_COLUMNS = ["run", "step", "pid", "pgid", "log", "host"] as const;

/** `n` rows of `columns`, their values placeholders row after row. */
function rowsOf<C extends string>(
  p: Placeholder,
  columns: readonly C[],
  n: number,
): Record<C, never>[] {
  return Array.from(
    { length: n },
    (_, r) =>
      Object.fromEntries(columns.map((c, i) => [c, p(r * columns.length + i)])) as Record<
        C,
        never
      >,
  );
}

/** The excluded values of `columns`, for `on conflict do update set`. */
function excluded<C extends string>(columns: readonly C[]) {
  // deno-lint-ignore no-explicit-any
  return (eb: any) => Object.fromEntries(columns.map((c) => [c, eb.ref(`excluded.${c}`)]));
}

/** The statements on `runs`: numbering, fencing, patches. */
function runQueries(db: Db) {
  return {
    head: new Prepared(1, (p) =>
      db.selectFrom("runs").select((eb) => [
        "lease_token",
        eb.selectFrom("step_events").whereRef("step_events.run", "=", "runs.id")
          .select((e) => e.fn.coalesce(e.fn.max("step_events.seq"), e.lit(0)).as("n"))
          .as("last_seq"),
      ]).where("id", "=", p(0))),
    token: new Prepared(
      1,
      (p) => db.selectFrom("runs").select("lease_token").where("id", "=", p(0)),
    ),
    bump: new PreparedSet<boolean>((fenced) =>
      new Prepared(fenced ? 3 : 2, (p) => {
        let q = db.updateTable("runs").set((eb) => ({ last_seq: eb("last_seq", "+", p(0)) }))
          .where("id", "=", p(1));
        if (fenced) q = q.where("lease_token", "=", p(2));
        return q.returning("last_seq");
      })
    ),
    fence: new Prepared(2, (p) =>
      db.updateTable("runs").set({ lease_token: p(1) })
        .where("id", "=", p(0)).where("lease_token", "=", p(1))),
    // Keyed by the columns set, then "+" when fenced.
    updateRun: new PreparedSet<string>((key) => {
      const [names, fenced] = key.split("+") as [string, string | undefined];
      const columns = names.split(",") as (keyof RunsTable)[];
      const k = columns.length;
      return new Prepared(fenced === undefined ? k + 1 : k + 2, (p) => {
        const set = Object.fromEntries(columns.map((c, i) => [c, p(i)]));
        let q = db.updateTable("runs").set(set).where("id", "=", p(k));
        if (fenced !== undefined) q = q.where("lease_token", "=", p(k + 1));
        return q;
      });
    }, 128),
  };
}

/** The statements on the rows of a run: changes, steps, progress, processes, commands. */
function rowQueries(db: Db) {
  const folded = STEP_COLUMNS.filter((c) => c !== "run" && c !== "step" && c !== "first_seq");
  return {
    selectSteps: new Prepared(
      1,
      (p) => db.selectFrom("steps").select(STEP_COLUMNS).where("run", "=", p(0)),
    ),
    events: new PreparedSet<number>((n) =>
      new Prepared(
        n * EVENT_COLUMNS.length,
        (p) => db.insertInto("step_events").values(rowsOf(p, EVENT_COLUMNS, n)),
      )
    ),
    steps: new PreparedSet<number>((n) =>
      new Prepared(
        n * STEP_COLUMNS.length,
        (p) =>
          db.insertInto("steps").values(rowsOf(p, STEP_COLUMNS, n))
            .onConflict((oc) => oc.columns(["run", "step"]).doUpdateSet(excluded(folded))),
      )
    ),
    progress: new PreparedSet<number>((n) =>
      new Prepared(
        n * PROGRESS_COLUMNS.length,
        (p) =>
          db.insertInto("progress").values(rowsOf(p, PROGRESS_COLUMNS, n))
            .onConflict((oc) =>
              oc.columns(["run", "step"]).doUpdateSet(excluded(PROGRESS_COLUMNS.slice(2)))
            ),
      )
    ),
    deleteProcesses: new PreparedSet<number>((n) =>
      new Prepared(
        n + 1,
        (p) =>
          db.deleteFrom("processes").where("run", "=", p(0))
            .where("step", "in", Array.from({ length: n }, (_, i) => p(i + 1))),
      )
    ),
    processes: new PreparedSet<number>((n) =>
      new Prepared(
        n * PROCESS_COLUMNS.length,
        (p) =>
          db.insertInto("processes").values(rowsOf(p, PROCESS_COLUMNS, n))
            .onConflict((oc) =>
              oc.columns(["run", "step"]).doUpdateSet(excluded(PROCESS_COLUMNS.slice(2)))
            ),
      )
    ),
    waiting: new Prepared(
      1,
      (p) =>
        db.selectFrom("commands").select("id").where("run", "=", p(0))
          .where("taken", "=", false).limit(1),
    ),
    take: new Prepared(1, (p) =>
      db.updateTable("commands").set({ taken: true })
        .where("run", "=", p(0)).where("taken", "=", false)
        .returning(["id", "run", "kind", "step", "at"])),
  };
}

/**
 * The store's hot write statements over one database, each compiled on first use (by shape: with
 * or without a lease token, by number of rows).
 */
export class Writes {
  readonly #max: number;
  readonly #reads: boolean;
  readonly #runs: ReturnType<typeof runQueries>;
  readonly #rows: ReturnType<typeof rowQueries>;

  /**
   * The statements of `db`, whose statements bind at most `maxParams` values. `locksOnBegin`:
   * a write transaction holds the database's one write lock (SQLite), so numbering and fencing
   * read the run's row (see `StoreDialect.locksOnBegin`); else they write it, locking it.
   */
  constructor(db: Db, maxParams: number, locksOnBegin: boolean) {
    this.#max = maxParams;
    this.#reads = locksOnBegin;
    this.#runs = runQueries(db);
    this.#rows = rowQueries(db);
  }

  /**
   * Numbers `n` changes of `run`, first in its write transaction: {@link Writes.lastSeq} reads
   * its result. Where the transaction holds the write lock, it reads the run's last `seq` and
   * lease token; else it bumps the run's `last_seq` (only while `token`, when given, is its
   * lease token) and returns it, which locks the run's row until commit.
   */
  numbering(run: string, n: number, token?: number): CompiledQuery {
    if (this.#reads) return this.#runs.head.bind([run]);
    return token === undefined
      ? this.#runs.bump.get(false).bind([n, run])
      : this.#runs.bump.get(true).bind([n, run, token]);
  }

  /**
   * The `seq` of the run's last change before the `n` being numbered, from the result of
   * {@link Writes.numbering}; undefined when the run is unknown or `token` (when given) is not
   * its current lease token.
   */
  lastSeq(result: QueryResult<unknown>, n: number, token?: number): number | undefined {
    const row = result.rows[0] as { last_seq: unknown; lease_token?: unknown } | undefined;
    if (row === undefined) return undefined;
    if (!this.#reads) return Number(row.last_seq) - n;
    if (token !== undefined && Number(row.lease_token) !== token) return undefined;
    return Number(row.last_seq);
  }

  /**
   * Checks, first in a write transaction, that `token` is the run's current lease token
   * ({@link Writes.fenced} reads the result): reads it where the transaction holds the write
   * lock; else touches the run's row (locking it until commit) only if it is.
   */
  fence(run: string, token: number): CompiledQuery {
    return this.#reads ? this.#runs.token.bind([run]) : this.#runs.fence.bind([run, token]);
  }

  /** Whether the result of {@link Writes.fence} found `token` current. */
  fenced(result: QueryResult<unknown>, token: number): boolean {
    if (!this.#reads) return result.numAffectedRows !== 0n;
    const row = result.rows[0] as { lease_token: unknown } | undefined;
    return row !== undefined && Number(row.lease_token) === token;
  }

  /** Every step row of the run. */
  selectSteps(run: string): CompiledQuery {
    return this.#rows.selectSteps.bind([run]);
  }

  /** Sets the columns of `set` on the run's row (only while `token` is current, when given). */
  updateRun(run: string, set: Partial<Insertable<RunsTable>>, token?: number): CompiledQuery {
    const columns = Object.keys(set) as (keyof RunsTable)[];
    const args: unknown[] = columns.map((c) => set[c]);
    args.push(run);
    if (token !== undefined) args.push(token);
    return this.#runs.updateRun.get(columns.join(",") + (token === undefined ? "" : "+")).bind(
      args,
    );
  }

  /**
   * Folds `changes`, numbered from `last` + 1, into `rows` (every step row of the run, changed in
   * place) and gives the statements that store the changes and the rows they changed.
   */
  stepWrites(
    run: string,
    last: number,
    changes: readonly StepChange[],
    rows: Map<string, StepsTable>,
  ): CompiledQuery[] {
    if (changes.length === 0) return [];
    let seq = last;
    const events = changes.map((c) => {
      seq += 1;
      const prev = rows.get(c.step) ?? newStepRow(run, c.step, seq);
      rows.set(c.step, fold(prev, c));
      return [run, seq, c.step, c.state, c.at, c.detail ?? null];
    });
    const out: CompiledQuery[] = [];
    for (const part of chunks(events, EVENT_COLUMNS.length, this.#max)) {
      out.push(this.#rows.events.get(part.length).bind(part.flat()));
    }
    const folded = [...new Set(changes.map((c) => c.step))]
      .map((id) => STEP_COLUMNS.map((c) => rows.get(id)![c]));
    for (const part of chunks(folded, STEP_COLUMNS.length, this.#max)) {
      out.push(this.#rows.steps.get(part.length).bind(part.flat()));
    }
    return out;
  }

  /** Upserts of the fetches' progress (the last sample of a step wins). */
  progressWrites(run: string, progress: readonly FetchProgress[]): CompiledQuery[] {
    const last = new Map(progress.map((p) => [p.step, p]));
    const rows = [...last.values()].map((p) => {
      const v = progressValues(p);
      return [run, p.step, v.bytes, v.total, v.prefetched, v.demanded, v.source, v.at, v.moving_s];
    });
    return [...chunks(rows, PROGRESS_COLUMNS.length, this.#max)]
      .map((part) => this.#rows.progress.get(part.length).bind(part.flat()));
  }

  /** Forgets the processes of `remove`, then records those of `add` (replacing a step's). */
  processWrites(run: string, { add, remove }: ProcessChanges): CompiledQuery[] {
    const out: CompiledQuery[] = [];
    for (const part of chunks(remove, 1, this.#max)) {
      out.push(this.#rows.deleteProcesses.get(part.length).bind([run, ...part]));
    }
    const last = new Map(add.map((p) => [p.step, p]));
    const rows = [...last.values()].map((p) => [
      run,
      p.step,
      p.pid,
      p.pgid,
      p.log ?? null,
      p.host ?? null,
    ]);
    for (const part of chunks(rows, PROCESS_COLUMNS.length, this.#max)) {
      out.push(this.#rows.processes.get(part.length).bind(part.flat()));
    }
    return out;
  }

  /** One command of the run not yet taken, if any (the engine looks before taking a lock). */
  waitingCommand(run: string): CompiledQuery {
    return this.#rows.waiting.bind([run]);
  }

  /** Marks the run's waiting commands taken and returns them. */
  takeCommands(run: string): CompiledQuery {
    return this.#rows.take.bind([run]);
  }
}
