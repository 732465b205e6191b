/**
 * The service level of a live run (contract revision 4, "Service level"): the engine's side of
 * `engine/service_level/`. It starts the sampler with the run (targets resolved, `run` probes
 * quoted for the shell, in the runbook's environment with `THAW_RUN_ID`), tells it which steps
 * are done and which milestones reached, stores each sample as taken (in batches, never on the
 * loop's path: a sample never delays a step or the link), puts the service level in the report,
 * and at the end samples the `normal` window after BTN (before a drill stops its services).
 *
 * @module
 */
import { dirname } from "node:path";
import { parseTemplate } from "../runbook/expressions.ts";
import { runbookEnv } from "../runbook/env_check.ts";
import type { Report } from "../schedule/report.ts";
import {
  probeStarts,
  type Sample,
  type Sampler,
  sampleRow,
  samplesByProbe,
  type ServiceLevelProbe,
  type ServiceLevelReport,
  serviceLevelReport,
  type SlSampleRow,
  startSampler,
  withServiceLevel,
} from "../service_level/mod.ts";
import type { LiveState } from "./context.ts";

/** How often samples taken are written to the store (ms). */
export const SL_FLUSH_MS = 500;
/** At most about this many samples per probe in the report saved while the run goes on. */
export const SL_REPORT_SAMPLES = 2000;
/** Samples kept for the store while it cannot take them (the oldest are dropped beyond). */
const MAX_UNSTORED = 100_000;
/** How often the report and heartbeat are saved while the normal window is sampled (ms). */
const NORMAL_SAVE_MS = 1000;

/** A report with its service level. */
export type SlReport = Report & { service_level?: ServiceLevelReport };

/** What the end of the run needs of the bookkeeping: its report, and a save (heartbeat). */
export interface SlBook {
  report(): Report;
  save(force: boolean): Promise<void>;
}

/** The service level of one live run; none when the runbook has no `service_level`. */
export class LiveServiceLevel {
  readonly #s: LiveState;
  readonly #probes: readonly ServiceLevelProbe[];
  readonly #samples: Map<string, Sample[]>;
  readonly #sampler: Sampler;
  #seq: number;
  #unstored: SlSampleRow[] = [];
  #flushing: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setInterval> | undefined;
  #milestones = new Set<string>();

  private constructor(s: LiveState, stored: readonly SlSampleRow[]) {
    this.#s = s;
    this.#probes = s.runbook.serviceLevel;
    this.#samples = samplesByProbe(stored);
    this.#seq = stored.reduce((m, r) => Math.max(m, r.seq), 0);
    this.#sampler = startSampler({
      probes: this.#probes,
      cwd: s.runbook.dir,
      env: probeEnv(s),
      now: s.now,
      resolve: (p) => resolveTarget(s, p),
      onSample: (name, sample) => this.#taken(name, sample),
    });
    this.#timer = setInterval(() => void this.flush(), SL_FLUSH_MS);
  }

  /**
   * The service level of the run of `s` (after the bookkeeping began it): samples a resumed run
   * stored already are read back, and the probes of steps already done start at once.
   */
  static async start(s: LiveState): Promise<LiveServiceLevel | undefined> {
    if (!s.runbook.serviceLevel.length) return undefined;
    const stored = s.options.resume ? await s.store.slSamples(s.run) : [];
    const sl = new LiveServiceLevel(s, stored);
    for (let i = 0; i < s.graph.n; i++) {
      if (s.scheduler.state(i) === "done") sl.stepDone(i);
    }
    return sl;
  }

  /** Step `i` is done: probes `after` it start; a milestone all of whose steps are done too. */
  stepDone(i: number): void {
    const { runbook, scheduler } = this.#s;
    const step = runbook.steps[i]!;
    this.#sampler.stepDone(step.id);
    const m = step.milestone;
    if (m === undefined || this.#milestones.has(m)) return;
    const all = runbook.steps.every((t, j) => t.milestone !== m || scheduler.state(j) === "done");
    if (!all) return;
    this.#milestones.add(m);
    this.#sampler.milestoneReached(m);
  }

  /** `report` with the service level so far (`final`: every sample; else at most a few thousand). */
  decorate(report: Report, final: boolean): SlReport {
    const from = probeStarts(this.#probes, report.steps, report.milestones);
    const sl = serviceLevelReport({
      probes: this.#probes,
      samples: (name) => this.#samples.get(name) ?? [],
      from: (name) => from[name] ?? null,
      btn_s: report.btn_s,
      ...(final ? {} : { maxSamples: SL_REPORT_SAMPLES }),
    });
    return withServiceLevel(report, sl);
  }

  /**
   * The loop has ended. With BTN reached, the probes sample their `normal` window (the report and
   * heartbeat saved each second meanwhile); else, or when `signal` aborts, they stop at once.
   * Every sample is stored before this returns.
   */
  async finish(book: SlBook, signal?: AbortSignal): Promise<void> {
    try {
      if (book.report().btn_s === null || signal?.aborted) await this.#sampler.stop();
      else {
        this.#sampler.btn();
        const abort = () => void this.#sampler.stop();
        signal?.addEventListener("abort", abort, { once: true });
        try {
          let done = false;
          void this.#sampler.done.then(() => done = true);
          while (!done) {
            await Promise.race([
              this.#sampler.done,
              new Promise((r) => setTimeout(r, NORMAL_SAVE_MS)),
            ]);
            if (!done) await book.save(true);
          }
        } finally {
          signal?.removeEventListener("abort", abort);
        }
      }
    } finally {
      clearInterval(this.#timer);
      this.#timer = undefined;
      await this.flush();
    }
  }

  /** Stops sampling at once (the engine stops on an error). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#sampler.stop();
    await this.flush();
  }

  /** Writes the samples taken since the last flush (one write at a time; never throws). */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      if (!this.#unstored.length) return;
      const rows = this.#unstored;
      this.#unstored = [];
      try {
        await this.#s.store.addSlSamples(this.#s.run, rows);
      } catch {
        // Kept for the next flush: the store may be busy. The engine hears of a lost lease or a
        // store out of reach on its own writes.
        this.#unstored = [...rows, ...this.#unstored].slice(-MAX_UNSTORED);
      }
    });
    return this.#flushing;
  }

  #taken(name: string, sample: Sample): void {
    const list = this.#samples.get(name);
    if (list) list.push(sample);
    else this.#samples.set(name, [sample]);
    this.#unstored.push(sampleRow(++this.#seq, name, sample));
    if (this.#unstored.length > MAX_UNSTORED) this.#unstored.shift();
  }
}

/** The environment of `run` probes: the engine's, the runbook's `env`, and `THAW_RUN_ID`. */
function probeEnv(s: LiveState): Record<string, string> {
  const { resolver, runbook, run } = s;
  const env: Record<string, string> = {
    ...resolver.processEnv,
    ...runbookEnv(runbook, resolver.processEnv, resolver.value),
  };
  // The Deno that runs thaw is on PATH, as for steps.
  const denoDir = dirname(Deno.execPath());
  const path = env.PATH ?? "/usr/local/bin:/usr/bin:/bin";
  if (!path.split(":").includes(denoDir)) env.PATH = `${path}:${denoDir}`;
  env.THAW_RUN_ID = run;
  return env;
}

/** A probe's target with its expressions resolved: quoted for the shell in a `run` command. */
export function resolveTarget(s: Pick<LiveState, "resolver">, probe: ServiceLevelProbe): string {
  if (!probe.target.includes("${{")) return probe.target;
  const t = parseTemplate(probe.target);
  if ("problems" in t) return probe.target; // refused at load time
  return probe.kind === "run" ? s.resolver.command(t) : s.resolver.text(t);
}
