/**
 * A run in progress as people see it (the live table, `thaw status`, the HTTP API): each step's
 * state, detail, bytes and timing, kept by the live engine as it goes.
 *
 * @module
 */
import type { Estimates } from "../plan/graph.ts";
import type { Runbook, Strategy } from "../runbook/model.ts";
import type { Report } from "../schedule/report.ts";
import type { StepStateName } from "../store/types.ts";
import { formatDuration } from "../runbook/units.ts";
import { stepKind } from "../../steps/kind.ts";

/** A step as the live view shows it. */
export interface LiveStep {
  readonly id: string;
  readonly kind: "run" | "fetch";
  /** Whether it moves data (its kind's figures say `data`: a fetch), rather than taking time. */
  readonly moves: boolean;
  /** The host it runs on (`on:`); null: the machine that runs thaw. */
  readonly on: string | null;
  state: StepStateName;
  /** What a frozen step waits for, why a step failed, an approval it waits for. */
  detail: string;
  /** Fetches: bytes so far, total when known, achieved rate (bytes/s). */
  bytes: number;
  total: number | null;
  rate: number;
  demanded: boolean;
  /** Listed in `drill.skip` in a drill: never run, it stands in for its estimate (`skipped`). */
  readonly skip: boolean;
  /** Seconds (from the start of the run) it last went `running`; null before. */
  since: number | null;
  /** Seconds a run step is expected to take (its `estimate`, else its history); null: unknown. */
  readonly estimate: number | null;
}

/**
 * The first words of the detail of a drill-skipped step, as the engine records it: the store
 * keeps such a step `running`, then `done` (that is how it schedules), people see `skipped`.
 */
export const SKIP_DETAIL = "not run in a drill (drill.skip)";

/** The detail recorded when a drill-skipped step starts standing in for its estimate. */
export function skipDetail(estimate: number | undefined): string {
  return `${SKIP_DETAIL}: stands in for its estimate, ${formatDuration(estimate ?? 0)}`;
}

/**
 * The state people see: `skipped` for a drill-skipped step from the moment it would have run, as
 * in the report; the engine's state otherwise.
 */
export function shownState(step: LiveStep, state: StepStateName = step.state): StepStateName {
  return step.skip && (state === "running" || state === "done") ? "skipped" : state;
}

/** A run in progress, as the live view and the HTTP API see it. */
export class LiveRun {
  readonly runbook: Runbook;
  readonly run: string;
  readonly strategy: Strategy;
  readonly steps: LiveStep[];
  /** Wall-clock ms of the start of the run. */
  readonly startedAt: number;
  /** Seconds since the start. */
  elapsed = 0;
  /** The report so far (updated every second or so, and at the end). */
  report: Report | null = null;
  #index: Map<string, LiveStep> | undefined;

  /** @internal */
  constructor(
    runbook: Runbook,
    run: string,
    strategy: Strategy,
    startedAt: number,
    estimates: Estimates = {},
  ) {
    this.runbook = runbook;
    this.run = run;
    this.strategy = strategy;
    this.startedAt = startedAt;
    this.steps = runbook.steps.map((s) => {
      // What the kind says the step is: data to move (its size), or time to take.
      const figures = stepKind(s.kind).figures(s);
      return {
        id: s.id,
        kind: s.kind,
        moves: figures.type === "data",
        on: s.on ?? null,
        state: "pending",
        detail: "",
        bytes: 0,
        total: figures.type === "data" ? figures.bytes ?? null : null,
        rate: 0,
        demanded: false,
        skip: s.skip,
        since: null,
        estimate: figures.type === "data"
          ? null
          : s.skip
          ? s.estimate ?? 0
          : figures.seconds ?? estimates.duration?.get(s.id) ?? null,
      };
    });
  }

  /** The step with id `id` (a map, not a search: the plain lines look one up per change). */
  step(id: string): LiveStep | undefined {
    this.#index ??= new Map(this.steps.map((s) => [s.id, s]));
    return this.#index.get(id);
  }
}

/** Most step rows in the live table; the rest are summarised. */
