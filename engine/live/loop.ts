/**
 * The live engine: the same scheduler as the simulator, driven by the real clock, real processes
 * and the real network.
 *
 * Each turn of the loop feeds the scheduler what happened (a step finished or failed, a source
 * is slower than its share, a person's command or a cancel from the store) and carries out what
 * it decides (start a step, hold one for a person, freeze, thaw, demand, share the link). It
 * decides nothing itself. Its parts, each with the state it owns:
 * - `executor.ts` starts steps and turns how they end into events;
 * - `bookkeeping.ts` records the turn's changes in one commit, progress and the report;
 * - `context.ts` holds what they share (graph, scheduler, recorder, live view, clock).
 *
 * @module
 */
import { type Estimates } from "../plan/graph.ts";
import { skipDetail } from "./live_run.ts";
import type { LiveRun } from "./live_run.ts";
import type { Report } from "../schedule/report.ts";
import type { Decision } from "../schedule/scheduler.ts";
import type { ProcessRecord } from "../store/types.ts";
import { approvalDetail, DONE_BY_HAND, interruptedDetail } from "../schedule/waits.ts";
import { missingFetches, stopProcesses } from "./state.ts";
import { RECORD_AFTER_MS } from "./procs.ts";
import type { Service } from "../../steps/types.ts";
import { watchRecorded } from "./services.ts";
import { type LiveOptions, type LiveState, liveState } from "./context.ts";
import { Executor, type Finished, Inbox } from "./executor.ts";
import { Bookkeeping } from "./bookkeeping.ts";
import { awaySteps, giveUp, LeaseKeeper } from "./lease.ts";

export type { LiveOptions } from "./context.ts";

/** How often the loop looks at the store, beats, samples the link and saves progress (ms). */
const TICK_MS = 200;
/** How often the link is sampled for what each source achieves (ms). */
const SAMPLE_MS = 1000;
/** How often, at most, the loop asks the store for commands (approve, cancel) from other processes. */
const COMMANDS_MS = 50;

/**
 * Runs (or resumes) a runbook for real and returns its report.
 *
 * Services started by `background` steps keep running when the run ends, except in a drill,
 * where the engine stops them.
 */
export async function runLive(
  options: LiveOptions,
): Promise<{ report: Report; live: LiveRun; measured: Estimates }> {
  const s = liveState(options);
  await using _hosts = s.hosts; // the hosts' shared connections end with the run
  const book = new Bookkeeping(s, options.resume === undefined);
  // The run's lease (`lease.ts`): held before a resumed run is touched, or once a new one exists.
  const lease = new LeaseKeeper(s.store, s.run, options.lease);
  let loop: Loop | undefined;
  try {
    if (options.resume) await lease.hold();
    const resumed = await book.begin();
    await lease.hold();
    await options.onStart?.();
    book.sl = await startServiceLevel(s); // samples from its own timers, never the loop's
    const inbox = new Inbox();
    const exec = new Executor(s, inbox, book.procs, resumed?.carried);
    loop = new Loop(s, book, exec, inbox, lease);
    await loop.run([...resumed?.decisions ?? [], ...s.scheduler.decide()]);
    const ended = await endRun(s, book, loop);
    await lease.release();
    return ended;
  } catch (e) {
    // A lost lease or store: the steps stop, nothing more is written (EngineStopped).
    throw await giveUp(lease, e, () => loop?.abandon());
  } finally {
    lease.stop();
    await book.sl?.stop();
  }
}

/** The run's service level; its module loaded only for a runbook that measures one. */
async function startServiceLevel(s: LiveState) {
  if (!s.runbook.serviceLevel.length) return undefined;
  return await (await import("./service_level.ts")).LiveServiceLevel.start(s);
}

/** The loop has ended: what the run leaves running, its report and final state. */
async function endRun(
  s: LiveState,
  book: Bookkeeping,
  loop: Loop,
): Promise<{ report: Report; live: LiveRun; measured: Estimates }> {
  await book.flushProcesses(); // before a drill stops what the store records
  // The service level's `normal` window after BTN, before a drill stops the services it probes.
  await book.sl?.finish(book, s.options.signal);
  if (s.runbook.drill) {
    await Promise.all(loop.services.map((svc) => svc.stop()));
    // Services a killed engine of this run had started, found again on resume; not those of an
    // engine on another machine (a standby took the run over): their numbers mean other
    // processes here.
    const away = loop.away;
    const keep = (p: ProcessRecord) => away.get(p.step) === p.pid;
    await stopProcesses(s.store, s.run, 5000, undefined, (h) => s.hosts.of(h), keep);
  }
  const { report, measured } = await book.close();
  return { report, live: s.live, measured };
}

/** The turns of one live run. */
class Loop {
  /** Services of done steps (a drill stops them at the end). */
  readonly services: Service[] = [];
  /** On resume: local processes recorded by an engine on another machine, by step (their pid). */
  #away = new Map<string, number>();
  readonly #s: LiveState;
  readonly #book: Bookkeeping;
  readonly #exec: Executor;
  readonly #inbox: Inbox;
  readonly #lease: LeaseKeeper;
  /** Steps the scheduler started this turn: they start once the turn is committed. */
  #starting: number[] = [];
  /** Steps that waited for a person (their start says "approved"). */
  readonly #waited = new Set<number>();
  #cancelRequested = false;
  #lastCommands = -Infinity;
  #lastSample: number;

  constructor(s: LiveState, book: Bookkeeping, exec: Executor, inbox: Inbox, lease: LeaseKeeper) {
    this.#s = s;
    this.#lease = lease;
    lease.onLost = () => inbox.wake(); // the next turn throws at once
    this.#book = book;
    this.#exec = exec;
    this.#inbox = inbox;
    this.#lastSample = s.clock.now();
  }

  /** What {@link awaySteps} found at the start, as step → pid (another machine's processes). */
  get away(): ReadonlyMap<string, number> {
    return this.#away;
  }

  /** Turns until every step has ended, starting with `first`, the scheduler's first decisions. */
  async run(first: readonly Decision[]): Promise<void> {
    const { options, scheduler, store, run, graph } = this.#s;
    const signal = options.signal;
    signal?.addEventListener("abort", () => this.#inbox.wake(), { once: true });
    this.#apply(first);
    // Services a killed engine of this run started are watched too (`thaw resume`).
    // (Not those another machine's engine started there: a standby cannot see them.)
    const away = options.resume ? await awaySteps(store, options.resume) : new Set<string>();
    if (away.size) {
      for (const p of await store.processes(run)) {
        if (away.has(p.step)) this.#away.set(p.step, p.pid);
      }
    }
    const isDone = (id: string) =>
      !away.has(id) && scheduler.state(graph.ids.indexOf(id)) === "done";
    const lost = (id: string, reason: string) =>
      this.#inbox.push({ type: "lost", i: graph.ids.indexOf(id), reason });
    const targetOf = (host: string | undefined) => this.#s.hosts.of(host);
    const unwatch = options.resume ? watchRecorded(store, run, isDone, lost, targetOf) : () => {};
    try {
      while (await this.#turn()) {
        // A cancel already taken must not keep the loop from sleeping: it would spin.
        if (this.#inbox.size === 0 && (!signal?.aborted || this.#cancelRequested)) {
          await this.#inbox.sleep(this.#book.procs.unrecorded ? RECORD_AFTER_MS : TICK_MS);
        }
      }
    } finally {
      unwatch();
    }
  }

  /** One turn; false once the run has ended. */
  async #turn(): Promise<boolean> {
    const { options, scheduler } = this.#s;
    this.#lease.check(); // a lost lease: nothing more is done
    if (options.signal?.aborted) this.#cancel();
    await this.#commands();
    for (const f of this.#inbox.take()) this.#finished(f);
    this.#sampleLink();
    this.#apply(scheduler.decide());
    await this.#book.commit();
    // Only now: a step starts once what it needs is durably `done` (committed just above).
    this.#lease.check();
    for (const i of this.#starting.splice(0)) this.#exec.start(i);
    if (scheduler.finished && this.#exec.busy === 0) return false;
    await this.#book.save(false);
    return true;
  }

  /**
   * The lease or the store is lost: stops every step still running (a done step's service stays
   * up) and waits, a bounded while, for them to end, recording nothing.
   */
  async abandon(): Promise<void> {
    for (let i = 0; i < this.#s.graph.n; i++) this.#exec.stop(i);
    for (let waited = 0; this.#exec.busy > 0 && waited < 10000; waited += 50) {
      for (const f of this.#inbox.take()) if (f.type !== "lost") this.#exec.settled(f.i);
      if (this.#exec.busy > 0) await this.#inbox.sleep(50);
    }
  }

  /** Takes the commands other processes left in the store (at most every `COMMANDS_MS`). */
  async #commands(): Promise<void> {
    if (performance.now() - this.#lastCommands < COMMANDS_MS) return;
    this.#lastCommands = performance.now();
    const { store, run, graph, scheduler } = this.#s;
    for (const c of await store.takeCommands(run)) {
      const i = c.step === null ? -1 : graph.ids.indexOf(c.step);
      if (c.kind === "cancel") this.#cancel();
      else if (i < 0) continue;
      else if (c.kind === "approve") scheduler.approve(i);
      else if (c.kind === "done") {
        // A person did its work: it is done as if it had run (a fetch keeps the bytes it had).
        if (scheduler.doneByHand(i)) {
          this.#waited.delete(i);
          this.#finished({ type: "done", i, bytes: this.#exec.carried(i), detail: DONE_BY_HAND });
        }
      }
    }
  }

  #cancel(): void {
    if (this.#cancelRequested) return;
    this.#cancelRequested = true;
    this.#s.scheduler.cancel();
  }

  /** Feeds the scheduler how step `f.i` ended. */
  #finished(f: Finished): void {
    const { scheduler, live, graph } = this.#s;
    if (f.type === "lost") {
      if (scheduler.state(f.i) !== "done") return;
      scheduler.lost(f.i);
      this.#book.change(f.i, "failed", f.reason);
      this.#book.procs.remove(graph.ids[f.i]!);
      return;
    }
    this.#exec.settled(f.i);
    const at = this.#s.now();
    if (f.type === "done") {
      if (f.service) this.services.push(f.service);
      scheduler.complete(f.i);
      if (scheduler.state(f.i) === "done") this.#book.done(f.i, at, f.bytes, f.detail);
      return;
    }
    const was = scheduler.state(f.i);
    scheduler.fail(f.i);
    if (was === "running") {
      this.#s.recorder.complete(f.i, at, live.steps[f.i]!.bytes);
      this.#book.change(f.i, "failed", f.reason, at);
    }
  }

  /** Feeds the scheduler what each source achieves (rate.ts judges; about once a second). */
  #sampleLink(): void {
    const { clock, live, scheduler, now } = this.#s;
    if (clock.now() - this.#lastSample < SAMPLE_MS) return;
    this.#lastSample = clock.now();
    for (const [i, s] of this.#exec.shaper.sample()) {
      live.steps[i]!.rate = s.achieved;
      // What the source can do, judged by rate.ts (slow, held back by the link, or not known).
      const o = { at: now(), bytes: s.total, waited: s.waitedTotal, share: s.share };
      const rate = this.#exec.rates.observe(i, o);
      if (rate !== undefined) scheduler.setRate(i, rate);
    }
  }

  /** Carries out the scheduler's decisions. */
  #apply(decisions: readonly Decision[]): void {
    const { recorder, live, runbook, graph, scheduler } = this.#s;
    const t = this.#s.now();
    recorder.record(decisions, t, (f) => live.steps[f]!.bytes);
    const book = this.#book;
    for (const d of decisions) {
      const i = d.step;
      switch (d.type) {
        case "start": {
          const detail = graph.skipped[i]
            ? skipDetail(runbook.steps[i]!.estimate)
            : this.#waited.delete(i)
            ? "approved"
            : "";
          book.change(i, "running", detail, t);
          this.#starting.push(i); // started once this turn's changes are committed
          break;
        }
        case "wait":
          this.#wait(i, d.reason, t);
          break;
        case "freeze":
          book.change(
            i,
            "frozen",
            `waits for ${missingFetches(graph, scheduler, i).join(", ")}`,
            t,
          );
          break;
        case "thaw":
          book.change(i, "pending", "thawed", t);
          break;
        case "demand":
          live.steps[i]!.demanded = true;
          break;
        case "share":
          this.#exec.shaper.setShare(i, d.rate);
          break;
        case "skip":
          book.change(i, "skipped", "a step it needs failed or the run stopped", t);
          break;
        case "cancel":
          this.#exec.stop(i);
          book.change(i, "cancelled", undefined, t);
          break;
      }
    }
  }

  /** Step `i` waits for a person: it shows as running, with what to do about it. */
  #wait(i: number, reason: "approval" | "interrupted", t: number): void {
    const { resolver, runbook, run } = this.#s;
    const step = runbook.steps[i]!;
    let detail: string;
    try {
      detail = reason === "interrupted"
        ? interruptedDetail(run, step.id)
        : approvalDetail(resolver.approval(step) ?? "", run, step.id);
    } catch (e) {
      // Its approval text cannot be made (an expression failed): it fails as it would running.
      this.#book.change(i, "running", "", t);
      this.#inbox.push({ type: "failed", i, reason: String((e as Error)?.message ?? e) });
      return;
    }
    this.#waited.add(i);
    this.#book.change(i, "running", detail, t);
  }
}

export { stopProcesses } from "./state.ts";
export { fillGaps } from "../plan/graph.ts";
export { LiveRun, type LiveStep } from "./live_run.ts";
