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
import { analyse, buildGraph, type Estimates, FETCH } from "./graph.ts";
import { LinkShaper } from "./link.ts";
import { LiveRun } from "./live_view.ts";
import type { FetchStep, Runbook, RunStep, Strategy } from "./model.ts";
import { Recorder } from "./recorder.ts";
import { buildReport, type Report, sec } from "./report.ts";
import { Resolver } from "./resolve.ts";
import { type Decision, Scheduler } from "./scheduler.ts";
import {
  fillGaps,
  measuredEstimates,
  missingFetches,
  removePartials,
  resumeState,
  stopProcesses,
} from "./live_state.ts";
import type { RunRecord, StepChange, StepStateName, Store } from "./store/types.ts";
import { fetchData } from "../steps/fetch.ts";
import { runStep } from "../steps/run.ts";
import { type Clock, realClock, type Service, type Spawned } from "../steps/types.ts";

/** How often the loop looks at the store, beats, samples the link and saves progress. */
const TICK_MS = 200;
const SAVE_MS = 1000;

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
  /** Called after each turn of the loop with what changed (for the live view). */
  readonly onChange?: (live: LiveRun, changes: readonly StepChange[]) => void;
}

type Finished =
  | { type: "done"; i: number; bytes: number; service?: Service | undefined }
  | { type: "failed"; i: number; reason: string };

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
  const live = new LiveRun(runbook, runId, strategy, startedAt);
  const base = clock.now() - (Date.now() - startedAt);
  const now = () => (clock.now() - base) / 1000;

  if (options.resume) {
    await store.updateRun(runId, {
      state: "running",
      pid: Deno.pid,
      host: hostname(),
      heartbeatAt: Date.now(),
      endedAt: null,
    });
    await resumeState(options.resume, store, graph, scheduler, recorder, live);
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

  const shaper = new LinkShaper(clock);
  const controllers = new Map<number, AbortController>();
  const services: Service[] = [];
  const approvals = new Map<number, () => void>();
  const approved = new Set<string>();
  const finished: Finished[] = [];
  let wake: (() => void) | null = null;
  const notify = () => wake?.();
  let changes: StepChange[] = [];
  const change = (i: number, state: StepStateName, detail?: string) => {
    const s = live.steps[i]!;
    s.state = state;
    if (detail !== undefined) s.detail = detail;
    changes.push({ step: s.id, state, at: sec(now()), ...(detail ? { detail } : {}) });
  };
  const finish = (f: Finished) => {
    finished.push(f);
    notify();
  };
  const spawned = (i: number) => (p: Spawned) => {
    void store.addProcess(runId, { step: graph.ids[i]!, pid: p.pid, pgid: p.pgid });
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
      if (text !== undefined && !approved.has(step.id)) {
        change(i, "running", `waiting for approval: ${text} (thaw approve ${runId} ${step.id})`);
        await new Promise<void>((resolve) => {
          approvals.set(i, resolve);
          ac.signal.addEventListener("abort", () => resolve(), { once: true });
        });
        approvals.delete(i);
        if (ac.signal.aborted) return { type: "failed", i, reason: "cancelled" };
        change(i, "running", "approved");
      }
      if (step.kind === "run") {
        const out = options.output?.(step.id);
        const effect = await runStep(resolver.runSpec(step as RunStep), {
          ...ctx,
          onSpawn: spawned(i),
          ...(out ? { output: out } : {}),
        });
        // A service keeps its record: a resumed engine must know it is there.
        if (!effect.ok || !effect.service) void store.removeProcess(runId, step.id);
        return effect.ok
          ? { type: "done", i, bytes: 0, service: effect.service }
          : { type: "failed", i, reason: effect.reason };
      }
      const ls = live.steps[i]!;
      const effect = await fetchData(resolver.fetchSpec(step as FetchStep), {
        ...ctx,
        link: shaper.link(i),
        onSpawn: spawned(i),
        progress: (bytes, total) => {
          ls.bytes = bytes;
          if (total !== undefined) ls.total = total;
        },
      });
      shaper.release(i);
      return effect.ok
        ? { type: "done", i, bytes: effect.bytes }
        : { type: "failed", i, reason: effect.reason };
    };
    task().then(finish, (e) => finish({ type: "failed", i, reason: String(e?.message ?? e) }));
  };

  const apply = (decisions: readonly Decision[]) => {
    recorder.record(decisions, now(), (f) => live.steps[f]!.bytes);
    for (const d of decisions) {
      const i = d.step;
      switch (d.type) {
        case "start":
          change(i, "running", "");
          startStep(i);
          break;
        case "freeze":
          change(i, "frozen", `waits for ${missingFetches(graph, scheduler, i).join(", ")}`);
          break;
        case "thaw":
          change(i, "pending", "thawed");
          break;
        case "demand":
          live.steps[i]!.demanded = true;
          break;
        case "share":
          shaper.setShare(i, d.rate);
          break;
        case "skip":
          change(i, "skipped", "a step it needs failed or the run stopped");
          break;
        case "cancel":
          controllers.get(i)?.abort(new Error("cancelled"));
          approvals.get(i)?.();
          change(i, "cancelled");
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
    live.report = report();
    const progress = [];
    for (let i = 0; i < n; i++) {
      if (graph.kind[i] !== FETCH || live.steps[i]!.state === "pending") continue;
      const s = live.steps[i]!;
      progress.push({
        step: s.id,
        bytes: s.bytes,
        total: s.total,
        prefetched: s.demanded ? recorder.prefetched[i]! : s.bytes,
        demanded: s.demanded,
        source: 0,
        at: wall,
      });
    }
    if (progress.length) await store.saveProgress(runId, progress);
    await store.updateRun(runId, { heartbeatAt: wall, report: JSON.stringify(live.report) });
  };
  let lowerBound = analysis.lowerBound;
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
    });

  let lastSample = clock.now();
  const sampleLink = () => {
    if (clock.now() - lastSample < SAVE_MS) return;
    lastSample = clock.now();
    for (const [i, s] of shaper.sample()) {
      live.steps[i]!.rate = s.achieved;
      if (!Number.isFinite(graph.bandwidth) || !(s.share > 0) || !Number.isFinite(s.share)) {
        continue;
      }
      // The source, not the link, is the limit: let the others have the rest.
      if (s.waited < 0.05 && s.achieved < 0.8 * s.share) {
        scheduler.setRate(i, Math.max(1, s.achieved * 1.1));
      } // It keeps waiting for the link: the source can do more than we assumed.
      else if (s.waited > 0.3) scheduler.setRate(i, s.share * 2);
    }
  };

  apply(scheduler.decide());
  while (true) {
    if (cancelled()) cancel();
    for (const c of await store.takeCommands(runId)) {
      if (c.kind === "cancel") cancel();
      else if (c.step !== null) {
        approved.add(c.step);
        const i = graph.ids.indexOf(c.step);
        approvals.get(i)?.();
      }
    }
    for (const f of finished.splice(0)) {
      controllers.delete(f.i);
      const at = now();
      if (f.type === "done") {
        if (f.service) services.push(f.service);
        scheduler.complete(f.i);
        if (scheduler.state(f.i) === "done") {
          recorder.complete(f.i, at, f.bytes);
          live.steps[f.i]!.bytes = f.bytes;
          change(f.i, "done", "");
        }
      } else {
        const was = scheduler.state(f.i);
        scheduler.fail(f.i);
        if (was === "running") {
          recorder.complete(f.i, at, live.steps[f.i]!.bytes);
          change(f.i, "failed", f.reason);
        }
      }
    }
    sampleLink();
    apply(scheduler.decide());
    live.elapsed = now();
    if (changes.length) {
      await store.recordSteps(runId, changes);
    }
    options.onChange?.(live, changes);
    changes = [];
    if (scheduler.finished && controllers.size === 0) break;
    await save(false);
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, TICK_MS);
    });
    wake = null;
  }

  if (runbook.drill) {
    await Promise.all(services.map((s) => s.stop()));
    // Services a killed engine of this run had started, found again on resume.
    await stopProcesses(store, runId, 5000);
  }
  // The bounds of the run as it went: its measured durations and sizes, not the estimates.
  const measured = measuredEstimates(runbook, graph, recorder, options.estimates);
  const { duration, size } = measured;
  lowerBound = analyse(
    buildGraph(runbook, fillGaps(runbook, { ...options.estimates, duration, size })),
  ).lowerBound;
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

export { fillGaps, stopProcesses } from "./live_state.ts";
export { LiveRun, type LiveStep } from "./live_view.ts";
