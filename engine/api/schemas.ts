/**
 * The shapes the HTTP API answers with, as zod schemas: one source for the types, for the
 * OpenAPI document (`GET /openapi.json`) and for the tests that check real answers against it.
 *
 * @module
 */
import { z } from "zod";
import { STATES } from "../schedule/scheduler.ts";
import { ServiceLevelReportSchema } from "../service_level/report.ts";

/** `event: sl` (no SSE id): a service-level sample as taken. */
export { SlEventSchema } from "../service_level/events.ts";

const seconds = z.number().describe("seconds from the start of the run");
const maybeSeconds = seconds.nullable();

/** A step state, as reports name them. */
export const StepStateSchema = z.enum(STATES);

/** A run's state; `interrupted` is a running run whose engine is gone. */
export const RunStateSchema = z.enum(["running", "done", "failed", "cancelled", "interrupted"]);

/** One step of a report. */
export const StepReportSchema = z.object({
  id: z.string(),
  kind: z.enum(["fetch", "run"]),
  state: StepStateSchema,
  start_s: maybeSeconds,
  end_s: maybeSeconds,
  frozen_s: seconds.describe("seconds spent frozen"),
  milestone: z.string().optional(),
  on: z.string().optional().describe(
    "the host it runs on (the runbook's on:); absent: the machine that runs thaw",
  ),
  bytes: z.number().optional().describe("fetches: bytes brought home"),
  demanded: z.boolean().optional().describe("fetches: a frozen step demanded it"),
  prefetched_bytes: z.number().optional().describe("fetches: bytes that came before demand"),
  attached_s: maybeSeconds.optional().describe(
    "lazy fetches: when attached (the steps that need it could start); end_s is home",
  ),
  on_demand_bytes: z.number().optional().describe("lazy fetches: bytes read on demand"),
  streamed_bytes: z.number().optional().describe("lazy fetches: bytes streamed"),
  detail: z.string().optional().describe(
    "why the step waits for a person (its approval, or it was running when its engine died), " +
      "why it failed, or how it ended (done by hand, what a fetch replaced)",
  ),
}).strict();

const measures = z.object({ ttr_s: maybeSeconds, btn_s: maybeSeconds }).strict();

/** The report of a run (`thaw run --json`). */
export const ReportSchema = z.object({
  runbook: z.string(),
  run: z.string(),
  mode: z.enum(["live", "simulated"]),
  strategy: z.enum(["serial", "lazy", "aggressive"]),
  outcome: z.enum(["met", "missed", "failed", "cancelled"]),
  ttr_s: maybeSeconds,
  btn_s: maybeSeconds,
  milestones: z.record(z.string(), maybeSeconds),
  objectives: z.object({
    rto_s: z.number().optional(),
    btn_s: z.number().optional(),
    milestones: z.record(z.string(), z.number()),
  }).strict(),
  missed: z.array(z.string()).describe('objectives missed: "rto", "btn", "milestone:NAME"'),
  lower_bound: z.object({ ttr_s: seconds, btn_s: seconds }).strict(),
  bytes: z.object({ total: z.number(), on_demand: z.number(), prefetched: z.number() }).strict(),
  steps: z.array(StepReportSchema),
  prediction: z.object({ simulated: measures.nullable(), serial: measures.nullable() }).strict()
    .optional().describe("live runs, once ended: the prediction before the run, a serial restore"),
  service_level: ServiceLevelReportSchema.optional(),
});

/** `GET /runs/ID`: the report so far, the run's state and a predicted TTR. */
export const RunDetailSchema = ReportSchema.extend({
  outcome: ReportSchema.shape.outcome.nullable().describe("null while the run has not ended"),
  missed: z.array(z.string()).describe("objectives missed so far"),
  state: RunStateSchema,
  drill: z.boolean(),
  started_at: z.string().describe("ISO 8601"),
  ended_at: z.string().nullable(),
  predicted: measures.nullable().describe(
    "while the run goes on: TTR and BTN predicted by simulating the rest from where it stands",
  ),
  predicted_note: z.string().optional().describe("why there is no prediction"),
  services: z.array(
    z.object({
      step: z.string(),
      host: z.string().optional().describe(
        "the host it runs on (on:); absent: the engine's machine",
      ),
      pid: z.number().int().describe("on its host"),
      pgid: z.number().int().describe("on its host"),
      log: z.string().nullable().describe("its log file (on its host)"),
      alive: z.boolean().nullable().describe(
        "whether its process group still runs (asked over ssh for a host); null: the host did " +
          "not answer",
      ),
    }).strict(),
  ).describe(
    "background services its done steps started (they outlive a real run; a drill stops them)",
  ),
}).strict();

/** A run as `GET /runs` (and `thaw status --json`) lists it. */
export const RunSummarySchema = z.object({
  run: z.string(),
  runbook: z.string(),
  mode: z.literal("live"),
  state: RunStateSchema,
  drill: z.boolean(),
  outcome: z.string().nullable(),
  started: z.string(),
  ended: z.string().nullable(),
}).strict();

/** Every error answer. */
export const ErrorSchema = z.object({
  error: z.string().describe("what is wrong, for a person"),
  status: z.number().int(),
}).strict();

/** `POST` answers. */
export const AcceptedSchema = z.object({
  run: z.string(),
  step: z.string().optional(),
  state: RunStateSchema,
  message: z.string(),
}).strict();

/** `event: step` of `GET /runs/ID/events`; its SSE id is `seq`. */
export const StepEventSchema = z.object({
  seq: z.number().int(),
  step: z.string(),
  state: StepStateSchema,
  at: seconds,
  detail: z.string().optional(),
}).strict();

/** `event: milestone`; its SSE id is `SEQ.K`, the K-th milestone reached by step event SEQ. */
export const MilestoneEventSchema = z.object({ milestone: z.string(), at: seconds }).strict();

/** `event: progress` (no SSE id: a reconnecting client gets the current progress again). */
export const ProgressEventSchema = z.object({
  step: z.string(),
  bytes: z.number(),
  total: z.number().nullable(),
  demanded: z.boolean(),
  rate: z.number().nullable().describe(
    "bytes per second since the previous sample this client got (null for the first)",
  ),
}).strict();

/** `event: state`: the run went from running to interrupted or back. */
export const StateEventSchema = z.object({ state: RunStateSchema }).strict();

/** `event: end` (SSE id `end`); the stream closes after it. */
export const EndEventSchema = z.object({
  state: RunStateSchema,
  outcome: z.string().nullable(),
  ttr_s: maybeSeconds,
  btn_s: maybeSeconds,
}).strict();

/** Types of the answers. */
export type RunDetail = z.infer<typeof RunDetailSchema>;
export type StepEventBody = z.infer<typeof StepEventSchema>;
export type ProgressEventBody = z.infer<typeof ProgressEventSchema>;
export type EndEventBody = z.infer<typeof EndEventSchema>;
