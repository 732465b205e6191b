/**
 * The live engine's executor: the one place a step is carried out. It starts a step the
 * scheduler started (through its kind's `execute`, whatever the kind; a drill-skipped step by
 * waiting its estimate), on its target (this machine, or its host's for a step with `on:`), and
 * turns how it ended into an event ({@link Finished}) in the loop's {@link Inbox}. It decides
 * nothing: the loop feeds the events to the scheduler.
 *
 * @module
 */
import { FETCH } from "../plan/graph.ts";
import type { Step } from "../runbook/model.ts";
import { RateEstimator } from "../schedule/rate.ts";
import { type ExecuteContext, stepKind } from "../../steps/kind.ts";
import type { Service, Spawned } from "../../steps/types.ts";
import type { LiveState } from "./context.ts";
import { HostLinks } from "./host_link.ts";
import { LinkShaper } from "./link.ts";
import type { ProcessBook } from "./procs.ts";
import { remoteLogFile, watchService } from "./services.ts";
import { lazyHooks } from "./lazy_volumes.ts";

const encoder = new TextEncoder();

/** What a step did, as the loop needs it (a kind's effect, with a word on how it ended). */
interface Effect {
  readonly ok: boolean;
  readonly reason?: string;
  /** Bytes it left at its destination (a fetch). */
  readonly bytes?: number;
  /** A process group that outlives it (a background service). */
  readonly service?: Service | undefined;
  /** How it ended, when there is something to say (it replaced a file). */
  readonly detail?: string | undefined;
}

/** How a step ended, as an event for the loop. */
export type Finished =
  | { type: "done"; i: number; bytes: number; service?: Service | undefined; detail?: string }
  | { type: "failed"; i: number; reason: string }
  /** A done step's background service exited: the step fails after all. */
  | { type: "lost"; i: number; reason: string };

/** The events the loop has yet to take, and a way to sleep until one comes. */
export class Inbox {
  #queue: Finished[] = [];
  #wake: (() => void) | null = null;

  /** Adds an event and wakes the loop. */
  push(f: Finished): void {
    this.#queue.push(f);
    this.wake();
  }

  /** Wakes the loop if it sleeps. */
  wake(): void {
    this.#wake?.();
  }

  /** How many events wait. */
  get size(): number {
    return this.#queue.length;
  }

  /** Takes every event that waits. */
  take(): Finished[] {
    return this.#queue.splice(0);
  }

  /** Sleeps until {@link wake} or `ms` pass. */
  async sleep(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.#wake = null;
  }
}

/** Carries out the steps of one live run. */
export class Executor {
  /** Paces the fetches that cross the shared link to their shares. */
  readonly shaper: LinkShaper;
  /** What each source can do, from what the shaper samples. */
  readonly rates: RateEstimator;
  readonly #s: LiveState;
  readonly #inbox: Inbox;
  readonly #procs: ProcessBook;
  /** Per fetch: bytes earlier attempts moved that this one does not continue from (resume). */
  readonly #carried: Float64Array | undefined;
  readonly #controllers = new Map<number, AbortController>();
  /** Paces the fetches landing on a host with a `bandwidth` of its own to it, together. */
  readonly #hostLinks: HostLinks;

  /** An executor for the run of `s`; events go to `inbox`, started processes to `procs`. */
  constructor(s: LiveState, inbox: Inbox, procs: ProcessBook, carried?: Float64Array) {
    this.#s = s;
    this.#inbox = inbox;
    this.#procs = procs;
    this.#carried = carried;
    this.shaper = new LinkShaper(s.clock);
    this.#hostLinks = new HostLinks(s.clock, s.runbook.hosts);
    this.rates = new RateEstimator(s.graph.bandwidth, s.graph.rate);
  }

  /** Steps started whose end the loop has not taken yet. */
  get busy(): number {
    return this.#controllers.size;
  }

  /** Bytes earlier attempts of fetch `i` moved that the next one does not continue from. */
  carried(i: number): number {
    return this.#carried?.[i] ?? 0;
  }

  /** Starts step `i`; how it ends comes to the inbox. */
  start(i: number): void {
    const ac = new AbortController();
    this.#controllers.set(i, ac);
    this.#execute(i, ac.signal).then(
      (f) => this.#inbox.push(f),
      (e) => this.#inbox.push({ type: "failed", i, reason: String(e?.message ?? e) }),
    );
  }

  /** Stops step `i` (cancelled). */
  stop(i: number): void {
    this.#controllers.get(i)?.abort(new Error("cancelled"));
  }

  /** The loop took the end of step `i`. */
  settled(i: number): void {
    this.#controllers.delete(i);
  }

  async #execute(i: number, signal: AbortSignal): Promise<Finished> {
    const { graph, runbook, clock, recorder, now } = this.#s;
    const step = runbook.steps[i]!;
    if (graph.skipped[i]) {
      // A drill never runs it: it stands in for itself with its estimate, as in simulation.
      await clock.sleep((step.estimate ?? 0) * 1000, signal).catch(() => {});
      return { type: "done", i, bytes: 0 };
    }
    const { shaper, rates } = this;
    const crosses = graph.kind[i] === FETCH; // its bytes cross the link: paced, measured
    if (crosses) rates.begin(i, now(), shaper.waited(i)); // its source is asked now
    const effect = await this.#effect(step, this.#context(i, step, signal));
    if (crosses) {
      recorder.moving[i] = rates.end(i, now(), shaper.waited(i));
      // A lazy fetch's bytes cross the link outside the shaper: its hooks count them (fetched).
      recorder.crossed[i] = Math.max(shaper.total(i), recorder.crossed[i] || 0);
      shaper.release(i);
    }
    return this.#ended(i, step, effect);
  }

  /**
   * The one call that carries a step out (its kind's `execute`), and what it did as the loop
   * needs it: done or why not, the bytes it left, a service to watch.
   */
  async #effect(step: Step, ctx: ExecuteContext): Promise<Effect> {
    const { resolver } = this.#s;
    const kind = stepKind(step.kind);
    const effect = await kind.execute(resolver.spec(step), ctx);
    if (!effect.ok) return { ok: false, reason: effect.reason ?? "failed" };
    // A fetch that replaced what was at its destination says so in the report.
    const replaced = (effect as { replaced?: string }).replaced;
    const to = replaced ? kind.destination?.(step, resolver) : undefined;
    const where = step.on !== undefined && to !== undefined ? `${step.on}:${to}` : to;
    const detail = replaced ? `replaced the ${replaced} that was at ${where}` : undefined;
    return {
      ok: true,
      bytes: effect.bytes ?? 0,
      ...(effect.service ? { service: effect.service } : {}),
      ...(detail ? { detail } : {}),
    };
  }

  /**
   * What the step is given: the common context (its target, the directory and environment its
   * commands run in, a log line to its log), and what its kind uses of the engine.
   */
  #context(i: number, step: Step, signal: AbortSignal): ExecuteContext {
    const { resolver, runbook, clock, options, live, graph, hosts, run } = this.#s;
    const out = options.output?.(step.id);
    const log = options.logFile?.(step.id);
    const cwd = resolver.cwd(step);
    const ctx: ExecuteContext = {
      signal,
      clock,
      env: resolver.env(step),
      ...(cwd !== undefined ? { cwd } : {}),
      ...(step.on !== undefined ? { target: hosts.of(step.on) } : {}),
      log: (line: string) => out?.(encoder.encode(line + "\n")),
      onSpawn: (p: Spawned) => this.#procs.add({ step: step.id, pid: p.pid, pgid: p.pgid }),
      drill: runbook.drill,
      ...(out ? { output: out } : {}),
      // A service on a host appends to a log file there (it outlives thaw and the connection).
      ...(log !== undefined
        ? { logFile: step.on !== undefined ? remoteLogFile(run, step.id) : log }
        : {}),
    };
    if (graph.kind[i] !== FETCH) return ctx;
    const carried = this.carried(i), ls = live.steps[i]!;
    const local = graph.local[i] === 1; // its kind's figures say it crosses no link
    const shared = this.shaper.link(i, local); // `local`: counted, never paced
    return {
      ...ctx,
      link: this.#hostLinks.wrap(step.on, local, shared),
      progress: (bytes: number, total?: number) => {
        ls.bytes = carried + bytes;
        if (total !== undefined) ls.total = total;
      },
      // A lazy fetch (revision 5) reports attach and demand, and streams at its share.
      ...(graph.lazy?.[i]
        ? { lazy: lazyHooks(this.#s, i, this.shaper, () => this.#inbox.wake()) }
        : {}),
    };
  }

  /** How step `i` ended, as an event; a service it left is watched, its process records kept. */
  #ended(i: number, step: Step, effect: Effect): Finished {
    const { store, run, options } = this.#s;
    // A service keeps its record: a resumed engine must know it is there.
    if (!effect.ok || !effect.service) this.#procs.remove(step.id);
    else {
      this.#procs.drop(step.id); // recorded with its log by watchService
      const lost = (reason: string) => this.#inbox.push({ type: "lost", i, reason });
      const local = options.logFile?.(step.id);
      const log = local !== undefined && step.on !== undefined
        ? remoteLogFile(run, step.id)
        : local;
      watchService(store, run, { step: step.id, host: step.on, log }, effect.service, lost);
    }
    if (!effect.ok) return { type: "failed", i, reason: effect.reason ?? "failed" };
    const bytes = this.carried(i) + (effect.bytes ?? 0);
    return { type: "done", i, bytes, service: effect.service, detail: effect.detail };
  }
}
