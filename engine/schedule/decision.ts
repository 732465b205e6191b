/**
 * The scheduler's vocabulary: the states of a step, the decisions it takes, and its options.
 * Its own module so that the recorder, the report, the simulator and the live engine name them
 * without the scheduler's machinery.
 *
 * @module
 */
import type { Strategy } from "../runbook/schema.ts";
import type { WaitReason } from "./approvals.ts";

/** Step states, as the report names them. */
export const STATES = [
  "pending",
  "frozen",
  "running",
  "done",
  "failed",
  "skipped",
  "cancelled",
] as const;
/** A step's state. */
export type StepState = typeof STATES[number];

/** What the scheduler decided. `step` is an index into the graph. */
export type Decision =
  /** Start the step; a lazy fetch (revision 5): attach it, its stream paused until a `share`. */
  | { readonly type: "start"; readonly step: number }
  /**
   * A lazy fetch was attached (`Scheduler.attached`): the steps that need it may start. Taken
   * note of (the recorder's attach time), nothing to carry out.
   */
  | { readonly type: "attached"; readonly step: number }
  /**
   * The step is reached (it counts as running from now) but waits for a person: its approval
   * gate, or it was running when its engine died. It lends its run slot; a `start` follows once
   * a person approves it.
   */
  | { readonly type: "wait"; readonly step: number; readonly reason: WaitReason }
  | { readonly type: "freeze"; readonly step: number }
  | { readonly type: "thaw"; readonly step: number }
  | { readonly type: "demand"; readonly step: number }
  /** The fetch may now use `rate` bytes per second of the link (0: pause it). */
  | { readonly type: "share"; readonly step: number; readonly rate: number }
  /** The step will not run: a step it needs failed (`isolate`), or the run was cancelled. */
  | { readonly type: "skip"; readonly step: number }
  | { readonly type: "cancel"; readonly step: number };

/** How the scheduler runs a graph. */
export interface SchedulerOptions {
  readonly strategy: Strategy;
  /** Most run steps at once. */
  readonly parallelism: number;
  /** Priority of each step (lower first), from the plan's analysis. */
  readonly rank: Float64Array;
}
