/**
 * What happened in a run that a webhook may be told, from what the live engine already has: its
 * step changes (the store's `StepChange`s), its report so far with a predicted TTR/BTN, and its
 * final report. Pure: no clock, no network; the same inputs give the same happenings.
 *
 * Each happening is told once: a milestone when its last step is done; a step failure; a step
 * that starts to wait for a person (again only if it waits again later); an objective when it is
 * first predicted to be missed, again only when the prediction moves by a tenth of the objective
 * (at least 1 s) or the objective is missed, and "back on track" once a prediction said it would
 * be missed but now gives it a tenth of the objective to spare (or it was met); the end.
 *
 * @module
 */
import type { Report } from "../schedule/report.ts";
import { waitsForPerson } from "../schedule/waits.ts";
import type { StepChange } from "../store/types.ts";

/** The run a watch follows. */
export interface RunInfo {
  readonly run: string;
  /** The runbook's name. */
  readonly runbook: string;
  readonly drill: boolean;
  /** Wall-clock ms of the start of the run. */
  readonly startedAt: number;
  /** The steps in runbook order, with the milestone each carries. */
  readonly steps: readonly { readonly id: string; readonly milestone?: string | undefined }[];
  /** The objectives, as the report gives them (seconds). */
  readonly objectives: Report["objectives"];
  /** The address of the run's page or `GET /runs/ID`, when thaw serves one. */
  readonly page?: string | undefined;
}

/** Where an objective stands, when it is told. */
export type ObjectiveStatus = "predicted" | "missed" | "on-track";

/** Something a webhook may be told. Times are seconds from the start of the run. */
export type Happening =
  | {
    readonly event: "milestone";
    readonly at: number;
    readonly milestone: string;
    /** The step whose end reached it. */
    readonly step: string;
  }
  | {
    readonly event: "objective";
    readonly at: number;
    /** `rto`, `btn` or `milestone:NAME`, as the report's `missed` names them. */
    readonly objective: string;
    readonly status: ObjectiveStatus;
    /** The objective's limit. */
    readonly limit: number;
    /** When it was reached, when it is predicted, or null (missed and not reached yet). */
    readonly value: number | null;
    /** Whether `value` is a prediction. */
    readonly predicted: boolean;
  }
  | {
    readonly event: "step-failed";
    readonly at: number;
    readonly step: string;
    readonly detail: string;
  }
  | {
    readonly event: "approval";
    readonly at: number;
    readonly step: string;
    /** `approval`: the step's approval; `interrupted`: it ran when its engine died. */
    readonly reason: "approval" | "interrupted";
    readonly detail: string;
  }
  | { readonly event: "end"; readonly at: number; readonly report: Report };

/** The TTR and BTN predicted from where the run stands (`engine/simulate/predict.ts`). */
export interface Predicted {
  readonly ttr_s: number | null;
  readonly btn_s: number | null;
  /** By milestone name, when the prediction gives them. */
  readonly milestones?: Readonly<Record<string, number | null>>;
}

/** What an objective was last told as. */
interface Told {
  readonly status: ObjectiveStatus;
  readonly value: number | null;
}

/** How far a prediction must move, or clear its limit, to be told again: a tenth, at least 1 s. */
export function margin(limit: number): number {
  return Math.max(1, limit / 10);
}

/**
 * Follows one run and says what to tell, each thing once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NotifyWatch } from "./happenings.ts";
 * const watch = new NotifyWatch({
 *   run: "R1", runbook: "shop", drill: false, startedAt: 0,
 *   steps: [{ id: "db" }, { id: "web", milestone: "service" }],
 *   objectives: { rto_s: 60, milestones: {} },
 * });
 * assert.deepEqual(watch.steps([{ step: "web", state: "done", at: 12 }]).map((h) => h.event), ["milestone"]);
 * const reached = { ttr_s: null, btn_s: null, milestones: {} };
 * assert.equal(watch.standing(10, reached, { ttr_s: 90, btn_s: 90 }).length, 1);
 * assert.equal(watch.standing(11, reached, { ttr_s: 91, btn_s: 91 }).length, 0); // told already
 * ```
 */
export class NotifyWatch {
  readonly info: RunInfo;
  readonly #milestoneOf = new Map<string, string>();
  /** Steps of each milestone not yet done. */
  readonly #left = new Map<string, Set<string>>();
  readonly #reached = new Set<string>();
  /** Steps waiting for a person now, by the detail told. */
  readonly #waiting = new Map<string, string>();
  readonly #told = new Map<string, Told>();
  #ended = false;

  /**
   * A watch over the run `info`; `history` (a resumed run's changes so far, from the store) is
   * taken in without telling anything again.
   */
  constructor(info: RunInfo, history: readonly StepChange[] = []) {
    this.info = info;
    for (const s of info.steps) {
      if (s.milestone === undefined) continue;
      this.#milestoneOf.set(s.id, s.milestone);
      const left = this.#left.get(s.milestone) ?? new Set<string>();
      left.add(s.id);
      this.#left.set(s.milestone, left);
    }
    this.steps(history);
  }

  /** The happenings in a turn's step changes: milestones reached, failures, waits for a person. */
  steps(changes: readonly StepChange[]): Happening[] {
    const out: Happening[] = [];
    for (const c of changes) {
      const wait = waitsForPerson(c.state, c.detail);
      if (wait && this.#waiting.get(c.step) !== c.detail) {
        this.#waiting.set(c.step, c.detail!);
        out.push({ event: "approval", at: c.at, step: c.step, reason: wait, detail: c.detail! });
      } else if (!wait) this.#waiting.delete(c.step);
      if (c.state === "failed") {
        out.push({ event: "step-failed", at: c.at, step: c.step, detail: c.detail ?? "" });
      }
      const milestone = this.#milestoneOf.get(c.step);
      if (c.state !== "done" || milestone === undefined || this.#reached.has(milestone)) continue;
      const left = this.#left.get(milestone)!;
      left.delete(c.step);
      if (left.size > 0) continue;
      this.#reached.add(milestone);
      out.push({ event: "milestone", at: c.at, milestone, step: c.step });
    }
    return out;
  }

  /**
   * The objectives to tell of at `elapsed` seconds, from what the run reached so far (its report)
   * and what is predicted (null or absent: no prediction).
   */
  standing(
    elapsed: number,
    reached: Pick<Report, "ttr_s" | "btn_s" | "milestones">,
    predicted?: Predicted | null,
  ): Happening[] {
    if (this.#ended) return [];
    const out: Happening[] = [];
    for (const [objective, limit, value, guess] of this.#objectives(reached, predicted)) {
      const h = this.#judge(objective, limit, elapsed, value, guess);
      if (h) out.push(h);
    }
    return out;
  }

  /**
   * The run ended with `report`: objectives missed that were not told yet, and those met after a
   * prediction said they would be missed (back on track), then the end. Nothing is told after it.
   */
  end(report: Report, at: number = report.btn_s ?? 0): Happening[] {
    if (this.#ended) return [];
    const out: Happening[] = [];
    const missed = new Set(report.missed);
    for (const [objective, limit, value] of this.#objectives(report, null)) {
      const last = this.#told.get(objective)?.status;
      // Missed and not told yet; or met after a prediction said it would be missed.
      const status = missed.has(objective)
        ? (last === "missed" ? undefined : "missed")
        : (last === "predicted" && value !== null ? "on-track" : undefined);
      if (status === undefined) continue;
      this.#told.set(objective, { status, value });
      out.push({ event: "objective", at, objective, status, limit, value, predicted: false });
    }
    this.#ended = true;
    out.push({ event: "end", at, report });
    return out;
  }

  /** Each objective: its name, limit, reached value and predicted value. */
  #objectives(
    reached: Pick<Report, "ttr_s" | "btn_s" | "milestones">,
    predicted: Predicted | null | undefined,
  ): [string, number, number | null, number | null][] {
    const o = this.info.objectives;
    const list: [string, number, number | null, number | null][] = [];
    if (o.rto_s !== undefined) list.push(["rto", o.rto_s, reached.ttr_s, predicted?.ttr_s ?? null]);
    if (o.btn_s !== undefined) list.push(["btn", o.btn_s, reached.btn_s, predicted?.btn_s ?? null]);
    for (const [name, limit] of Object.entries(o.milestones)) {
      const guess = predicted?.milestones?.[name] ?? null;
      list.push([`milestone:${name}`, limit, reached.milestones[name] ?? null, guess]);
    }
    return list;
  }

  /** Whether to tell of one objective now, and what. */
  #judge(
    objective: string,
    limit: number,
    elapsed: number,
    value: number | null,
    guess: number | null,
  ): Happening | undefined {
    const last = this.#told.get(objective);
    if (last?.status === "missed") return undefined; // final
    const tell = (status: ObjectiveStatus, v: number | null, predicted: boolean): Happening => {
      this.#told.set(objective, { status, value: v });
      return { event: "objective", at: elapsed, objective, status, limit, value: v, predicted };
    };
    const late = value === null ? elapsed > limit : value > limit + 1e-9;
    if (late) return tell("missed", value, false);
    if (value !== null) {
      return last?.status === "predicted" ? tell("on-track", value, false) : undefined;
    }
    if (guess === null) return undefined; // nothing new to say without a prediction
    if (guess > limit + 1e-9) {
      const moved = last?.status !== "predicted" ||
        Math.abs(guess - (last.value ?? 0)) >= margin(limit);
      return moved ? tell("predicted", guess, true) : undefined;
    }
    if (last?.status === "predicted" && guess <= limit - margin(limit)) {
      return tell("on-track", guess, true);
    }
    return undefined;
  }
}
