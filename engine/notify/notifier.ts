/**
 * The one object the live engine holds for `notify`: it turns what the engine sees (step changes,
 * the report with a prediction, the end) into happenings, each told once, and hands their
 * payloads to the sender. Every method returns at once and never throws: a webhook never holds
 * up or fails a run.
 *
 * @module
 */
import type { Report } from "../schedule/report.ts";
import type { StepChange } from "../store/types.ts";
import { type Happening, NotifyWatch, type Predicted, type RunInfo } from "./happenings.ts";
import { type Payload, payloadOf } from "./payload.ts";
import type { WebhookSender } from "./sender.ts";

/**
 * Tells a run's webhooks what happens in it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Notifier } from "./notifier.ts";
 * import { WebhookSender } from "./sender.ts";
 * const sender = new WebhookSender([]);
 * const notifier = new Notifier({
 *   run: "R1", runbook: "shop", drill: true, startedAt: 0,
 *   steps: [{ id: "web", milestone: "service" }], objectives: { milestones: {} },
 * }, sender);
 * const told = notifier.steps([{ step: "web", state: "done", at: 3 }]);
 * assert.equal(told[0]!.text, "[drill] shop: milestone service reached at 3s. Run R1, 00:00:03 UTC");
 * await sender.close();
 * ```
 */
export class Notifier {
  readonly watch: NotifyWatch;
  readonly sender: WebhookSender;

  /** Follows the run `info` (`history`: a resumed run's changes so far, not told again). */
  constructor(info: RunInfo, sender: WebhookSender, history: readonly StepChange[] = []) {
    this.watch = new NotifyWatch(info, history);
    this.sender = sender;
  }

  /** A turn's step changes (milestones, failures, waits for a person); returns what was sent. */
  steps(changes: readonly StepChange[]): Payload[] {
    return this.#tell(() => this.watch.steps(changes));
  }

  /** Where the objectives stand at `elapsed` s: reached so far, and predicted (if known). */
  standing(
    elapsed: number,
    reached: Pick<Report, "ttr_s" | "btn_s" | "milestones">,
    predicted?: Predicted | null,
  ): Payload[] {
    return this.#tell(() => this.watch.standing(elapsed, reached, predicted));
  }

  /** The run ended at `at` s with `report`. */
  end(report: Report, at?: number): Payload[] {
    return this.#tell(() => this.watch.end(report, at));
  }

  #tell(what: () => Happening[]): Payload[] {
    try {
      const payloads = what().map((h) => payloadOf(h, this.watch.info));
      for (const p of payloads) this.sender.send(p);
      return payloads;
    } catch (e) {
      this.sender.log(`thaw: notify: internal error, nothing sent: ${(e as Error)?.message ?? e}`);
      return [];
    }
  }
}
