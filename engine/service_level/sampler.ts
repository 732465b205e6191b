/**
 * The service-level sampler of a live run (contract revision 4): each probe is sampled every
 * `every` from when its `after` step is done (or the first milestone is reached) until BTN, then
 * for `normal` more seconds; each sample goes to `onSample` as data, as it is taken (the engine
 * stores it).
 *
 * It never delays a step or the link: it runs on its own timers, never awaits the engine, and its
 * work is bounded. A probe has at most one sample in flight, and a timeout below `every`
 * (`schema.ts`, {@link TIMEOUT_SHARE}); a tick that finds the previous sample still going (or
 * {@link SamplerOptions.maxInFlight} samples in flight across probes) is skipped, never queued.
 * Ticks are on a fixed grid (`from + k·every`), so a slow sample does not shift the next ones;
 * samples are at least half a period apart.
 *
 * @module
 */
import type { Sample } from "./measures.ts";
import { type ProbeCall, type RunContext, takeSample } from "./probes.ts";
import type { ServiceLevelProbe } from "./schema.ts";

/** What the sampler needs. */
export interface SamplerOptions extends RunContext {
  readonly probes: readonly ServiceLevelProbe[];
  /** Seconds from the start of the run (the clock the report's times are on). */
  readonly now: () => number;
  /** Called with each sample as it is taken; must not throw (what it throws is dropped). */
  readonly onSample: (probe: string, sample: Sample) => void;
  /** The probe's target with its expressions resolved (default: as written). */
  readonly resolve?: (probe: ServiceLevelProbe) => string;
  /** Most samples in flight across all probes (default 8). */
  readonly maxInFlight?: number;
}

/** Counts, for tests and benchmarks. */
export interface SamplerStats {
  /** Samples taken (handed to `onSample`). */
  readonly taken: number;
  /** Ticks skipped because a sample was still in flight. */
  readonly skipped: number;
}

/** The sampler of a live run. */
export interface Sampler {
  /** Step `id` is done: probes with `after: id` start sampling. */
  stepDone(id: string): void;
  /** A milestone was reached: probes without `after` start sampling (at the first one). */
  milestoneReached(name: string): void;
  /** BTN now: each probe samples `normal` more seconds, then stops (one never started starts). */
  btn(): void;
  /** Stops every probe now (run failed, cancelled, engine stopping); in-flight samples abandoned. */
  stop(): Promise<void>;
  /** Settles when every probe has stopped: after BTN + `normal`, or {@link stop}. */
  readonly done: Promise<void>;
  /** When each probe started sampling (seconds from the start of the run), null if not yet. */
  from(name: string): number | null;
  stats(): SamplerStats;
}

interface Loop {
  readonly probe: ServiceLevelProbe;
  readonly call: ProbeCall;
  from: number | null;
  /** No sample starts at or after this time (seconds). */
  end: number;
  k: number;
  busy: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
  finished: boolean;
}

/**
 * Starts a sampler; nothing is sampled before {@link Sampler.stepDone} or
 * {@link Sampler.milestoneReached} start a probe.
 *
 * @example A probe that runs a command, sampled twice before BTN
 * ```ts
 * import assert from "node:assert/strict";
 * import { serviceLevelModel } from "./schema.ts";
 * import { startSampler } from "./sampler.ts";
 * const probes = serviceLevelModel([{ name: "n", run: "echo 7", after: "up", every: "100ms" }]);
 * const samples: number[] = [];
 * const t0 = performance.now();
 * const sampler = startSampler({
 *   probes, cwd: Deno.cwd(), env: { PATH: Deno.env.get("PATH") ?? "" },
 *   now: () => (performance.now() - t0) / 1000,
 *   onSample: (_name, s) => samples.push(s.value ?? NaN),
 * });
 * sampler.stepDone("up");
 * await new Promise((r) => setTimeout(r, 150));
 * sampler.btn();
 * await sampler.done;
 * assert(samples.length >= 1 && samples.every((v) => v === 7));
 * ```
 */
export function startSampler(options: SamplerOptions): Sampler {
  return new Loops(options);
}

/** The probes' loops, on their own timers. */
class Loops implements Sampler {
  readonly done: Promise<void>;
  readonly #o: SamplerOptions;
  readonly #maxInFlight: number;
  readonly #abort = new AbortController();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #loops: Loop[];
  #settle!: () => void;
  #taken = 0;
  #skipped = 0;
  #stopped = false;
  #milestone = false;

  constructor(options: SamplerOptions) {
    this.#o = options;
    this.#maxInFlight = options.maxInFlight ?? 8;
    this.done = new Promise<void>((resolve) => this.#settle = resolve);
    this.#loops = options.probes.map((probe): Loop => ({
      probe,
      call: {
        kind: probe.kind,
        target: options.resolve ? options.resolve(probe) : probe.target,
        timeoutMs: probe.timeout * 1000,
      },
      from: null,
      end: Infinity,
      k: 0,
      busy: false,
      timer: undefined,
      finished: false,
    }));
    this.#settleIfDone();
  }

  stepDone(id: string): void {
    for (const l of this.#loops) if (l.probe.after === id) this.#begin(l);
  }

  milestoneReached(_name: string): void {
    if (this.#milestone) return;
    this.#milestone = true;
    for (const l of this.#loops) if (l.probe.after === undefined) this.#begin(l);
  }

  btn(): void {
    const now = this.#o.now();
    for (const l of this.#loops) {
      if (l.finished) continue;
      l.end = Math.min(l.end, now + l.probe.normal);
      if (l.from === null) this.#begin(l);
      else if (now >= l.end) this.#finish(l); // a sample in flight still reports; `done` waits
      else if (l.timer !== undefined) {
        clearTimeout(l.timer);
        this.#schedule(l); // finishes now when no tick is due before the new end
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    for (const l of this.#loops) this.#finish(l);
    await Promise.all([...this.#inFlight]);
    this.#settle();
  }

  // Bound, so that `sampler.from` may be passed around (to the report, as `from`).
  readonly from = (name: string): number | null =>
    this.#loops.find((l) => l.probe.name === name)?.from ?? null;

  readonly stats = (): SamplerStats => ({ taken: this.#taken, skipped: this.#skipped });

  #settleIfDone(): void {
    if (this.#loops.every((l) => l.finished) && !this.#inFlight.size) this.#settle();
  }

  #finish(loop: Loop): void {
    if (loop.finished) return;
    loop.finished = true;
    clearTimeout(loop.timer);
    this.#settleIfDone();
  }

  #begin(loop: Loop): void {
    if (loop.from !== null || loop.finished || this.#stopped) return;
    loop.from = this.#o.now();
    loop.k = 0;
    this.#tick(loop);
  }

  #schedule(loop: Loop): void {
    if (loop.finished || this.#stopped || loop.from === null) return;
    const due = loop.from + loop.k * loop.probe.every;
    if (due >= loop.end) return this.#finish(loop);
    const wait = Math.max(0, (due - this.#o.now()) * 1000);
    loop.timer = setTimeout(() => this.#tick(loop), wait);
  }

  #tick(loop: Loop): void {
    loop.timer = undefined;
    if (loop.finished || this.#stopped) return;
    const now = this.#o.now(), every = loop.probe.every;
    if (now >= loop.end) return this.#finish(loop);
    // Onto the grid: the first tick due after now (ticks missed while late are skipped).
    const behind = Math.floor((now - loop.from!) / every) + 1;
    if (behind > loop.k + 1) this.#skipped += behind - loop.k - 1;
    loop.k = Math.max(loop.k + 1, behind);
    if (loop.busy || this.#inFlight.size >= this.#maxInFlight) this.#skipped++;
    else {
      this.#sample(loop, now);
      // A late sample: the next tick, if less than half a period away, is skipped too.
      if (loop.from! + loop.k * every - now < every / 2) {
        loop.k++;
        this.#skipped++;
      }
    }
    this.#schedule(loop);
  }

  #sample(loop: Loop, t: number): void {
    loop.busy = true;
    const job = takeSample(loop.call, this.#o, this.#abort.signal).then((got) => {
      if (this.#stopped && got.error === "stopped") return; // abandoned, not measured
      this.#taken++;
      const s: Sample = got.ok
        ? { t_s: t, value: got.value, ok: true }
        : { t_s: t, value: got.value, ok: false, error: got.error ?? "failed" };
      try {
        this.#o.onSample(loop.probe.name, s);
      } catch { /* the callback's problem, not the sampler's */ }
    });
    this.#inFlight.add(job);
    job.finally(() => {
      this.#inFlight.delete(job);
      loop.busy = false;
      this.#settleIfDone();
    });
  }
}
