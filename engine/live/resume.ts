/**
 * Resuming a live run (`thaw resume RUN_ID [--from STEP]`): restoring what a killed or failed
 * engine had done, so that the new engine carries on and its report keeps each step's history
 * true (contract revision 2, "Resume and rerun").
 *
 * - Done steps stay done, with their times, bytes and demand as recorded; `--from STEP` runs STEP
 *   and everything downstream of it again (on a finished run too).
 * - A run step that was running when its engine died runs again only if it is `idempotent`;
 *   otherwise it waits for a person (scheduler state: `../schedule/approvals.ts`).
 * - A fetch that was demanded stays demanded; bytes count what crossed the link in every attempt
 *   (the bytes of an attempt that the next one cannot continue from are carried over); a step's
 *   start is its first start in the run, and times count from the run's first start.
 *
 * @module
 */
import { FETCH, type Graph } from "../plan/graph.ts";
import type { LiveRun } from "./live_run.ts";
import { stopProcesses } from "./state.ts";
import { stopStrays } from "./strays.ts";
import { hostname } from "node:os";
import { awaySteps } from "./lease.ts";
import type { Runbook } from "../runbook/model.ts";
import type { Recorder } from "../schedule/recorder.ts";
import { sec } from "../schedule/report.ts";
import type { Resolver } from "../runbook/resolve.ts";
import type { Decision, Scheduler } from "../schedule/scheduler.ts";
import type { RunRecord, StepChange, StepRecord, Store } from "../store/types.ts";
import { APPROVAL_WAIT } from "../schedule/waits.ts";
import type { Target } from "../../steps/kind.ts";

/** What a resumed engine starts from. */
export interface Resumed {
  /** The scheduler's first decisions, without those the restored state made stale. */
  readonly decisions: Decision[];
  /** Run steps that were running when the engine died and now wait for a person. */
  readonly interrupted: number[];
  /** Per fetch: bytes earlier attempts moved that the next attempt does not continue from. */
  readonly carried: Float64Array;
}

/** How to resume. */
export interface ResumeOptions {
  readonly runbook: Runbook;
  readonly resolver: Resolver;
  /** `--from STEP`: run this step and everything downstream of it again. */
  readonly from?: string | undefined;
  /** The target of a host (`on:`): its services and partial fetches are there. */
  readonly targetOf?: (host: string) => Target | undefined;
}

/**
 * The steps `--from step` runs again: the step and every step downstream of it, as a mask.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildGraph, parseRunbook } from "../../mod.ts";
 * import { downstream } from "./resume.ts";
 * const g = buildGraph(parseRunbook(`runbook: 1
 * name: x
 * steps:
 *   - { id: a, run: "true", estimate: 1s }
 *   - { id: b, needs: [a], run: "true", estimate: 1s }
 *   - { id: c, run: "true", estimate: 1s }
 * `, "x.yaml"));
 * assert.deepEqual([...downstream(g, 0)], [1, 1, 0]);
 * ```
 */
export function downstream(graph: Graph, step: number): Uint8Array {
  const mask = new Uint8Array(graph.n);
  mask[step] = 1;
  const stack = [step];
  while (stack.length) {
    const j = stack.pop()!;
    for (let k = graph.depStart[j]!; k < graph.depStart[j + 1]!; k++) {
      const d = graph.depList[k]!;
      if (!mask[d]) {
        mask[d] = 1;
        stack.push(d);
      }
    }
  }
  return mask;
}

/**
 * Restores what earlier engines of `record` had done into a fresh scheduler, recorder and live
 * view, stops what their unfinished steps left running, and records the steps that run again.
 */
export async function resumeState(
  record: RunRecord,
  store: Store,
  graph: Graph,
  scheduler: Scheduler,
  recorder: Recorder,
  live: LiveRun,
  options: ResumeOptions,
): Promise<Resumed> {
  const steps = new Map((await store.steps(record.id)).map((s) => [s.step, s]));
  const from = options.from === undefined ? -1 : graph.ids.indexOf(options.from);
  const rerun = from < 0 ? new Uint8Array(graph.n) : downstream(graph, from);
  const keep = new Set<string>();
  for (let i = 0; i < graph.n; i++) {
    if (!rerun[i] && steps.get(graph.ids[i]!)?.state === "done") keep.add(graph.ids[i]!);
  }
  // Stop whatever the killed engine's unfinished steps left running; services of done steps
  // stay up (they are the recovered service), unless they are to run again.
  const away = await awaySteps(store, record); // another machine's: out of reach
  await stopProcesses(store, record.id, 2000, (s) => keep.has(s) || away.has(s), options.targetOf);
  // And what it started in its last milliseconds, before the commit that records a process: only
  // where it ran here (another machine's, or another UTS namespace's, stops its own when fenced).
  if (record.host === hostname()) await stopStrays(record.id, 2000, (s) => keep.has(s));
  const progress = new Map((await store.progress(record.id)).map((p) => [p.step, p]));
  const firstStart = new Map<string, number>();
  for (const e of await store.stepEvents(record.id)) {
    if (e.state === "running" && !firstStart.has(e.step)) firstStart.set(e.step, e.at);
  }
  const carried = new Float64Array(graph.n);
  const interrupted: number[] = [];
  const changes: StepChange[] = [];
  const at = sec((Date.now() - record.startedAt) / 1000);
  for (const i of graph.order) {
    const id = graph.ids[i]!;
    const s = steps.get(id);
    const p = progress.get(id);
    if (graph.kind[i] === FETCH && p?.demanded) {
      // A demanded fetch stays demanded, with what had come before the demand.
      recorder.demanded[i] = 1;
      recorder.prefetched[i] = p.prefetched;
      live.steps[i]!.demanded = true;
    }
    if (s?.state === "done" && !rerun[i]) {
      scheduler.complete(i);
      const bytes = p?.bytes ?? 0;
      recorder.start[i] = firstStart.get(id) ?? s.startS ?? NaN;
      recorder.frozen[i] = s.frozenS;
      recorder.complete(i, s.endS ?? 0, bytes);
      live.steps[i]!.state = "done";
      live.steps[i]!.bytes = bytes;
      continue;
    }
    if (!rerun[i]) {
      // Carrying on: the step's history goes on from its first start.
      recorder.start[i] = firstStart.get(id) ?? NaN;
      recorder.frozen[i] = s?.frozenS ?? 0;
    }
    if (graph.kind[i] === FETCH && p) {
      const kept = rerun[i] ? 0 : await continuable(options, i);
      carried[i] = Math.max(0, p.bytes - kept);
      live.steps[i]!.bytes = recorder.bytes[i] = carried[i]! + kept;
    }
    if (s && isInterrupted(options.runbook, graph, i, s) && !rerun[i]) {
      interrupted.push(i);
      scheduler.interrupted(i); // when reached, it waits for a person
    }
    if (s && (s.state !== "pending" || rerun[i])) {
      changes.push({
        step: id,
        state: "pending",
        at,
        detail: rerun[i] ? "to run again" : "resumed",
      });
    }
  }
  if (changes.length) await store.recordSteps(record.id, changes);
  return { decisions: fresh(scheduler), interrupted, carried };
}

/** Whether step `i` was running when its engine died and may not simply run again. */
function isInterrupted(runbook: Runbook, graph: Graph, i: number, s: StepRecord): boolean {
  const step = runbook.steps[i]!;
  if (s.state !== "running" || step.kind !== "run" || step.idempotent || graph.skipped[i]) {
    return false;
  }
  // A step still waiting for its approval had not started its command: it waits for it again.
  return !(s.detail ?? "").startsWith(APPROVAL_WAIT);
}

/** Bytes under fetch `i`'s temporary name that its next attempt continues after. */
async function continuable(options: ResumeOptions, i: number): Promise<number> {
  const step = options.runbook.steps[i]!;
  // `run:` sources start over (their partial data is removed), so do directory copies.
  if (step.kind !== "fetch" || step.from[0]?.kind === "run") return 0;
  try {
    if (step.on !== undefined) {
      // A fetch on a host continues after what it had landed there.
      const info = await options.targetOf?.(step.on)?.stat(options.resolver.tmp(step));
      return info?.type === "file" ? info.size : 0;
    }
    const info = await Deno.lstat(options.resolver.tmp(step));
    return info.isFile ? info.size : 0;
  } catch {
    return 0;
  }
}

/**
 * The scheduler's first decisions after the restore. Its constructor froze steps before it knew
 * which fetches were home: a step frozen and thawed in the same breath never waited, and a fetch
 * already home is not demanded anew (its recorded demand stands).
 */
function fresh(scheduler: Scheduler): Decision[] {
  const decisions = scheduler.decide();
  const thawed = new Set(decisions.filter((d) => d.type === "thaw").map((d) => d.step));
  return decisions.filter((d) => {
    if (d.type === "freeze" || d.type === "thaw") return !thawed.has(d.step);
    if (d.type === "demand") return scheduler.state(d.step) !== "done";
    return true;
  });
}
