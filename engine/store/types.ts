/**
 * The store: where live runs keep their state, so that another process can watch and steer them
 * (`thaw status`, `thaw approve`, `thaw cancel`, `thaw serve`) and a killed engine can resume.
 *
 * An interface with one implementation over Kysely and a dialect per database (SQLite, PostgreSQL);
 * every dialect passes the same conformance suite (`tests/store_conformance.ts`). Times are
 * milliseconds since the Unix epoch (wall clock), except step times, which are seconds from the
 * start of the run.
 *
 * @module
 */
import type { SlSampleRow } from "../service_level/events.ts";

export type { SlSampleRow } from "../service_level/events.ts";

/** A run's state. `interrupted` is never stored: it is a `running` run whose engine is gone. */
export type RunState = "running" | "done" | "failed" | "cancelled" | "interrupted";

/** A run's state as stored (`interrupted` is told from `running` by looking at the engine). */
export type StoredState = Exclude<RunState, "interrupted">;

/** A step state, as the report names them. */
export type StepStateName =
  | "pending"
  | "frozen"
  | "running"
  | "done"
  | "failed"
  | "skipped"
  | "cancelled";

/** What a new run records. */
export interface NewRun {
  readonly id: string;
  /** The runbook's `name`. */
  readonly runbook: string;
  /** Absolute path of the runbook file (resume loads it again). */
  readonly file: string;
  /** sha256 of the runbook text when the run started (resume refuses a changed file). */
  readonly fileSha256: string;
  /**
   * The runbook file's text as run (so a view needs only the store, not the file); absent or
   * null for runs an older thaw recorded.
   */
  readonly runbookText?: string | null;
  readonly mode: "live";
  /** True for `thaw drill` (the drill overrides apply). */
  readonly drill: boolean;
  readonly strategy: string;
  /** `--var` overrides given on the command line. */
  readonly vars: Readonly<Record<string, string>>;
  /** Step ids in runbook order. */
  readonly steps: readonly string[];
  readonly startedAt: number;
  /** Process id and host of the engine, to tell a live run from an interrupted one. */
  readonly pid: number;
  readonly host: string;
}

/** A run as stored. */
export interface RunRecord extends NewRun {
  /** The runbook's text as run; absent for runs recorded without it. */
  readonly runbookText?: string;
  /** As stored: running, done, failed or cancelled. */
  readonly state: Exclude<RunState, "interrupted">;
  /** Last sign of life from the engine (it beats every second or so). */
  readonly heartbeatAt: number;
  readonly endedAt: number | null;
  /** The report (JSON text), once the run has ended; also kept current while it runs. */
  readonly report: string | null;
  /** outcome of the report, once ended: met, missed, failed, cancelled. */
  readonly outcome: string | null;
}

/** What may change on a run. */
export interface RunPatch {
  readonly state?: Exclude<RunState, "interrupted">;
  readonly heartbeatAt?: number;
  readonly endedAt?: number | null;
  readonly report?: string | null;
  readonly outcome?: string | null;
  /** A resumed run is taken over by a new engine process. */
  readonly pid?: number;
  readonly host?: string;
}

/** A step's state change. */
export interface StepChange {
  readonly step: string;
  readonly state: StepStateName;
  /** Seconds from the start of the run. */
  readonly at: number;
  /** Free text for the SRE: the failure reason, what a frozen step waits for, ... */
  readonly detail?: string;
}

/** A step's state change as stored, with its place in the run's sequence (from 1). */
export interface StepEvent extends StepChange {
  readonly seq: number;
}

/** A step's current record, folded from its changes and progress. */
export interface StepRecord {
  readonly step: string;
  readonly state: StepStateName;
  /** When it last went to `running`, seconds from the start. */
  readonly startS: number | null;
  /** When it reached done, failed, skipped or cancelled. */
  readonly endS: number | null;
  /** Seconds spent frozen so far (closed intervals only). */
  readonly frozenS: number;
  readonly detail: string | null;
}

/** How far a fetch has come. */
export interface FetchProgress {
  readonly step: string;
  /**
   * Bytes under the temporary name (or `to`, once done), plus what earlier attempts of this run
   * moved that the current one did not continue from: what crossed the link for it.
   */
  readonly bytes: number;
  /** Total when known. */
  readonly total: number | null;
  /** Bytes that arrived before a frozen step demanded the fetch. */
  readonly prefetched: number;
  readonly demanded: boolean;
  /** Index of the source in use. */
  readonly source: number;
  /** Wall-clock ms of this sample. */
  readonly at: number;
  /**
   * Once the fetch is done: the seconds it was moving (from asking its source, after any
   * approval, to its end, less the time the link held it back: paced or paused).
   */
  readonly moving?: number;
}

/** A request from outside the engine. */
export interface Command {
  readonly id: number;
  readonly run: string;
  readonly kind: "approve" | "cancel" | "done";
  /** The step, for `approve` and `done` (a person marks a waiting step done). */
  readonly step: string | null;
  readonly at: number;
}

/** A process a step started, recorded so a resumed engine can stop what a killed one left. */
export interface ProcessRecord {
  readonly step: string;
  readonly pid: number;
  readonly pgid: number;
  /** The log file a background service appends its output to (absent when none). */
  readonly log?: string;
  /** The host of the runbook (`on:`) it runs on; absent: the machine that runs thaw. */
  readonly host?: string;
}

/** Processes to record (replacing a step's earlier one) and steps whose process to forget. */
export interface ProcessChanges {
  readonly add: readonly ProcessRecord[];
  readonly remove: readonly string[];
}

/** A finished step of an earlier live run, for estimates from history. */
export interface HistorySample {
  readonly run: string;
  readonly step: string;
  /** Seconds from start to end. */
  readonly seconds: number;
  /** Bytes moved (fetches), else 0. */
  readonly bytes: number;
  readonly endedAt: number;
  /** Fetches: the seconds it was actually moving (see {@link FetchProgress.moving}), if known. */
  readonly moving?: number;
}

/** Where live runs keep their state. */
export interface Store {
  /** Records a new run, in state `running`. Throws if the id exists. */
  createRun(run: NewRun): Promise<void>;
  /** The run, or undefined. */
  getRun(id: string): Promise<RunRecord | undefined>;
  /** Runs, newest first (by `startedAt`, then id); only those in `state` when it is given. */
  listRuns(limit?: number, state?: StoredState): Promise<RunRecord[]>;
  /** How many runs are in each stored state. */
  countRuns(): Promise<Record<StoredState, number>>;
  updateRun(id: string, patch: RunPatch): Promise<void>;

  /**
   * Appends state changes and folds them into the steps' records; records and forgets the
   * `processes` given too: all in one transaction (the live engine's one commit per turn).
   */
  recordSteps(
    run: string,
    changes: readonly StepChange[],
    processes?: ProcessChanges,
  ): Promise<void>;
  /** Changes with `seq > after`, in order (for event streams and resume). */
  stepEvents(run: string, after?: number): Promise<StepEvent[]>;
  /** Current record of every step that has one. */
  steps(run: string): Promise<StepRecord[]>;

  /** Upserts the progress of fetches (one row per step, the latest sample wins). */
  saveProgress(run: string, progress: readonly FetchProgress[]): Promise<void>;
  progress(run: string): Promise<FetchProgress[]>;

  /** Queues a command; returns its id. */
  addCommand(run: string, kind: Command["kind"], step?: string): Promise<number>;
  /** Commands not yet taken, oldest first; marks them taken (each is returned once). */
  takeCommands(run: string): Promise<Command[]>;

  /** Records a process (replacing the step's earlier one). */
  addProcess(run: string, p: ProcessRecord): Promise<void>;
  removeProcess(run: string, step: string): Promise<void>;
  processes(run: string): Promise<ProcessRecord[]>;

  /**
   * Done steps of earlier live runs of `runbook` that ended `done` (not drills' skipped steps;
   * nothing of a failed, cancelled or interrupted run), newest first, at most `limit` per step.
   */
  history(runbook: string, limit?: number): Promise<HistorySample[]>;

  /** Stores service-level samples as taken (a `seq` already stored keeps its first row). */
  addSlSamples(run: string, rows: readonly SlSampleRow[]): Promise<void>;
  /** The run's service-level samples with `seq > afterSeq` (default 0: all), in `seq` order. */
  slSamples(run: string, afterSeq?: number): Promise<SlSampleRow[]>;

  close(): Promise<void>;
}

/** An engine's lease on a run: while it holds it, no other engine runs the run. */
export interface Lease {
  readonly run: string;
  /** Who holds it: any text that names the engine, such as `host:pid`. */
  readonly holder: string;
  /**
   * The fencing token: it grows by one each time the lease is acquired or taken over, so a
   * write checked against it is refused once another engine holds the run.
   */
  readonly token: number;
  /** When it expires unless renewed, by the database's clock, in ms since the Unix epoch. */
  readonly expiresAt: number;
}

/** A lease as read, with the database's clock at that moment. */
export interface LeaseState extends Lease {
  /** The database's clock when the lease was read, in ms since the Unix epoch. */
  readonly now: number;
}

/**
 * Leases and fencing. A store that acquired or took a run's lease checks every write it makes
 * to that run (`updateRun`, `recordSteps`, `saveProgress`, `takeCommands`, `addProcess`,
 * `removeProcess`) against the token in the same transaction: once another engine holds the
 * run, the write changes nothing and throws {@link LeaseLost}. A store that holds no lease on a
 * run writes as before (`thaw approve`, `cancel`, `done`, and runs of engines without leases).
 * Expiry goes by the database's clock, never the machine's.
 */
export interface Leases {
  /**
   * Takes the run's lease for `holder` for `ttlMs`, when nobody holds it, it expired, or
   * `holder` holds it already; a new token. Throws a StoreError naming the holder otherwise.
   */
  acquireLease(run: string, holder: string, ttlMs: number): Promise<Lease>;
  /** Extends the lease by `ttlMs` from now; {@link LeaseLost} when another engine took it. */
  renewLease(run: string, token: number, ttlMs: number): Promise<Lease>;
  /** Gives the lease up (the run ended); nothing when it was already lost. */
  releaseLease(run: string, token: number): Promise<void>;
  /**
   * For standbys: takes over a running run whose lease expired; undefined when the lease is
   * not expired (any more), or another standby took it first (exactly one wins).
   */
  takeLease(run: string, holder: string, ttlMs: number): Promise<Lease | undefined>;
  /** Running runs whose lease expired, longest expired first. */
  expiredLeases(): Promise<LeaseState[]>;
  /** The run's lease, or undefined when none is held. */
  lease(run: string): Promise<LeaseState | undefined>;
}

/** A store with leases, as `openStore()` gives: what an engine that fences its writes uses. */
export type LeaseStore = Store & Leases;
