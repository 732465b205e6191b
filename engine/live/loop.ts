/**
 * The live engine: the same scheduler as the simulator, driven by the real clock, real processes
 * and the real network.
 *
 * The loop feeds the scheduler what happened (a step finished or failed, a source is slower than
 * its share, a command from the store) and carries out what it decides (start a step, freeze,
 * thaw, demand, share the link), recording every state change in the store so another process
 * can watch and steer the run, and a killed engine can resume it.
 *
 * @module
 */
import { hostname } from "node:os";
import { analyse, buildGraph, type Estimates, FETCH, fillGaps } from "../plan/graph.ts";
import { LinkShaper } from "./link.ts";
import { RateEstimator } from "../schedule/rate.ts";
import { LiveRun, skipDetail } from "./live_run.ts";
import type { FetchStep, Runbook, RunStep, Strategy } from "../runbook/model.ts";
import { Recorder } from "../schedule/recorder.ts";
import { buildReport, type Report, sec } from "../schedule/report.ts";
import { Resolver } from "../runbook/resolve.ts";
import { type Decision, Scheduler } from "../schedule/scheduler.ts";
import {
  measuredBound,
  measuredEstimates,
  missingFetches,
  progressRow,
  removePartials,
  stopProcesses,
} from "./state.ts";
import { type Resumed, resumeState } from "./resume.ts";
import { DONE_BY_HAND, PersonWaits } from "../schedule/waits.ts";
import { PROCESS_RECORD_MS, ProcessBook } from "./procs.ts";
import type { FetchProgress, RunRecord, StepChange, StepStateName, Store } from "../store/types.ts";
import { fetchData } from "../../steps/fetch/fetch.ts";
import { runStep } from "../../steps/run/run.ts";
import { watchRecorded, watchService } from "./services.ts";
import { type Clock, realClock, type Service, type Spawned } from "../../steps/types.ts";

/** How often the loop looks at the store, beats, samples the link and saves progress. */
const TICK_MS = 200;
const SAVE_MS = 1000;
/** How often, at most, the loop asks the store for commands (approve, cancel) from other processes. */
const COMMANDS_MS = 50;

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
  /** Called once the run exists in the store, before its first step starts. */
  readonly onStart?: () => void | Promise<void>;
}

type Finished =
  | { type: "done"; i: number; bytes: number; service?: Service | undefined; detail?: string }
  | { type: "failed"; i: number; reason: string }
  /** A done step's background service exited: the step fails after all. */
  | { type: "lost"; i: number; reason: string };

/**
 * Runs (or resumes) a runbook for real and returns its report.
 *
 * Services started by `background` steps keep running when the run ends, except in a drill,
 * where the engine stops them.
 */
export async function runLive(
  options: LiveOptions,
): Promise<{ report: Report; live: LiveRun; measured: Estimates }> {
  const { runbook, store } = options;
  const clock = options.clock ?? realClock;
  const strategy = options.strategy ?? (options.resume?.strategy as Strategy) ?? runbook.strategy;
  const runId = options.run;
  const resolver = new Resolver(runbook, runId, options.env ?? Deno.env.toObject());
  const graph = buildGraph(runbook, fillGaps(runbook, options.estimates));
  const analysis = analyse(graph);
  const scheduler = new Scheduler(graph, {
    strategy,
    parallelism: runbook.parallelism,
    rank: analysis.rank,
  });
  const recorder = new Recorder(graph);
  const n = graph.n;
  const startedAt = options.resume?.startedAt ?? Date.now();
  const live = new LiveRun(runbook, runId, strategy, startedAt, options.estimates);
  const base = clock.now() - (Date.now() - startedAt);
  const now = () => (clock.now() - base) / 1000;

  let resumed: Resumed | undefined;
  if (options.resume) {
    await store.updateRun(runId, {
      state: "running",
      pid: Deno.pid,
      host: hostname(),
      heartbeatAt: Date.now(),
      endedAt: null,
    });
    resumed = await resumeState(options.resume, store, graph, scheduler, recorder, live, {
      runbook,
      resolver,
      from: options.from,
    });
  } else {
    await store.createRun({
      id: runId,
      runbook: runbook.name,
      file: runbook.dir + "/" + runbook.file.split("/").pop(),
      fileSha256: options.fileSha256,
      mode: "live",
      drill: runbook.drill,
      strategy,
      vars: options.vars ?? {},
      steps: runbook.steps.map((s) => s.id),
      startedAt,
      pid: Deno.pid,
      host: hostname(),
    });
  }
  await options.onStart?.();

  const shaper = new LinkShaper(clock);
  const rates = new RateEstimator(graph.bandwidth, graph.rate);
  const controllers = new Map<number, AbortController>();
  const services: Service[] = [];
  // Approval gates, and steps that were running when a killed engine died (see waits.ts).
  const waits = new PersonWaits(runId, resumed?.interrupted);
  // Process records, written with each turn's commit (a new run has none stored yet).
  const procs = new ProcessBook(options.resume === undefined);
  const finished: Finished[] = [];
  let wake: (() => void) | null = null;
  const notify = () => wake?.();
  let changes: StepChange[] = [];
  // `at`: the time the recorder was given too, so events and the report agree to the ms.
  const change = (i: number, state: StepStateName, detail?: string, at = now()) => {
    const s = live.steps[i]!;
    s.state = state;
    if (state === "running") s.since = at; // the live table's elapsed time and ETA
    if (detail !== undefined) s.detail = detail;
    changes.push({ step: s.id, state, at: sec(at), ...(detail ? { detail } : {}) });
  };
  const finish = (f: Finished) => {
    finished.push(f);
    notify();
  };
  const spawned = (i: number) => (p: Spawned) => {
    procs.add({ step: graph.ids[i]!, pid: p.pid, pgid: p.pgid });
  };
  const cancelled = () => options.signal?.aborted === true;

  const startStep = (i: number) => {
    const step = runbook.steps[i]!;
    const ac = new AbortController();
    controllers.set(i, ac);
    const ctx = {
      signal: ac.signal,
      clock,
      env: resolver.env(step),
      cwd: runbook.dir,
      log: () => {},
    };
    const task = async (): Promise<Finished> => {
      if (graph.skipped[i]) {
        // A drill never runs it: it stands in for itself with its estimate, as in simulation.
        await clock.sleep((step.estimate ?? 0) * 1000, ac.signal).catch(() => {});
        return { type: "done", i, bytes: 0 };
      }
      const text = resolver.approval(step);
      let waited = false;
      const verdict = await waits.gate(i, step.id, text, ac.signal, (detail) => {
        waited = true;
        change(i, "running", detail);
        scheduler.waitForPerson(i); // its run slot goes to other steps meanwhile
        notify();
      });
      scheduler.personDecided(i);
      if (verdict === "cancelled") return { type: "failed", i, reason: "cancelled" };
      const carried = resumed?.carried[i] ?? 0;
      if (verdict === "done") return { type: "done", i, bytes: carried, detail: DONE_BY_HAND };
      if (waited) change(i, "running", "approved");
      if (step.kind === "run") {
        const out = options.output?.(step.id);
        const log = options.logFile?.(step.id);
        const effect = await runStep(resolver.runSpec(step as RunStep), {
          ...ctx,
          onSpawn: spawned(i),
          drill: runbook.drill,
          ...(out ? { output: out } : {}),
          ...(log !== undefined ? { logFile: log } : {}),
        });
        // A service keeps its record: a resumed engine must know it is there.
        if (!effect.ok || !effect.service) procs.remove(step.id);
        else {
          procs.drop(step.id); // recorded with its log by watchService
          const lost = (reason: string) => finish({ type: "lost", i, reason });
          watchService(store, runId, step.id, effect.service, log, lost);
        }
        return effect.ok
          ? { type: "done", i, bytes: 0, service: effect.service }
          : { type: "failed", i, reason: effect.reason };
      }
      const ls = live.steps[i]!;
      rates.begin(i, now(), shaper.waited(i)); // its source is asked now: it moves from here
      const spec = resolver.fetchSpec(step as FetchStep);
      const effect = await fetchData(spec, {
        ...ctx,
        link: shaper.link(i, (step as FetchStep).local), // `local`: counted, never paced
        onSpawn: spawned(i),
        progress: (bytes, total) => {
          ls.bytes = carried + bytes;
          if (total !== undefined) ls.total = total;
        },
      });
      recorder.moving[i] = rates.end(i, now(), shaper.waited(i));
      recorder.crossed[i] = shaper.total(i);
      shaper.release(i);
      procs.remove(step.id); // a fetch leaves no process behind
      if (!effect.ok) return { type: "failed", i, reason: effect.reason };
      const detail = effect.replaced
        ? `replaced the ${effect.replaced} that was at ${spec.to}`
        : undefined;
      return { type: "done", i, bytes: carried + effect.bytes, detail };
    };
    task().then(finish, (e) => finish({ type: "failed", i, reason: String(e?.message ?? e) }));
  };

  const starting: number[] = [];
  /** How done steps ended, when there is something to say (replaced a file; done by hand). */
  const notes = new Map<number, string>();
  const apply = (decisions: readonly Decision[]) => {
    const t = now();
    recorder.record(decisions, t, (f) => live.steps[f]!.bytes);
    for (const d of decisions) {
      const i = d.step;
      switch (d.type) {
        case "start":
          change(i, "running", graph.skipped[i] ? skipDetail(runbook.steps[i]!.estimate) : "", t);
          starting.push(i); // started once this turn's changes are committed
          break;
        case "freeze":
          change(i, "frozen", `waits for ${missingFetches(graph, scheduler, i).join(", ")}`, t);
          break;
        case "thaw":
          change(i, "pending", "thawed", t);
          break;
        case "demand":
          live.steps[i]!.demanded = true;
          break;
        case "share":
          shaper.setShare(i, d.rate);
          break;
        case "skip":
          change(i, "skipped", "a step it needs failed or the run stopped", t);
          break;
        case "cancel":
          controllers.get(i)?.abort(new Error("cancelled"));
          change(i, "cancelled", undefined, t);
          break;
      }
    }
  };

  let cancelRequested = false;
  const cancel = () => {
    if (cancelRequested) return;
    cancelRequested = true;
    scheduler.cancel();
  };
  options.signal?.addEventListener("abort", () => notify(), { once: true });

  let lastSave = -Infinity;
  const save = async (force: boolean) => {
    const wall = Date.now();
    if (!force && wall - lastSave < SAVE_MS) return;
    lastSave = wall;
    if (scheduler.unfinished !== boundFor) {
      // A step finished: the bounds from what it measured (a report never beats its bound).
      boundFor = scheduler.unfinished;
      lowerBound = measuredBound(runbook, graph, recorder, options.estimates);
    }
    live.report = report();
    const progress = [];
    for (let i = 0; i < n; i++) {
      if (graph.kind[i] !== FETCH || live.steps[i]!.state === "pending") continue;
      progress.push(progressRow(live, recorder, i, wall));
    }
    if (progress.length) await store.saveProgress(runId, progress);
    await store.updateRun(runId, { heartbeatAt: wall, report: JSON.stringify(live.report) });
  };
  let lowerBound = analysis.lowerBound;
  let boundFor = scheduler.unfinished; // steps unfinished when the bound was last measured
  const report = () =>
    buildReport({
      runbook,
      graph,
      lowerBound,
      recorder,
      state: (i) => scheduler.state(i),
      mode: "live",
      strategy,
      run: runId,
      inFlight: (i) => live.steps[i]!.bytes,
      waiting: (i) => (waits.waiting(i) ? live.steps[i]!.detail : notes.get(i)),
    });

  let lastSample = clock.now();
  const sampleLink = () => {
    if (clock.now() - lastSample < SAVE_MS) return;
    lastSample = clock.now();
    for (const [i, s] of shaper.sample()) {
      live.steps[i]!.rate = s.achieved;
      // What the source can do, judged by rate.ts (slow, held back by the link, or not known).
      const o = { at: now(), bytes: s.total, waited: s.waitedTotal, share: s.share };
      const rate = rates.observe(i, o);
      if (rate !== undefined) scheduler.setRate(i, rate);
    }
  };

  apply([...resumed?.decisions ?? [], ...scheduler.decide()]);
  // Services a killed engine of this run started are watched too (`thaw resume`).
  const isDone = (id: string) => scheduler.state(graph.ids.indexOf(id)) === "done";
  const lostRecorded = (id: string, reason: string) =>
    finish({ type: "lost", i: graph.ids.indexOf(id), reason });
  const unwatch = options.resume ? watchRecorded(store, runId, isDone, lostRecorded) : () => {};
  const landed: FetchProgress[] = [];
  let lastCommands = -Infinity;
  while (true) {
    if (cancelled()) cancel();
    const asked = performance.now() - lastCommands >= COMMANDS_MS;
    if (asked) lastCommands = performance.now();
    for (const c of asked ? await store.takeCommands(runId) : []) {
      if (c.kind === "cancel") cancel();
      else if (c.step !== null) waits.command(c.kind, graph.ids.indexOf(c.step));
    }
    for (const f of finished.splice(0)) {
      if (f.type === "lost") {
        if (scheduler.state(f.i) !== "done") continue;
        scheduler.lost(f.i);
        change(f.i, "failed", f.reason);
        procs.remove(graph.ids[f.i]!);
        continue;
      }
      controllers.delete(f.i);
      const at = now();
      if (f.type === "done") {
        if (f.service) services.push(f.service);
        scheduler.complete(f.i);
        if (scheduler.state(f.i) === "done") {
          recorder.complete(f.i, at, f.bytes);
          live.steps[f.i]!.bytes = f.bytes;
          change(f.i, "done", f.detail ?? "", at);
          if (f.detail) notes.set(f.i, f.detail); // how it ended, kept in the report
          // Its exact bytes, stored before it counts as done: a resumed report shows them.
          if (graph.kind[f.i] === FETCH) landed.push(progressRow(live, recorder, f.i));
        }
      } else {
        const was = scheduler.state(f.i);
        scheduler.fail(f.i);
        if (was === "running") {
          recorder.complete(f.i, at, live.steps[f.i]!.bytes);
          change(f.i, "failed", f.reason, at);
        }
      }
    }
    sampleLink();
    apply(scheduler.decide());
    live.elapsed = now();
    if (landed.length) await store.saveProgress(runId, landed.splice(0));
    // One commit per turn: its state changes (a step's `done` with them) and process records.
    const records = procs.take();
    if (changes.length || records.add.length || records.remove.length) {
      await store.recordSteps(runId, changes, records);
    }
    options.onChange?.(live, changes);
    changes = [];
    // Only now: a step starts once what it needs is durably `done` (one commit per turn, above).
    for (const i of starting.splice(0)) startStep(i);
    if (scheduler.finished && controllers.size === 0) break;
    await save(false);
    // A cancel already taken (cancelRequested) must not keep the loop from waiting: it would spin.
    if (finished.length === 0 && (!cancelled() || cancelRequested)) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, procs.unrecorded ? PROCESS_RECORD_MS : TICK_MS);
      });
      clearTimeout(timer);
    }
    wake = null;
  }
  await store.recordSteps(runId, [], procs.take());

  unwatch();
  if (runbook.drill) {
    await Promise.all(services.map((s) => s.stop()));
    // Services a killed engine of this run had started, found again on resume.
    await stopProcesses(store, runId, 5000);
  }
  // The bounds of the run as it went: its measured durations and sizes, not the estimates.
  const measured = measuredEstimates(runbook, graph, recorder, options.estimates);
  lowerBound = measuredBound(runbook, graph, recorder, options.estimates);
  const final = report();
  live.report = final;
  if (final.outcome === "cancelled") {
    // Cancelled: nothing half-written stays (an interrupted run keeps it for resume).
    const done = new Set(live.steps.filter((s) => s.state === "done").map((s) => s.id));
    await removePartials(runbook, runId, (id) => done.has(id), resolver.processEnv);
  }
  const state = final.outcome === "cancelled"
    ? "cancelled"
    : final.outcome === "failed"
    ? "failed"
    : "done";
  await store.updateRun(runId, {
    state,
    endedAt: Date.now(),
    heartbeatAt: Date.now(),
    report: JSON.stringify(final),
    outcome: final.outcome,
  });
  return { report: final, live, measured };
}

export { stopProcesses } from "./state.ts";
export { fillGaps } from "../plan/graph.ts";
export { LiveRun, type LiveStep } from "./live_run.ts";
