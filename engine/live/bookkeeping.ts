/**
 * The live engine's bookkeeping: what the run records, for people and for a resumed engine.
 *
 * - Each state change goes to the live view ({@link LiveRun}) at once and to the store with the
 *   turn's one commit ({@link Bookkeeping.commit}), with the process records; a step starts only
 *   after the commit that made what it needs durably `done`.
 * - About once a second ({@link Bookkeeping.save}): the fetches' progress, the heartbeat and the
 *   report so far.
 * - At the end ({@link Bookkeeping.close}): the report with the bounds the run measured and its
 *   `prediction`, and the run's final state.
 *
 * @module
 */
import { hostname } from "node:os";
import { FETCH } from "../plan/graph.ts";
import { buildReport, type Report, sec } from "../schedule/report.ts";
import type { FetchProgress, StepChange, StepStateName } from "../store/types.ts";
import type { LiveState } from "./context.ts";
import { ProcessBook } from "./procs.ts";
import type { LiveServiceLevel } from "./service_level.ts";
import { type Resumed, resumeState } from "./resume.ts";
import { measuredBound, measuredEstimates, progressRow, removePartials } from "./state.ts";

/** How often, at most, progress, the heartbeat and the report are saved (ms). */
const SAVE_MS = 1000;

/** What a live run records, and when. */
export class Bookkeeping {
  /** Process records, written with each turn's commit. */
  readonly procs: ProcessBook;
  /** The run's service level (`service_level.ts`), once started; none without probes. */
  sl: LiveServiceLevel | undefined;
  readonly #s: LiveState;
  #changes: StepChange[] = [];
  /** Exact bytes of fetches that landed this turn: stored before they count as done. */
  #landed: FetchProgress[] = [];
  /** How done steps ended, when there is something to say (replaced a file; done by hand). */
  readonly #notes = new Map<number, string>();
  #lastSave = -Infinity;
  #lowerBound: { readonly ttr: number; readonly btn: number };
  /** Steps unfinished when the bound was last measured. */
  #boundFor: number;

  /** The bookkeeping of the run of `s` (`fresh`: a new run, nothing stored yet). */
  constructor(s: LiveState, fresh: boolean) {
    this.#s = s;
    this.procs = new ProcessBook(fresh);
    this.#lowerBound = s.analysis.lowerBound;
    this.#boundFor = s.scheduler.unfinished;
  }

  /**
   * Records the run in the store: a new one, or the resumed one with what its earlier engines did
   * restored into the scheduler, recorder and live view.
   */
  async begin(): Promise<Resumed | undefined> {
    const { options, store, run, runbook, strategy, startedAt } = this.#s;
    if (!options.resume) {
      await store.createRun({
        id: run,
        runbook: runbook.name,
        file: runbook.dir + "/" + runbook.file.split("/").pop(),
        fileSha256: options.fileSha256,
        runbookText: runbook.text,
        mode: "live",
        drill: runbook.drill,
        strategy,
        vars: options.vars ?? {},
        steps: runbook.steps.map((s) => s.id),
        startedAt,
        pid: Deno.pid,
        host: hostname(),
      });
      return undefined;
    }
    await store.updateRun(run, {
      state: "running",
      pid: Deno.pid,
      host: hostname(),
      heartbeatAt: Date.now(),
      endedAt: null,
      outcome: null, // a resumed run has no outcome until it ends again
    });
    const { graph, scheduler, recorder, live, resolver } = this.#s;
    return await resumeState(options.resume, store, graph, scheduler, recorder, live, {
      runbook,
      resolver,
      from: options.from,
      targetOf: (host) => this.#s.hosts.of(host),
    });
  }

  /** Step `i` goes to `state` (`at`: the time the recorder was given, so both agree to the ms). */
  change(i: number, state: StepStateName, detail?: string, at = this.#s.now()): void {
    const s = this.#s.live.steps[i]!;
    s.state = state;
    if (state === "running") s.since = at; // the live table's elapsed time and ETA
    if (detail !== undefined) s.detail = detail;
    if (state === "failed" && detail) this.#notes.set(i, detail); // the report says why
    this.#changes.push({ step: s.id, state, at: sec(at), ...(detail ? { detail } : {}) });
  }

  /** Step `i` is done at `at` with `bytes` (`detail`: how it ended, kept in the report). */
  done(i: number, at: number, bytes: number, detail?: string): void {
    const { recorder, live, graph } = this.#s;
    recorder.complete(i, at, bytes);
    live.steps[i]!.bytes = bytes;
    this.change(i, "done", detail ?? "", at);
    this.sl?.stepDone(i);
    if (detail) this.#notes.set(i, detail);
    // Its exact bytes, stored before it counts as done: a resumed report shows them.
    if (graph.kind[i] === FETCH) this.#landed.push(progressRow(live, recorder, i));
  }

  /** The turn's one commit: its state changes (a step's `done` with them) and process records. */
  async commit(): Promise<void> {
    const { store, run, live, options } = this.#s;
    live.elapsed = this.#s.now();
    if (this.#landed.length) await store.saveProgress(run, this.#landed.splice(0));
    const records = this.procs.take(performance.now()); // those of steps that ran a while
    const changes = this.#changes;
    this.#changes = [];
    if (changes.length || records.add.length || records.remove.length) {
      await store.recordSteps(run, changes, records);
    }
    options.onChange?.(live, changes);
  }

  /** Saves progress, the heartbeat and the report so far, at most once a second unless `force`. */
  async save(force: boolean): Promise<void> {
    const wall = Date.now();
    if (!force && wall - this.#lastSave < SAVE_MS) return;
    this.#lastSave = wall;
    const { scheduler, graph, live, recorder, store, run } = this.#s;
    if (scheduler.unfinished !== this.#boundFor) {
      // A step finished: the bounds from what it measured (a report never beats its bound).
      this.#boundFor = scheduler.unfinished;
      this.#lowerBound = this.#measuredBound();
    }
    live.report = this.report();
    const progress = [];
    for (let i = 0; i < graph.n; i++) {
      if (graph.kind[i] !== FETCH || live.steps[i]!.state === "pending") continue;
      progress.push(progressRow(live, recorder, i, wall));
    }
    if (progress.length) await store.saveProgress(run, progress);
    await store.updateRun(run, { heartbeatAt: wall, report: JSON.stringify(live.report) });
  }

  /** The report of the run so far (`final`: with every service-level sample). */
  report(final = false): Report {
    const { runbook, graph, recorder, scheduler, strategy, run, live } = this.#s;
    const report = buildReport({
      runbook,
      graph,
      lowerBound: this.#lowerBound,
      recorder,
      state: (i) => scheduler.state(i),
      mode: "live",
      strategy,
      run,
      inFlight: (i) => live.steps[i]!.bytes,
      waiting: (i) => (scheduler.waiting(i) ? live.steps[i]!.detail : this.#notes.get(i)),
    });
    return this.sl ? this.sl.decorate(report, final) : report;
  }

  /** Writes the process records still waiting for a commit (the loop has ended). */
  async flushProcesses(): Promise<void> {
    await this.#s.store.recordSteps(this.#s.run, [], this.procs.take());
  }

  /**
   * The run has ended: its report with the bounds it measured and its `prediction`, what a
   * cancelled run half-wrote removed, and its final state stored.
   */
  async close(): Promise<{ report: Report; measured: ReturnType<typeof measuredEstimates> }> {
    const { runbook, graph, recorder, options, live, run, store, strategy } = this.#s;
    // The bounds of the run as it went: its measured durations and sizes, not the estimates.
    const measured = measuredEstimates(runbook, graph, recorder, options.estimates);
    this.#lowerBound = measuredBound(runbook, graph, recorder, options.estimates, measured);
    const final = this.report(true);
    // The simulator, loaded only now (start-up does not need it).
    const { predictBefore, serialAfter } = await import("../simulate/expected.ts");
    final.prediction = {
      simulated: predictBefore(runbook, strategy, options.estimates),
      serial: serialAfter(runbook, final, { ...options.estimates, ...measured }),
    };
    live.report = final;
    if (final.outcome === "cancelled") {
      // Cancelled: nothing half-written stays (an interrupted run keeps it for resume).
      const done = new Set(live.steps.filter((s) => s.state === "done").map((s) => s.id));
      const { resolver, hosts } = this.#s;
      await removePartials(runbook, run, (id) => done.has(id), resolver.processEnv, hosts.of);
    }
    const outcome = final.outcome;
    const state = outcome === "cancelled" || outcome === "failed" ? outcome : "done";
    await store.updateRun(run, {
      state,
      endedAt: Date.now(),
      heartbeatAt: Date.now(),
      report: JSON.stringify(final),
      outcome,
    });
    return { report: final, measured };
  }

  #measuredBound() {
    const { runbook, graph, recorder, options } = this.#s;
    return measuredBound(runbook, graph, recorder, options.estimates);
  }
}
