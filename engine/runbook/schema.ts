/**
 * The runbook format as one zod schema: the source of both the validator and the JSON Schema
 * that `thaw schema` prints and editors use.
 *
 * A step's keys come from the step kinds registered (`steps/kind.ts`): each kind brings its own
 * key (`run`, `fetch`) and the keys that apply to its steps only; the schema is rebuilt when a kind
 * is registered. The schema checks shape, types and units; what needs the whole document (ids,
 * needs, cycles, expressions) is checked in `check.ts`.
 *
 * @module
 */
import { z } from "zod";
import "../../steps/builtin.ts";
import {
  type RawStep,
  RegistryError,
  reserveStepKeys,
  type StepKind,
  stepKinds,
  stepKindsVersion,
} from "../../steps/kind.ts";
import { bandwidth, duration, hostName, scalar, stepId, text } from "./schema_parts.ts";
import { hostsSchema } from "./hosts.ts";
import { serviceLevelSchema } from "../service_level/schema.ts";
import { notifySchema } from "../notify/schema.ts";

export { STEP_ID_PATTERN } from "./schema_parts.ts";
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

// A step is its id and needs, the keys of the step kinds (the kinds' own keys first, then the
// keys that apply to one kind only), then what every step may have.
const stepHead = {
  id: stepId.meta({ description: "Unique id: [a-z0-9][a-z0-9_-]*" }),
  needs: z.union([stepId, z.array(stepId)]).optional()
    .meta({ description: "Steps that must be done first" }),
};
const stepTail = {
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
  on: hostName.optional()
    .meta({ description: "Run the step on this host of `hosts` (default: this machine)" }),
};

/** The keys every step may have, whatever its kind; no step kind may bring one of them. */
export const COMMON_STEP_KEYS: readonly string[] = [
  ...Object.keys(stepHead),
  ...Object.keys(stepTail),
];
reserveStepKeys(COMMON_STEP_KEYS);

/** The schema of a step, with the keys of `kinds`. */
function stepSchema(kinds: readonly StepKind[]) {
  const own: Record<string, z.ZodType> = {}, options: Record<string, z.ZodType> = {};
  for (const kind of kinds) {
    for (const [key, schema] of Object.entries(kind.schema)) {
      if (COMMON_STEP_KEYS.includes(key)) {
        throw new RegistryError(`step kind "${kind.key}": "${key}" is a key of every step`);
      }
      (key === kind.key ? own : options)[key] = schema;
    }
  }
  return z.strictObject({ ...stepHead, ...own, ...options, ...stepTail });
}

const objectives = z.strictObject({
  rto: duration.optional().meta({ description: "TTR must not exceed this" }),
  btn: duration.optional().meta({ description: "BTN must not exceed this" }),
  milestones: z.record(z.string(), duration).optional(),
});

const drill = z.strictObject({
  vars: z.record(z.string(), scalar).optional(),
  skip: z.array(stepId).optional().meta({ description: "Steps simulated, never run, in drills" }),
});

/** The schema of a runbook file whose steps are of `kinds`. */
function buildSchema(kinds: readonly StepKind[]) {
  return z.strictObject({
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
    hosts: hostsSchema.optional(),
    service_level: serviceLevelSchema.optional(),
    notify: notifySchema.optional(),
    steps: z.array(stepSchema(kinds)).min(1),
  }).meta({
    title: "thaw runbook",
    description: "A recovery graph of fetch steps and run steps (thaw runbook format version 1)",
  });
}

let built: { version: number; schema: ReturnType<typeof buildSchema> } | undefined;

/**
 * The schema of a runbook file (format version 1) with the step kinds registered now; rebuilt
 * when a kind is registered or taken out.
 *
 * @example
 * ```ts
 * import { runbookSchema } from "./schema.ts";
 * import assert from "node:assert/strict";
 * const r = runbookSchema().safeParse({ runbook: 1, name: "x", steps: [{ id: "a", run: "true" }] });
 * assert(r.success);
 * ```
 * @throws {RegistryError} when a step kind brings a key every step has.
 */
export function runbookSchema(): ReturnType<typeof buildSchema> {
  const version = stepKindsVersion();
  if (built?.version !== version) built = { version, schema: buildSchema(stepKinds()) };
  return built.schema;
}

/**
 * The schema of a runbook file with the built-in step kinds (`run`, `fetch`); see
 * {@linkcode runbookSchema} for the one with every kind registered now.
 *
 * @example
 * ```ts
 * import { RunbookSchema } from "./schema.ts";
 * import assert from "node:assert/strict";
 * const r = RunbookSchema.safeParse({ runbook: 1, name: "x", steps: [{ id: "a", run: "true" }] });
 * assert(r.success);
 * ```
 */
export const RunbookSchema: ReturnType<typeof buildSchema> = runbookSchema();

const typedStep = z.strictObject({ ...stepHead, ...stepTail });
/** A step as written, after validation of its shape: the common keys typed, the kinds' raw. */
export type StepInput = z.infer<typeof typedStep> & RawStep;
/** A runbook file as written, after validation of its shape. */
export type RunbookInput = Omit<z.infer<typeof RunbookSchema>, "steps"> & {
  steps: StepInput[];
};

/**
 * The keys the mapping at `path` of a runbook allows (none where it is not a mapping of known
 * keys), for "did you mean" on unknown keys.
 *
 * @example
 * ```ts
 * import { keysAt } from "./schema.ts";
 * import assert from "node:assert/strict";
 * assert(keysAt(["steps", 0, "fetch"]).includes("sha256"));
 * assert.deepEqual(keysAt(["steps", 0, "env"]), []);
 * ```
 */
export function keysAt(path: readonly (string | number)[]): string[] {
  let schema: z.ZodType | undefined = runbookSchema();
  for (const p of path) {
    while (schema instanceof z.ZodOptional) schema = schema.unwrap() as z.ZodType;
    if (schema instanceof z.ZodRecord && typeof p === "string") {
      schema = schema.valueType as z.ZodType; // hosts.NAME
    } else if (schema instanceof z.ZodObject && typeof p === "string") {
      schema = (schema.shape as Record<string, z.ZodType>)[p];
    } else if (schema instanceof z.ZodArray && typeof p === "number") {
      schema = schema.element as z.ZodType;
    } else return [];
  }
  while (schema instanceof z.ZodOptional) schema = schema.unwrap() as z.ZodType;
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

/**
 * The JSON Schema of the format, generated from {@link runbookSchema} (every step kind
 * registered now).
 *
 * @example
 * ```ts
 * import { jsonSchema } from "./schema.ts";
 * import assert from "node:assert/strict";
 * assert.equal(jsonSchema().title, "thaw runbook");
 * ```
 */
export function jsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(runbookSchema(), { io: "input", unrepresentable: "any" });
}
