/**
 * The `notify:` key of a runbook as a zod fragment: webhooks thaw POSTs JSON to when a milestone
 * is reached, an objective is missed or predicted to be missed, a step fails, a step waits for a
 * person, or the run ends. Merged into the runbook schema (`engine/runbook/schema.ts`) as
 * `notify: notifySchema.optional()`; `checkNotify` (`model.ts`) does what needs the whole document
 * (expressions).
 *
 * ```yaml
 * notify:
 *   - url: ${{ env.SLACK_WEBHOOK }}           # a secret: from the environment, never in git
 *     on: [milestone, objective, step-failed, approval, end]   # default: all of them
 *   - url: https://pager.example/hooks/thaw
 *     on: [objective]
 *     headers: { Authorization: "Bearer ${{ env.PAGER_TOKEN }}" }
 *     timeout: 5s                             # per request (default 10s)
 *     retries: 3                              # after the first attempt, with backoff (default 5)
 * ```
 *
 * @module
 */
import { z } from "zod";
import { duration } from "../runbook/schema_parts.ts";

/**
 * What a webhook may be told, in the order a run meets them:
 * - `milestone`: every step carrying a milestone is done;
 * - `objective`: an objective (`rto`, `btn`, a milestone's) is predicted to be missed, missed, or
 *   back on track after a prediction said it would be missed;
 * - `step-failed`: a step failed (after its retries);
 * - `approval`: a step waits for a person (its `approval`, or it was running when its engine died);
 * - `end`: the run ended (met, missed, failed or cancelled).
 */
export const NOTIFY_EVENTS = ["milestone", "objective", "step-failed", "approval", "end"] as const;
/** One of {@link NOTIFY_EVENTS}. */
export type NotifyEvent = typeof NOTIFY_EVENTS[number];

/** HTTP header names (RFC 9110 tokens). */
export const HEADER_PATTERN = "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$";

/** Default per-request timeout, seconds. */
export const DEFAULT_TIMEOUT_S = 10;
/** Default attempts after the first. */
export const DEFAULT_RETRIES = 5;

const event = z.enum(NOTIFY_EVENTS);

/** One webhook. */
export const webhookSchema = z.strictObject({
  url: z.string().min(1)
    .meta({ description: "http(s) URL the JSON is POSTed to; ${{ env.NAME }} for a secret one" }),
  on: z.array(event).min(1).optional()
    .meta({ description: "Events sent (default: all): " + NOTIFY_EVENTS.join(", ") }),
  headers: z.record(z.string().regex(new RegExp(HEADER_PATTERN), "pattern:header name"), z.string())
    .optional()
    .meta({ description: "Extra request headers; values are secret (never printed)" }),
  timeout: duration.optional().meta({ description: "Per request (default 10s)" }),
  retries: z.int().min(0).max(100).optional()
    .meta({ description: "Attempts after the first, with exponential backoff (default 5)" }),
});

/**
 * The `notify` key: a non-empty list of webhooks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notifySchema } from "./schema.ts";
 * assert(notifySchema.safeParse([{ url: "https://h.example/x", on: ["end"] }]).success);
 * assert(!notifySchema.safeParse([{ url: "https://h.example/x", on: ["ended"] }]).success);
 * ```
 */
export const notifySchema = z.array(webhookSchema).min(1)
  .meta({ description: "Webhooks told of milestones, objectives, failures, approvals, the end" });

/** A webhook as written, after validation of its shape. */
export type WebhookInput = z.infer<typeof webhookSchema>;
/** The `notify` key as written. */
export type NotifyInput = z.infer<typeof notifySchema>;
