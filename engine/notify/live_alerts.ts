/**
 * `notify:` wired into one live run of the CLI (`thaw run`, a live `thaw drill`, `thaw resume`):
 * the webhooks resolved before anything runs (a bad address is refused, exit 2), a
 * {@linkcode Notifier} fed from the engine's `onChange` (step changes every turn; where the
 * objectives stand, with a prediction made each time the report is saved, about once a second),
 * the end told, the last notifications given a moment, and what failed said on stderr. The
 * sender's lines go to stderr and to the run's `notify.log`. Simulated runs send nothing.
 *
 * @module
 */
import { join } from "node:path";
import type { Estimates } from "../plan/graph.ts";
import type { LiveRun } from "../live/live_run.ts";
import type { Runbook, Strategy } from "../runbook/model.ts";
import { Resolver } from "../runbook/resolve.ts";
import type { Report } from "../schedule/report.ts";
import { STORE_FILE_MODE } from "../store/sqlite_file.ts";
import type { StepChange } from "../store/types.ts";
import type { Predicted, RunInfo } from "./happenings.ts";
import { Notifier } from "./notifier.ts";
import { predictObjectives } from "./predicted.ts";
import { type ResolvedWebhook, resolveWebhooks } from "./resolve.ts";
import { WebhookSender, type WebhookStats } from "./sender.ts";

/** How long the end of a run waits for its last notifications, ms. */
export const FLUSH_MS = 10_000;

/** What {@linkcode LiveAlerts.open} needs of the run. */
export interface LiveAlertsOptions {
  readonly runbook: Runbook;
  readonly run: string;
  /** The run's log directory (`notify.log` is written there once it exists). */
  readonly logDir: string;
  /** Where the sender's lines go (besides `notify.log`): the CLI's stderr. */
  readonly stderr: (text: string) => void;
  /** The engine's environment (default: this process's). */
  readonly env?: Readonly<Record<string, string>>;
  /** A resumed run's step changes so far: not told again. */
  readonly history?: readonly StepChange[];
  /** The address of the run's page, when thaw serves one. */
  readonly page?: string | undefined;
  /** For predictions: the run's strategy and the history's estimates. */
  readonly strategy?: Strategy | undefined;
  readonly estimates?: Estimates;
  /** Backoff of the sender, ms (tests). */
  readonly backoffMs?: number;
}

const NOTHING = { ttr_s: null, btn_s: null, milestones: {} };

/** The objectives of `runbook` as a report gives them (seconds). */
function objectivesOf(runbook: Runbook): Report["objectives"] {
  const o = runbook.objectives;
  return {
    ...(o.rto === undefined ? {} : { rto_s: o.rto }),
    ...(o.btn === undefined ? {} : { btn_s: o.btn }),
    milestones: { ...o.milestones },
  };
}

/**
 * The alerts of one live run; see the module's comment. Every method but
 * {@linkcode LiveAlerts.open} returns at once or within {@linkcode FLUSH_MS}, and never throws.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunbook } from "../runbook/load.ts";
 * import { LiveAlerts } from "./live_alerts.ts";
 * const rb = parseRunbook("runbook: 1\nname: x\nsteps:\n  - { id: s, run: 'true' }\n", "x.yaml");
 * const options = { runbook: rb, run: "R1", logDir: "/tmp", stderr: () => {} };
 * assert.equal(LiveAlerts.open(options), undefined); // no notify: nothing to do
 * ```
 */
export class LiveAlerts {
  readonly #options: LiveAlertsOptions;
  readonly sender: WebhookSender;
  #notifier: Notifier | undefined;
  #log: Deno.FsFile | undefined;
  #seen: Report | null = null;
  #predicted: Predicted | null = null;
  /** Whether a prediction can be told: a webhook takes `objective` and there are objectives. */
  readonly #predicts: boolean;

  /**
   * The alerts of the run, or undefined when its runbook has no `notify`.
   *
   * @throws {RunbookErrors} when an address resolves to something that is not an http(s) URL.
   */
  static open(options: LiveAlertsOptions): LiveAlerts | undefined {
    const rb = options.runbook;
    if (!rb.notify.length) return undefined;
    const env = options.env ?? Deno.env.toObject();
    const hooks = resolveWebhooks(rb, rb.notify, new Resolver(rb, options.run, env).value);
    return new LiveAlerts(options, hooks);
  }

  private constructor(options: LiveAlertsOptions, hooks: readonly ResolvedWebhook[]) {
    this.#options = options;
    const o = options.runbook.objectives;
    this.#predicts = hooks.some((h) => h.on.has("objective")) &&
      (o.rto !== undefined || o.btn !== undefined || Object.keys(o.milestones).length > 0);
    this.sender = new WebhookSender(hooks, {
      log: (line) => this.#line(line),
      ...(options.backoffMs === undefined ? {} : { backoffMs: options.backoffMs }),
    });
  }

  /** The engine's turn: its step changes, and where the objectives stand. */
  onChange(live: LiveRun, changes: readonly StepChange[]): void {
    try {
      const notifier = this.#notifierFor(live);
      if (changes.length) notifier.steps(changes);
      if (live.report && live.report !== this.#seen && this.#predicts) {
        this.#seen = live.report;
        const { strategy, estimates } = this.#options;
        this.#predicted = predictObjectives(this.#options.runbook, live.report, live.elapsed, {
          ...(strategy ? { strategy } : {}),
          ...(estimates ? { estimates } : {}),
        });
      }
      notifier.standing(live.elapsed, live.report ?? NOTHING, this.#predicted);
    } catch (e) {
      this.#line(`thaw: notify: internal error, nothing sent: ${(e as Error)?.message ?? e}`);
    }
  }

  /**
   * The run ended with `report` after `elapsed` s: tells the end, waits for the last
   * notifications (at most {@linkcode FLUSH_MS}), then says on stderr what was not delivered.
   */
  async end(report: Report, elapsed: number, live?: LiveRun): Promise<void> {
    try {
      const notifier = this.#notifier ?? (live ? this.#notifierFor(live) : undefined);
      notifier?.end(report, elapsed);
      await this.sender.flush(FLUSH_MS);
      for (const line of this.sender.summary()) this.#line(line);
    } catch (e) {
      this.#line(`thaw: notify: internal error at the end: ${(e as Error)?.message ?? e}`);
    }
  }

  /** What each webhook was sent. */
  stats(): WebhookStats[] {
    return this.sender.stats();
  }

  /** Stops sending (what is queued is dropped and said) and closes `notify.log`. */
  async close(): Promise<void> {
    await this.sender.close();
    this.#log?.close();
    this.#log = undefined;
  }

  #notifierFor(live: LiveRun): Notifier {
    if (this.#notifier) return this.#notifier;
    const rb = this.#options.runbook;
    const info: RunInfo = {
      run: this.#options.run,
      runbook: rb.name,
      drill: rb.drill,
      startedAt: live.startedAt,
      steps: rb.steps,
      objectives: objectivesOf(rb),
      ...(this.#options.page ? { page: this.#options.page } : {}),
    };
    return this.#notifier = new Notifier(info, this.sender, this.#options.history ?? []);
  }

  /** A sender line: to stderr, and to `notify.log` once the run's log directory exists. */
  #line(line: string): void {
    this.#options.stderr(line + "\n");
    try {
      this.#log ??= Deno.openSync(join(this.#options.logDir, "notify.log"), {
        create: true,
        append: true,
        mode: STORE_FILE_MODE,
      });
      this.#log.writeSync(new TextEncoder().encode(`${new Date().toISOString()} ${line}\n`));
    } catch {
      // No log directory yet (the run did not start): stderr has it.
    }
  }
}
