/**
 * The runbook format as one zod schema: the source of both the validator and the JSON Schema
 * that `thaw schema` prints and editors use.
 *
 * The schema checks shape, types and units; what needs the whole document (ids, needs, cycles,
 * expressions) is checked in `load.ts`.
 *
 * @module
 */
import { z } from "zod";
import {
  BANDWIDTH_PATTERN,
  DURATION_PATTERN,
  parseBandwidth,
  parseDuration,
  parseSize,
  SIZE_PATTERN,
} from "./units.ts";

/** Step ids: `[a-z0-9][a-z0-9_-]*`. */
export const STEP_ID_PATTERN = "^[a-z0-9][a-z0-9_-]*$";
/** Runbook names: `[a-z0-9][a-z0-9-]*`. */
export const NAME_PATTERN = "^[a-z0-9][a-z0-9-]*$";
/** Names of vars (used as `${{ vars.NAME }}`). */
export const VAR_PATTERN = "^[A-Za-z_][A-Za-z0-9_-]*$";
/** Names of environment variables. */
export const ENV_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$";

/** The strategies, in the order they are reported. */
export const STRATEGIES = ["serial", "lazy", "aggressive"] as const;
/** How thaw schedules fetches against run steps. */
export type Strategy = typeof STRATEGIES[number];

// Messages tagged `unit:` are replaced by the unit parser's own explanation in load.ts. A value of
// the right shape is parsed too, so one out of range (too large) is reported with the rest.
const parses = (parse: (text: string) => number) => (text: string) => {
  try {
    parse(text);
    return true;
  } catch {
    return false;
  }
};
const unit = (pattern: string, tag: string, parse: (text: string) => number) =>
  z.string().regex(new RegExp(pattern), { message: tag, abort: true })
    .refine(parses(parse), tag);
const duration = unit(DURATION_PATTERN, "unit:duration", parseDuration)
  .meta({ description: "A duration: 250ms, 30s, 5m, 1h30m, 2d", examples: ["30s", "1h30m"] });
const size = unit(SIZE_PATTERN, "unit:size", parseSize)
  .meta({ description: "A size: B, KB/MB/GB/TB (1000), KiB/MiB/GiB/TiB (1024)" });
const bandwidth = unit(BANDWIDTH_PATTERN, "unit:bandwidth", parseBandwidth)
  .meta({ description: "A bandwidth: 12.5MB/s, 100Mbit/s, 1Gbps, 800kbps" });
const stepId = z.string().regex(new RegExp(STEP_ID_PATTERN), "pattern:step id");
const scalar = z.union([z.string(), z.number(), z.boolean()])
  .meta({ description: "A string (numbers and booleans are taken as their text)" });
const text = z.string();

const ready = z.strictObject({
  http: text.optional().meta({ description: "URL that must answer 2xx" }),
  tcp: text.optional().meta({ description: "host:port that must accept a connection" }),
  run: text.optional().meta({ description: "command that must exit 0" }),
  timeout: duration.optional().meta({ description: "how long to keep probing (default 1m)" }),
  interval: duration.optional().meta({ description: "time between probes (default 250ms)" }),
}).meta({ description: "A probe that must pass for the step to be done: one of http, tcp, run" });

const fetch = z.strictObject({
  from: z.union([text, z.array(text).min(1)]).optional()
    .meta({ description: "A source, or a list of sources tried in order (backup tiers)" }),
  run: text.optional()
    .meta({ description: "A command that writes the data set under $THAW_TO" }),
  to: text.meta({ description: "Destination, relative to the runbook's directory" }),
  size: size.optional().meta({ description: "Expected size, when the source cannot tell" }),
  rate: bandwidth.optional().meta({ description: "How fast the source delivers on its own" }),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "pattern:sha256").optional()
    .meta({ description: "Checked before the step is done (64 lowercase hex digits)" }),
  local: z.boolean().optional()
    .meta({
      description: "Crosses no link (a local copy, a clone): not paced, not in link bounds",
    }),
});

const step = z.strictObject({
  id: stepId.meta({ description: "Unique id: [a-z0-9][a-z0-9_-]*" }),
  needs: z.union([stepId, z.array(stepId)]).optional()
    .meta({ description: "Steps that must be done first" }),
  run: text.optional().meta({ description: "A command (run step)" }),
  fetch: fetch.optional().meta({ description: "A data set to bring home (fetch step)" }),
  shell: z.string().regex(/^\S+$/, "pattern:shell").optional()
    .meta({ description: "Shell for run (default bash)" }),
  background: z.boolean().optional()
    .meta({ description: "Keep running after ready passes (a service)" }),
  ready: ready.optional(),
  timeout: duration.optional(),
  retries: z.int().min(0).max(100).optional()
    .meta({ description: "Attempts after the first, with exponential backoff" }),
  env: z.record(z.string().regex(new RegExp(ENV_PATTERN), "pattern:env name"), scalar).optional(),
  estimate: duration.optional().meta({ description: "Expected duration, for planning" }),
  milestone: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "pattern:milestone").optional(),
  "on-failure": z.enum(["abort", "isolate"]).optional(),
  approval: text.optional().meta({ description: "The step waits until a person approves it" }),
  user: z.string().regex(/^[a-z_][a-z0-9_.-]*[$]?$/i, "pattern:user").optional()
    .meta({ description: "Run the step's commands as this system user (needs root)" }),
  idempotent: z.boolean().optional()
    .meta({ description: "Safe to run again after it was interrupted (default false)" }),
});

const objectives = z.strictObject({
  rto: duration.optional().meta({ description: "TTR must not exceed this" }),
  btn: duration.optional().meta({ description: "BTN must not exceed this" }),
  milestones: z.record(z.string(), duration).optional(),
});

const drill = z.strictObject({
  vars: z.record(z.string(), scalar).optional(),
  skip: z.array(stepId).optional().meta({ description: "Steps simulated, never run, in drills" }),
});

/**
 * The schema of a runbook file (format version 1).
 *
 * @example
 * ```ts
 * import { RunbookSchema } from "./schema.ts";
 * import assert from "node:assert/strict";
 * const r = RunbookSchema.safeParse({ runbook: 1, name: "x", steps: [{ id: "a", run: "true" }] });
 * assert(r.success);
 * ```
 */
export const RunbookSchema = z.strictObject({
  runbook: z.literal(1).meta({ description: "Format version; only 1 exists" }),
  name: z.string().regex(new RegExp(NAME_PATTERN), "pattern:name"),
  description: text.optional(),
  objectives: objectives.optional(),
  strategy: z.enum(STRATEGIES).optional(),
  bandwidth: bandwidth.optional().meta({ description: "Capacity of the shared link" }),
  parallelism: z.int().min(1).max(10000).optional()
    .meta({ description: "Most run steps at once (default 8)" }),
  vars: z.record(z.string().regex(new RegExp(VAR_PATTERN), "pattern:var name"), scalar)
    .optional(),
  env: z.record(z.string().regex(new RegExp(ENV_PATTERN), "pattern:env name"), scalar)
    .optional(),
  drill: drill.optional(),
  steps: z.array(step).min(1),
}).meta({
  title: "thaw runbook",
  description: "A recovery graph of fetch steps and run steps (thaw runbook format version 1)",
});

/** A runbook file as written, after validation of its shape. */
export type RunbookInput = z.infer<typeof RunbookSchema>;
/** A step as written. */
export type StepInput = z.infer<typeof step>;

/** The keys each kind of mapping allows, for "did you mean" on unknown keys. */
export const KEYS = {
  root: Object.keys(RunbookSchema.shape),
  step: Object.keys(step.shape),
  fetch: Object.keys(fetch.shape),
  ready: Object.keys(ready.shape),
  objectives: Object.keys(objectives.shape),
  drill: Object.keys(drill.shape),
} as const;

/** Keys that only run steps may have. */
export const RUN_ONLY_KEYS = ["shell", "background", "ready"] as const;

/**
 * The JSON Schema of the format, generated from {@link RunbookSchema}.
 *
 * @example
 * ```ts
 * import { jsonSchema } from "./schema.ts";
 * import assert from "node:assert/strict";
 * assert.equal(jsonSchema().title, "thaw runbook");
 * ```
 */
export function jsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(RunbookSchema, { io: "input", unrepresentable: "any" });
}
