/**
 * The `service_level` key of a runbook (contract revision 4, "Service level"): its zod schema, to
 * merge into the runbook schema, the typed model of a probe, and the checks that need the whole
 * document (`after` naming a step, probe names unique, a default `after` needing a milestone).
 *
 * ```yaml
 * service_level:
 *   - name: catalog-search
 *     after: start-shop        # sample from when this step is done (default: the first milestone)
 *     http: http://127.0.0.1:8080/search?q=lamp
 *     every: 250ms             # default 1s, at least 50ms
 *     normal: 15s              # after BTN, keep sampling this long (default 0s: no normal window)
 *     objective: { p95: 300ms, success: 99%, degradation: 20% }
 *   - name: stream-rate
 *     run: curl -s -o /dev/null -w '%{speed_download}' http://127.0.0.1:8000/v/42.mp4
 *     higher: better           # `run` probes only: better | worse (or true | false)
 *     objective: { mean: 1000000 }
 * ```
 *
 * @module
 */
import { z } from "zod";
import { duration, stepId } from "../runbook/schema_parts.ts";
import { didYouMean } from "../runbook/suggest.ts";
import { parseDuration } from "../runbook/units.ts";
import type { Problem } from "../runbook/validate.ts";

/** Probe names: `[a-z0-9][a-z0-9_-]*`. */
export const SL_NAME_PATTERN = "^[a-z0-9][a-z0-9_-]*$";
/** The shortest `every`, in seconds: a probe is not a load test. */
export const MIN_EVERY = 0.05;
/** `every` when the runbook gives none, in seconds. */
export const DEFAULT_EVERY = 1;
/** A probe's timeout, as a share of `every`: it always ends before the next tick is due. */
export const TIMEOUT_SHARE = 0.8;
/** The probe kinds, in the order they are looked for. */
export const SL_KINDS = ["http", "tcp", "run"] as const;
/** How a probe samples: a GET, a TCP connect, or a command printing a number. */
export type SlKind = typeof SL_KINDS[number];

const PERCENT_RE = /^(\d+(?:\.\d+)?|\.\d+) ?%$/;

/**
 * Parses a percentage into a ratio (`99%` is 0.99).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePercent } from "./schema.ts";
 * assert.equal(parsePercent("20%"), 0.2);
 * assert.throws(() => parsePercent("0.99"), /a % sign/);
 * ```
 * @throws {RangeError} with advice when `text` is not a percentage.
 */
export function parsePercent(text: string): number {
  const m = typeof text === "string" ? PERCENT_RE.exec(text) : null;
  if (!m) {
    const bare = typeof text === "string" && /^\d+(\.\d+)?$/.test(text.trim());
    throw new RangeError(
      `invalid percentage ${JSON.stringify(String(text).slice(0, 40))}: ` +
        (bare ? `write it with a % sign ("${text.trim()}%"?)` : "expected e.g. 99% or 20%"),
    );
  }
  const value = Number(m[1]) / 100;
  if (!(value <= 1000)) throw new RangeError(`invalid percentage "${text}": at most 100000%`);
  return value;
}

const percentMessage = (text: unknown) => {
  try {
    parsePercent(text as string);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
};
const percent = z.string().superRefine((value, ctx) => {
  const problem = percentMessage(value);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
}).meta({ description: "A percentage: 99%, 20%", examples: ["99%"] });

const objective = z.strictObject({
  p95: duration.optional()
    .meta({ description: "http/tcp: the 95th percentile latency must not exceed this" }),
  success: percent.optional()
    .meta({ description: "Share of samples that must succeed, e.g. 99%" }),
  degradation: percent.optional()
    .meta({ description: "How much worse than normal the recovery window may be, e.g. 20%" }),
  mean: z.number().optional()
    .meta({
      description: "run: the mean value must be at least this (at most with higher: worse)",
    }),
});

/** One probe as written. */
export const serviceLevelProbe = z.strictObject({
  name: z.string().regex(new RegExp(SL_NAME_PATTERN), "pattern:probe name")
    .meta({ description: "Names the probe in the report: [a-z0-9][a-z0-9_-]*" }),
  after: stepId.optional()
    .meta({ description: "Sample from when this step is done (default: the first milestone)" }),
  http: z.string().min(1).optional()
    .meta({ description: "Each sample: one GET, its latency; success = 2xx" }),
  tcp: z.string().min(1).optional()
    .meta({ description: "Each sample: one connect to host:port, its latency" }),
  run: z.string().min(1).optional()
    .meta({ description: "Each sample: a command that prints one number; success = exit 0" }),
  every: duration.optional().meta({ description: "Time between samples (default 1s)" }),
  normal: duration.optional()
    .meta({ description: "After BTN, keep sampling this long: the normal level (default 0s)" }),
  higher: z.union([z.enum(["better", "worse"]), z.boolean()]).optional()
    .meta({ description: "run probes: whether a higher number is better (default better)" }),
  objective: objective.optional(),
}).superRefine((p, ctx) => {
  const kinds = SL_KINDS.filter((k) => p[k] !== undefined);
  const issue = (message: string, path: (string | number)[] = []) =>
    ctx.addIssue({ code: "custom", message, path });
  if (kinds.length === 0) issue("a probe needs one of http: URL, tcp: HOST:PORT or run: COMMAND");
  if (kinds.length > 1) {
    issue(`a probe has one of http, tcp or run, not ${kinds.join(" and ")}`, [kinds[1]!]);
  }
  const every = p.every === undefined ? DEFAULT_EVERY : safeDuration(p.every);
  if (every !== undefined && every < MIN_EVERY) {
    issue(`at least ${MIN_EVERY * 1000}ms between samples, got ${p.every}`, ["every"]);
  }
  if (kinds[0] !== "run" && p.higher !== undefined) {
    issue("only for run probes (an http or tcp probe measures latency: lower is better)", [
      "higher",
    ]);
  }
  const o = p.objective ?? {};
  if (kinds[0] === "run" && o.p95 !== undefined) {
    issue("a latency objective; a run probe's objective is its mean (mean: NUMBER)", [
      "objective",
      "p95",
    ]);
  }
  if (kinds[0] !== "run" && kinds.length && o.mean !== undefined) {
    issue("a run probe's objective; an http or tcp probe has p95: DURATION", [
      "objective",
      "mean",
    ]);
  }
  if (o.success !== undefined && !percentMessage(o.success) && parsePercent(o.success) > 1) {
    issue("at most 100%", ["objective", "success"]);
  }
  const normal = p.normal === undefined ? 0 : safeDuration(p.normal);
  if (o.degradation !== undefined && normal === 0) {
    issue(
      "compared with the normal level, which needs normal: DURATION " +
        "(how long to keep sampling after BTN, e.g. normal: 15s)",
      ["objective", "degradation"],
    );
  }
});

/**
 * The `service_level` key: a list of probes. Merge it into the runbook's top-level object as
 * `service_level: serviceLevelSchema.optional()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serviceLevelSchema } from "./schema.ts";
 * const ok = serviceLevelSchema.safeParse([
 *   { name: "api", http: "http://127.0.0.1:8080/", every: "250ms", objective: { p95: "300ms" } },
 * ]);
 * assert(ok.success);
 * assert(!serviceLevelSchema.safeParse([{ name: "api" }]).success);
 * ```
 */
export const serviceLevelSchema = z.array(serviceLevelProbe).min(1)
  .meta({ description: "Probes sampled while data still arrives (revision 4)" });

/** The `service_level` key as written, once its shape is valid. */
export type ServiceLevelInput = z.infer<typeof serviceLevelSchema>;
/** One probe as written, once its shape is valid. */
export type ServiceLevelProbeInput = z.infer<typeof serviceLevelProbe>;

/** What a probe must achieve during the recovery window. Durations in seconds, ratios 0..1. */
export interface SlObjective {
  /** http/tcp: the recovery window's p95 latency must not exceed this (seconds). */
  readonly p95?: number;
  /** The recovery window's share of successful samples must be at least this. */
  readonly success?: number;
  /** The degradation (see `measures.ts`) must not exceed this. */
  readonly degradation?: number;
  /** run: the recovery window's mean must be at least this (at most when lower is better). */
  readonly mean?: number;
}

/** A probe of the model: units parsed, defaults applied. Times in seconds. */
export interface ServiceLevelProbe {
  readonly name: string;
  readonly kind: SlKind;
  /** The URL, `host:port` or command as written (expressions unresolved: the engine resolves). */
  readonly target: string;
  /** Sample from when this step is done; undefined: from the first milestone reached. */
  readonly after?: string;
  readonly every: number;
  /** Each probe gives up after this: {@link TIMEOUT_SHARE} of `every`. */
  readonly timeout: number;
  /** How long to keep sampling after BTN (0: no normal window, no degradation). */
  readonly normal: number;
  /** Whether a higher value is better: false for latency (http, tcp). */
  readonly higherIsBetter: boolean;
  readonly objective: SlObjective;
}

function safeDuration(text: string): number | undefined {
  try {
    return parseDuration(text);
  } catch {
    return undefined;
  }
}

/**
 * The model of a valid `service_level` key (the schema passed): units parsed, defaults applied.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serviceLevelModel } from "./schema.ts";
 * const [p] = serviceLevelModel([{ name: "rate", run: "echo 5", every: "500ms", higher: "worse" }]);
 * assert.equal(p!.kind, "run");
 * assert.equal(p!.timeout, 0.4);
 * assert.equal(p!.higherIsBetter, false);
 * ```
 */
export function serviceLevelModel(input: ServiceLevelInput | undefined): ServiceLevelProbe[] {
  return (input ?? []).map((p) => {
    const kind = SL_KINDS.find((k) => p[k] !== undefined)!;
    const every = p.every === undefined ? DEFAULT_EVERY : parseDuration(p.every);
    const o = p.objective ?? {};
    const objective: { -readonly [K in keyof SlObjective]: SlObjective[K] } = {};
    if (o.p95 !== undefined) objective.p95 = parseDuration(o.p95);
    if (o.success !== undefined) objective.success = parsePercent(o.success);
    if (o.degradation !== undefined) objective.degradation = parsePercent(o.degradation);
    if (o.mean !== undefined) objective.mean = o.mean;
    return {
      name: p.name,
      kind,
      target: p[kind]!,
      ...(p.after !== undefined ? { after: p.after } : {}),
      every,
      timeout: every * TIMEOUT_SHARE,
      normal: p.normal === undefined ? 0 : parseDuration(p.normal),
      higherIsBetter: kind === "run" ? p.higher !== "worse" && p.higher !== false : false,
      objective,
    };
  });
}

/**
 * What is wrong with `service_level` given the whole document: duplicate names, `after` naming no
 * step, no `after` in a runbook without a milestone. Call it from the runbook's checks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkServiceLevel } from "./schema.ts";
 * const doc = {
 *   service_level: [{ name: "api", http: "http://127.0.0.1:1/", after: "start-apj" }],
 *   steps: [{ id: "start-api" }],
 * };
 * assert.match(checkServiceLevel(doc)[0]!.message, /did you mean "start-api"/);
 * ```
 */
export function checkServiceLevel(doc: {
  readonly service_level?: readonly { name?: unknown; after?: unknown }[] | undefined;
  readonly steps: readonly { id?: unknown; milestone?: unknown }[];
}): Problem[] {
  const problems: Problem[] = [];
  const ids = doc.steps.flatMap((s) => typeof s?.id === "string" ? [s.id] : []);
  const hasMilestone = doc.steps.some((s) => typeof s?.milestone === "string");
  const names = new Map<string, number>();
  (doc.service_level ?? []).forEach((p, i) => {
    if (typeof p?.name === "string") {
      const first = names.get(p.name);
      if (first !== undefined) {
        problems.push({
          path: ["service_level", i, "name"],
          at: "value",
          message: `duplicate probe name "${p.name}" (also service_level[${first}])`,
        });
      } else names.set(p.name, i);
    }
    if (typeof p?.after === "string" && !ids.includes(p.after)) {
      problems.push({
        path: ["service_level", i, "after"],
        at: "value",
        message: `unknown step "${p.after}" in after${didYouMean(p.after, ids)}`,
      });
    } else if (p?.after === undefined && !hasMilestone) {
      problems.push({
        path: ["service_level", i],
        at: "value",
        message: `probe ${JSON.stringify(p?.name ?? i)}: say from which step to sample ` +
          "(after: STEP_ID); without it a probe starts at the first milestone, and no step has one",
      });
    }
  });
  return problems;
}
