/**
 * The live engine's helpers around its loop: estimates for ranking, what a run measured, restoring
 * a killed engine's state on resume, and cleaning up what a run leaves behind (process groups,
 * partial fetches).
 *
 * @module
 */
import { type Estimates, FETCH, type Graph } from "./graph.ts";
import type { Runbook } from "./model.ts";
import type { LiveRun } from "./live.ts";
import type { Recorder } from "./recorder.ts";
import { sec } from "./report.ts";
import { Resolver } from "./resolve.ts";
import type { Scheduler } from "./scheduler.ts";
import type { RunRecord, StepChange, Store } from "./store/types.ts";
import { removeQuietly } from "../steps/atomic.ts";
import { killGroup } from "../steps/process.ts";

/**
 * What a run measured, over `base`'s durations and sizes: each finished run step's duration and
 * each fetch's bytes; and, on a link without limit, each fetch's achieved rate where the runbook
 * gives none (alone on the link, its source is at least as fast as it was while sharing it).
 */
export function measuredEstimates(
  runbook: Runbook,
  graph: Graph,
  recorder: Recorder,
  base: Estimates = {},
): Required<Estimates> {
  const duration = new Map(base.duration), size = new Map(base.size);
  const rate = new Map<string, number>();
  for (let i = 0; i < graph.n; i++) {
    const start = recorder.start[i]!, end = recorder.end[i]!;
    if (Number.isNaN(start) || Number.isNaN(end)) continue;
    const id = graph.ids[i]!, step = runbook.steps[i]!;
    if (graph.kind[i] !== FETCH) {
      if (!graph.skipped[i]) duration.set(id, end - start);
      continue;
    }
    size.set(id, recorder.bytes[i]!);
    if (step.kind === "fetch" && step.rate === undefined && end > start) {
      if (!Number.isFinite(runbook.bandwidth)) rate.set(id, recorder.bytes[i]! / (end - start));
    }
  }
  return { duration, size, rate };
}

/** The fetches step `i` still waits for (what a frozen step waits for). */
export function missingFetches(graph: Graph, scheduler: Scheduler, i: number): string[] {
  const out: string[] = [];
  for (let k = graph.needStart[i]!; k < graph.needStart[i + 1]!; k++) {
    const j = graph.needList[k]!;
    if (graph.kind[j] === FETCH && scheduler.state(j) !== "done") out.push(graph.ids[j]!);
  }
  return out;
}

/**
 * Estimates for ranking steps in a live run: the runbook's, then history, then a default where
 * nothing is known (1 s for a run step, 0 bytes for a fetch), so the plan can always be analysed.
 */
export function fillGaps(runbook: Runbook, estimates: Estimates = {}): Estimates {
  const duration = new Map(estimates.duration), size = new Map(estimates.size);
  for (const s of runbook.steps) {
    if (s.kind === "run" && s.estimate === undefined && !duration.has(s.id)) duration.set(s.id, 1);
    if (s.kind === "fetch" && s.size === undefined && !size.has(s.id)) size.set(s.id, 0);
  }
  return { ...estimates, duration, size };
}

/**
 * Stops the process groups the store records for run `run` (all but those of the steps `keep`
 * says to leave running) and forgets them.
 */
export async function stopProcesses(
  store: Store,
  run: string,
  graceMs: number,
  keep: (step: string) => boolean = () => false,
): Promise<void> {
  for (const p of await store.processes(run)) {
    if (keep(p.step)) continue;
    await killGroup(p.pgid, graceMs).catch(() => {});
    await store.removeProcess(run, p.step);
  }
}

/** Restores what a killed engine had done: done steps stay done, everything else runs again. */
export async function resumeState(
  record: RunRecord,
  store: Store,
  graph: Graph,
  scheduler: Scheduler,
  recorder: Recorder,
  live: LiveRun,
): Promise<void> {
  const steps = new Map((await store.steps(record.id)).map((s) => [s.step, s]));
  // Stop whatever the killed engine's unfinished steps left running; services of done steps
  // stay up (they are the recovered service).
  await stopProcesses(store, record.id, 2000, (step) => steps.get(step)?.state === "done");
  const progress = new Map((await store.progress(record.id)).map((p) => [p.step, p]));
  const changes: StepChange[] = [];
  for (const i of graph.order) {
    const id = graph.ids[i]!;
    const s = steps.get(id);
    if (s?.state === "done") {
      scheduler.complete(i);
      const bytes = progress.get(id)?.bytes ?? 0;
      recorder.start[i] = s.startS ?? NaN;
      recorder.complete(i, s.endS ?? 0, bytes);
      recorder.frozen[i] = s.frozenS;
      live.steps[i]!.state = "done";
      live.steps[i]!.bytes = bytes;
    } else if (s && s.state !== "pending") {
      changes.push({
        step: id,
        state: "pending",
        at: sec((Date.now() - record.startedAt) / 1000),
        detail: "resumed",
      });
    }
  }
  if (changes.length) await store.recordSteps(record.id, changes);
}

/**
 * Removes the temporary files of the fetches of run `run` that `keep` does not name: a cancelled
 * run leaves nothing half-written (an interrupted one keeps them, for resume to continue).
 */
export async function removePartials(
  runbook: Runbook,
  run: string,
  keep: (step: string) => boolean,
  env: Readonly<Record<string, string>> = Deno.env.toObject(),
): Promise<void> {
  let resolver: Resolver;
  try {
    resolver = new Resolver(runbook, run, env);
  } catch {
    return; // an env var the paths need is gone: nothing can be named
  }
  for (const s of runbook.steps) {
    if (s.kind === "fetch" && !keep(s.id)) await removeQuietly(resolver.tmp(s)).catch(() => {});
  }
}
