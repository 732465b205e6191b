/**
 * The live engine's helpers around its loop: estimates for ranking, what a run measured, and
 * cleaning up what a run leaves behind (process groups, partial fetches). Resuming is in
 * `resume.ts`.
 *
 * @module
 */
import { buildGraph, type Estimates, FETCH, fillGaps, type Graph } from "../plan/graph.ts";
import { lowerBounds } from "../plan/graph.ts";
import type { Runbook } from "../runbook/model.ts";
import type { Recorder } from "../schedule/recorder.ts";
import { Resolver } from "../runbook/resolve.ts";
import type { Scheduler } from "../schedule/scheduler.ts";
import type { FetchProgress, ProcessRecord, Store } from "../store/types.ts";
import type { LiveRun } from "./live_run.ts";
import { removeQuietly } from "../../steps/fetch/atomic.ts";
import { killGroup } from "../../steps/process/process.ts";
import type { Target } from "../../steps/kind.ts";

/**
 * What a run measured, over `base`'s durations and sizes: each finished run step's duration and
 * each fetch's bytes and rate, and the bytes of each fetch that did not cross the link in this
 * engine (`home`: cloned, or carried over from a killed engine), for the lower bounds.
 *
 * A fetch's achieved rate is its bytes over the seconds it was moving (`recorder.moving`, else its
 * start to its end). It is the measured rate where the link has no limit and the runbook gives
 * none; elsewhere the rate is never below it: a source the run proved faster than the plan said
 * must not make a bound that the run itself beat.
 */
export function measuredEstimates(
  runbook: Runbook,
  graph: Graph,
  recorder: Recorder,
  base: Estimates = {},
): Required<Estimates> & { home: Float64Array } {
  const duration = new Map(base.duration), size = new Map(base.size);
  const rate = new Map(base.rate);
  const home = new Float64Array(graph.n);
  for (let i = 0; i < graph.n; i++) {
    const start = recorder.start[i]!, end = recorder.end[i]!;
    if (Number.isNaN(start) || Number.isNaN(end)) continue;
    const id = graph.ids[i]!, step = runbook.steps[i]!;
    if (graph.kind[i] !== FETCH) {
      if (!graph.skipped[i]) duration.set(id, end - start);
      continue;
    }
    const bytes = recorder.bytes[i]!, crossed = recorder.crossed[i]!;
    size.set(id, bytes);
    home[i] = Number.isNaN(crossed) ? bytes : Math.max(0, bytes - crossed);
    const moving = Number.isNaN(recorder.moving[i]!) ? end - start : recorder.moving[i]!;
    if (step.kind !== "fetch" || !(bytes > 0)) continue;
    const achieved = moving > 0 ? bytes / moving : Infinity;
    const unknown = !Number.isFinite(runbook.bandwidth) && step.rate === undefined;
    rate.set(id, unknown ? achieved : Math.max(graph.rate[i]!, achieved));
  }
  return { duration, size, rate, home };
}

/**
 * The lower bounds of TTR and BTN from what the run measured so far (the estimates for the rest):
 * once TTR (or BTN) is reached, every step it waited for is measured, so no report can show a
 * TTR or BTN below its bound, however wrong the plan's sizes, rates or durations were.
 */
export function measuredBound(
  runbook: Runbook,
  graph: Graph,
  recorder: Recorder,
  base: Estimates = {},
  measured: ReturnType<typeof measuredEstimates> = measuredEstimates(
    runbook,
    graph,
    recorder,
    base,
  ),
): { readonly ttr: number; readonly btn: number } {
  const { duration, size, rate, home } = measured;
  const estimates = fillGaps(runbook, { ...base, duration, size, rate });
  // `home`: what did not cross the link here (cloned, or moved by a killed engine).
  return lowerBounds(buildGraph(runbook, estimates), home);
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
 * Stops the process groups the store records for run `run` (all but those of the steps `keep`
 * says to leave running, and the records `keepProcess` names) and forgets them; a group on a host
 * through `targetOf(host)` (one with no target is left recorded).
 */
export async function stopProcesses(
  store: Store,
  run: string,
  graceMs: number,
  keep: (step: string) => boolean = () => false,
  targetOf?: (host: string) => Target | undefined,
  keepProcess: (p: ProcessRecord) => boolean = () => false,
): Promise<void> {
  for (const p of await store.processes(run)) {
    if (keep(p.step) || keepProcess(p)) continue;
    if (p.host === undefined) await killGroup(p.pgid, graceMs).catch(() => {});
    else {
      // On its host (`on:`), never here: the same number is another process on this machine.
      const target = targetOf?.(p.host);
      if (target === undefined) continue; // kept: a later engine that can reach it stops it
      await target.killGroup(p.pgid, graceMs).catch(() => {});
    }
    await store.removeProcess(run, p.step);
  }
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
  targetOf?: (host: string) => Target | undefined,
): Promise<void> {
  let resolver: Resolver;
  try {
    resolver = new Resolver(runbook, run, env);
  } catch {
    return; // an env var the paths need is gone: nothing can be named
  }
  for (const s of runbook.steps) {
    if (s.kind !== "fetch" || keep(s.id)) continue;
    // A fetch on a host left its partial data there (`on:`).
    if (s.on !== undefined) await targetOf?.(s.on)?.remove(resolver.tmp(s)).catch(() => {});
    else await removeQuietly(resolver.tmp(s)).catch(() => {});
  }
}

/** The progress of fetch `i` as the store keeps it (`at`: wall-clock ms). */
export function progressRow(
  live: LiveRun,
  recorder: Recorder,
  i: number,
  at = Date.now(),
): FetchProgress {
  const s = live.steps[i]!;
  return {
    step: s.id,
    bytes: s.bytes,
    total: s.total,
    prefetched: s.demanded ? recorder.prefetched[i]! : s.bytes,
    demanded: s.demanded,
    source: 0,
    at,
    // Once done: the seconds it moved, what history learns its source's rate over.
    ...(Number.isNaN(recorder.moving[i]!) ? {} : { moving: recorder.moving[i]! }),
  };
}
