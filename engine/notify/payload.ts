/**
 * The JSON body POSTed for a happening: a short `text` a person reads in Slack (or Mattermost,
 * Rocket.Chat, Teams workflows: anything that takes Slack's incoming-webhook shape), naming the
 * runbook, the run, the step, milestone or objective and the times, then the same as fields a
 * program reads. Pure: the clock is an argument.
 *
 * @module
 */
import { formatDuration } from "../runbook/units.ts";
import type { Outcome, Report } from "../schedule/report.ts";
import type { Happening, ObjectiveStatus, RunInfo } from "./happenings.ts";
import type { NotifyEvent } from "./schema.ts";

/** The body of a notification. Times `*_s` are seconds from the start of the run. */
export interface Payload {
  /** One or two lines for people (Slack's `text`; `&`, `<`, `>` escaped as Slack wants). */
  readonly text: string;
  readonly event: NotifyEvent;
  readonly runbook: string;
  readonly run: string;
  /** True for `thaw drill`: a rehearsal, not a recovery. */
  readonly drill: boolean;
  /** When it happened: seconds from the start, and the wall clock (ISO 8601, UTC). */
  readonly at_s: number;
  readonly time: string;
  /** The run's page, when thaw serves one. */
  readonly page?: string;
  readonly step?: string;
  readonly milestone?: string;
  /** `rto`, `btn`, `milestone:NAME`. */
  readonly objective?: string;
  readonly status?: ObjectiveStatus;
  readonly objective_s?: number;
  /** When the objective was reached or is predicted (see `predicted`); null: not reached. */
  readonly value_s?: number | null;
  readonly predicted?: boolean;
  /** Why a step failed, what a waiting step needs. */
  readonly detail?: string;
  readonly waits_for?: "approval" | "interrupted";
  readonly outcome?: Outcome;
  readonly ttr_s?: number | null;
  readonly btn_s?: number | null;
  readonly missed?: readonly string[];
  /** `end` of a failed run: the steps that failed. */
  readonly failed_steps?: readonly string[];
}

/** Longest `detail` quoted in `text` (the field keeps up to 2000 characters). */
const TEXT_DETAIL = 200;
const FIELD_DETAIL = 2000;

/** Text as Slack's `text` wants it: `&`, `<` and `>` escaped. */
export function slackEscape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** A duration as people write one: `5m`, `1h`, `1m01s`, `2.5s`. */
function dur(seconds: number): string {
  return formatDuration(seconds).replace(/^(\d+[dhm])00[hms]$/, "$1");
}

function clip(text: string, most: number): string {
  const one = text.replace(/\s+/g, " ").trim();
  return one.length > most ? one.slice(0, most - 3) + "..." : one;
}

/** `TTR`, `BTN`, `milestone catalog`. */
function objectiveName(objective: string): string {
  if (objective === "rto") return "TTR";
  if (objective === "btn") return "BTN";
  return `milestone ${objective.replace(/^milestone:/, "")}`;
}

/** The `objective 5m: met` part of a milestone's text. */
function milestoneObjective(info: RunInfo, name: string, at: number): string {
  const limit = info.objectives.milestones[name];
  if (limit === undefined) return "";
  const verdict = at > limit + 1e-9 ? `missed by ${dur(at - limit)}` : "met";
  return ` (objective ${dur(limit)}: ${verdict})`;
}

/** What an objective happening says. */
function objectiveText(h: Extract<Happening, { event: "objective" }>): string {
  const what = objectiveName(h.objective), limit = dur(h.limit);
  const v = h.value === null ? "" : dur(h.value);
  switch (h.status) {
    case "predicted":
      return `${what} predicted to miss its objective: predicted at ${v}, objective ${limit} ` +
        `(${dur(h.at)} into the run)`;
    case "on-track":
      return h.predicted
        ? `${what} back on track: predicted at ${v}, objective ${limit}`
        : `${what} back on track: reached at ${v}, objective ${limit}`;
    case "missed":
      return h.value === null
        ? `${what} missed its objective: not reached after ${limit}`
        : `${what} missed its objective: reached at ${v}, objective ${limit}`;
  }
}

/** What the end of a run says: outcome, then TTR and BTN against their objectives. */
function endText(report: Report): string {
  const o = report.objectives;
  const measure = (name: string, v: number | null, limit: number | undefined) =>
    `${name} ${v === null ? "not reached" : dur(v)}` +
    (limit === undefined ? "" : ` (objective ${dur(limit)})`);
  const failed = report.steps.filter((s) => s.state === "failed").map((s) => s.id);
  const why = report.outcome === "missed"
    ? ` (${report.missed.map(objectiveName).join(", ")})`
    : failed.length
    ? ` (failed: ${failed.join(", ")})`
    : "";
  return `ended ${report.outcome}${why}: ${measure("TTR", report.ttr_s, o.rto_s)}, ` +
    measure("BTN", report.btn_s, o.btn_s);
}

/** The words of a happening, without the runbook and run around them. */
function words(h: Happening, info: RunInfo): string {
  switch (h.event) {
    case "milestone":
      return `milestone ${h.milestone} reached at ${dur(h.at)}` +
        milestoneObjective(info, h.milestone, h.at);
    case "objective":
      return objectiveText(h);
    case "step-failed":
      return `step ${h.step} failed at ${dur(h.at)}` +
        (h.detail ? `: ${clip(h.detail, TEXT_DETAIL)}` : "");
    case "approval":
      return h.reason === "approval"
        ? `step ${h.step} is ${clip(h.detail, TEXT_DETAIL)}`
        : `step ${h.step} waits for a person: ${clip(h.detail, TEXT_DETAIL)}`;
    case "end":
      return endText(h.report);
  }
}

/** The fields of a happening beyond the common ones. */
function fields(h: Happening): Partial<Payload> {
  switch (h.event) {
    case "milestone":
      return { milestone: h.milestone, step: h.step };
    case "objective":
      return {
        objective: h.objective,
        status: h.status,
        objective_s: h.limit,
        value_s: h.value,
        predicted: h.predicted,
      };
    case "step-failed":
      return { step: h.step, detail: clip(h.detail, FIELD_DETAIL) };
    case "approval":
      return { step: h.step, waits_for: h.reason, detail: clip(h.detail, FIELD_DETAIL) };
    case "end": {
      const r = h.report;
      const failed = r.steps.filter((s) => s.state === "failed").map((s) => s.id);
      return {
        outcome: r.outcome,
        ttr_s: r.ttr_s,
        btn_s: r.btn_s,
        missed: r.missed,
        ...(failed.length ? { failed_steps: failed } : {}),
      };
    }
  }
}

/** `13:21:03 UTC`. */
function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19) + " UTC";
}

/**
 * The body POSTed for `h`, a happening of the run `info`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { payloadOf } from "./payload.ts";
 * const info = {
 *   run: "01JRUN", runbook: "shop", drill: true, startedAt: Date.UTC(2026, 0, 1, 3, 0, 0),
 *   steps: [], objectives: { milestones: { service: 300 } },
 * };
 * const p = payloadOf({ event: "milestone", at: 61, milestone: "service", step: "web" }, info);
 * assert.equal(p.text,
 *   "[drill] shop: milestone service reached at 1m01s (objective 5m: met). Run 01JRUN, 03:01:01 UTC");
 * assert.equal(p.time, "2026-01-01T03:01:01.000Z");
 * ```
 */
export function payloadOf(h: Happening, info: RunInfo): Payload {
  const wall = info.startedAt + Math.round(h.at * 1000);
  const text = `${info.drill ? "[drill] " : ""}${info.runbook}: ${words(h, info)}. ` +
    `Run ${info.run}, ${clock(wall)}` + (info.page ? `: ${info.page}` : "");
  return {
    text: slackEscape(text),
    event: h.event,
    runbook: info.runbook,
    run: info.run,
    drill: info.drill,
    at_s: Math.round(h.at * 1000) / 1000,
    time: new Date(wall).toISOString(),
    ...(info.page ? { page: info.page } : {}),
    ...fields(h),
  };
}
