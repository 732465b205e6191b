/**
 * What a live run is given ({@link LiveOptions}) and the state its parts share ({@link LiveState}):
 * the graph, the scheduler, the recorder, the live view and the run's clock. The loop
 * (`loop.ts`), the executor (`executor.ts`) and the bookkeeping (`bookkeeping.ts`) each take this
 * state explicitly; none keeps a copy of another's.
 *
 * @module
 */
import { analyse, type Analysis, buildGraph, type Estimates, fillGaps } from "../plan/graph.ts";
import type { Graph } from "../plan/graph.ts";
import type { Runbook, Strategy } from "../runbook/model.ts";
import { Resolver } from "../runbook/resolve.ts";
import { Recorder } from "../schedule/recorder.ts";
import { Scheduler } from "../schedule/scheduler.ts";
import type { RunRecord, StepChange, Store } from "../store/types.ts";
import { type Clock, realClock } from "../../steps/types.ts";
import { LiveRun } from "./live_run.ts";
import { RunHosts } from "./run_hosts.ts";
import type { LeaseOptions } from "./lease.ts";

/** What to run, and where to keep its state. */
export interface LiveOptions {
  readonly runbook: Runbook;
  readonly store: Store;
  /** Overrides the runbook's strategy. */
  readonly strategy?: Strategy | undefined;
  /** `--var` overrides, recorded with the run (resume applies them again). */
  readonly vars?: Readonly<Record<string, string>>;
  /** The run id (a new one by default). */
  readonly run: string;
  /** Continue this run instead of starting one. */
  readonly resume?: RunRecord;
  /** With `resume`: run this step and every step downstream of it again (`--from`). */
  readonly from?: string | undefined;
  /** sha256 of the runbook text. */
  readonly fileSha256: string;
  /** Estimates (from history) for the steps the runbook does not time. */
  readonly estimates?: Estimates;
  readonly clock?: Clock;
  /** The environment commands inherit (default: this process's). */
  readonly env?: Readonly<Record<string, string>>;
  /** Aborting it cancels the run (Ctrl-C). */
  readonly signal?: AbortSignal;
  /** Where each step's output goes, by step id. */
  readonly output?: (step: string) => ((chunk: Uint8Array) => void) | undefined;
  /** Each step's log file, by step id: background services append their output there. */
  readonly logFile?: (step: string) => string | undefined;
  /** Called after each turn of the loop with what changed (for the live view). */
  readonly onChange?: (live: LiveRun, changes: readonly StepChange[]) => void;
  /** An ssh config file for the hosts instead of the user's (default `$THAW_SSH_CONFIG`). */
  readonly sshConfig?: string | undefined;
  /** Called once the run exists in the store, before its first step starts. */
  readonly onStart?: () => void | Promise<void>;
  /**
   * Hold a lease on the run (renewed; every write fenced by it): a lost lease or store stops
   * the engine (`lease.ts`). Undefined: no lease (tests that drive the engine alone).
   */
  readonly lease?: LeaseOptions;
}

/** The state of one live run that its loop, executor and bookkeeping share. */
export interface LiveState {
  readonly options: LiveOptions;
  readonly runbook: Runbook;
  readonly store: Store;
  readonly run: string;
  readonly strategy: Strategy;
  readonly clock: Clock;
  readonly resolver: Resolver;
  /** The run's hosts (`on:`), one shared ssh connection each; closed when the run ends. */
  readonly hosts: RunHosts;
  readonly graph: Graph;
  readonly analysis: Analysis;
  readonly scheduler: Scheduler;
  readonly recorder: Recorder;
  /** The run as people see it (the live table, the API), kept up to date by the bookkeeping. */
  readonly live: LiveRun;
  /** Wall-clock ms of the start of the run (its first start, when resumed). */
  readonly startedAt: number;
  /** Seconds since the start of the run, on the run's clock. */
  readonly now: () => number;
}

/** The state a live run of `options` starts from (nothing is stored yet). */
export function liveState(options: LiveOptions): LiveState {
  const { runbook } = options;
  const clock = options.clock ?? realClock;
  const strategy = options.strategy ?? (options.resume?.strategy as Strategy) ?? runbook.strategy;
  const resolver = new Resolver(runbook, options.run, options.env ?? Deno.env.toObject());
  const graph = buildGraph(runbook, fillGaps(runbook, options.estimates));
  const analysis = analyse(graph);
  const scheduler = new Scheduler(graph, {
    strategy,
    parallelism: runbook.parallelism,
    rank: analysis.rank,
  });
  const startedAt = options.resume?.startedAt ?? Date.now();
  const live = new LiveRun(runbook, options.run, strategy, startedAt, options.estimates);
  const base = clock.now() - (Date.now() - startedAt);
  return {
    options,
    runbook,
    store: options.store,
    run: options.run,
    strategy,
    clock,
    resolver,
    hosts: new RunHosts(runbook.hosts, options.sshConfig),
    graph,
    analysis,
    scheduler,
    recorder: new Recorder(graph),
    live,
    startedAt,
    now: () => (clock.now() - base) / 1000,
  };
}
