/**
 * Alerts: the runbook's `notify:` webhooks, told when a milestone is reached, an objective is
 * missed or predicted to be missed, a step fails, a step waits for a person, and the run ends.
 *
 * - `schema.ts`: the zod fragment merged into the runbook schema, and the event names;
 * - `model.ts`: its typed model and load-time checks (the runbook loader calls them);
 * - `resolve.ts`: at run start, unset `${{ env.NAME }}` refused, addresses and headers resolved;
 * - `happenings.ts`, `payload.ts`: what to tell (each thing once) and the JSON body (pure);
 * - `sender.ts`: the queued, retrying, non-blocking POSTs; `redact.ts`: secrets kept out of logs;
 * - `notifier.ts`: the one object the live engine holds;
 * - `live_alerts.ts`: all of it wired into a live run of the CLI (`engine/cli/live.ts`).
 *
 * @module
 */
export {
  DEFAULT_RETRIES,
  DEFAULT_TIMEOUT_S,
  NOTIFY_EVENTS,
  type NotifyEvent,
  type NotifyInput,
  notifySchema,
  type WebhookInput,
  webhookSchema,
} from "./schema.ts";
export { checkNotify, notifyModel, urlProblem, type Webhook } from "./model.ts";
export {
  checkNotifyEnv,
  type NotifyEnvUse,
  notifyEnvUses,
  type ResolvedWebhook,
  resolveWebhooks,
  type RunbookText,
} from "./resolve.ts";
export {
  type Happening,
  margin,
  NotifyWatch,
  type ObjectiveStatus,
  type Predicted,
  type RunInfo,
} from "./happenings.ts";
export { type Payload, payloadOf, slackEscape } from "./payload.ts";
export { type SenderOptions, WebhookSender, type WebhookStats } from "./sender.ts";
export { HIDDEN, Redactor } from "./redact.ts";
export { predictObjectives, standingOf } from "./predicted.ts";
export { Notifier } from "./notifier.ts";
export { FLUSH_MS, LiveAlerts, type LiveAlertsOptions } from "./live_alerts.ts";
