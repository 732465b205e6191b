/**
 * `GET /openapi.json`: the API described in OpenAPI 3.1, its schemas generated from the zod
 * schemas the answers are checked against, so integrators can generate clients.
 *
 * @module
 */
import { z } from "zod";
import meta from "../../deno.json" with { type: "json" };
import {
  AcceptedSchema,
  EndEventSchema,
  ErrorSchema,
  MilestoneEventSchema,
  ProgressEventSchema,
  ReportSchema,
  RunDetailSchema,
  RunSummarySchema,
  SlEventSchema,
  StateEventSchema,
  StepEventSchema,
  StepReportSchema,
} from "./schemas.ts";

const NAMED: Record<string, z.ZodType> = {
  StepReport: StepReportSchema,
  Report: ReportSchema,
  RunDetail: RunDetailSchema,
  RunSummary: RunSummarySchema,
  Error: ErrorSchema,
  Accepted: AcceptedSchema,
  StepEvent: StepEventSchema,
  MilestoneEvent: MilestoneEventSchema,
  ProgressEvent: ProgressEventSchema,
  StateEvent: StateEventSchema,
  EndEvent: EndEventSchema,
  SlEvent: SlEventSchema,
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown, description: string) => ({
  description,
  content: { "application/json": { schema } },
});
const error = (description: string) => json(ref("Error"), description);
const runId = {
  name: "id",
  in: "path",
  required: true,
  description: "the run id (thaw status lists them)",
  schema: { type: "string" },
};
const stepId = {
  name: "step",
  in: "path",
  required: true,
  description: "the step's id in the runbook",
  schema: { type: "string" },
};
const auth = {
  security: [{ bearer: [] }],
};
const denied = {
  "401": error("no Authorization header, or the wrong token"),
  "403": error("this server has no token configured: changes are refused"),
};

let cached: string | undefined;

/** The OpenAPI document, as JSON text (built once). */
export function openApiText(): string {
  if (cached) return cached;
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(NAMED)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { uri: (id) => `#/components/schemas/${id}` });
  for (const s of Object.values(schemas)) {
    delete (s as Record<string, unknown>).$schema;
    delete (s as Record<string, unknown>).$id;
  }
  const doc = {
    openapi: "3.1.0",
    info: {
      title: "thaw status API",
      version: meta.version,
      description: "Watch and steer thaw recovery runs. Read endpoints are open; changes need " +
        "`Authorization: Bearer TOKEN` (THAW_TOKEN or --token), and are refused when the " +
        "server has no token. A client that does not send its request headers within " +
        "THAW_HEADERS_TIMEOUT_MS (default 10 s) gets 408 and is disconnected.",
    },
    components: {
      schemas,
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    },
    paths: {
      "/healthz": {
        get: {
          summary: "liveness",
          responses: {
            "200": { description: "ok", content: { "text/plain": { schema: { type: "string" } } } },
          },
        },
      },
      "/runs": {
        get: {
          summary: "the runs, newest first (the `thaw status --json` shape)",
          parameters: [{
            name: "limit",
            in: "query",
            description: "most runs to list (1 to 1000, default 50)",
            schema: { type: "integer", minimum: 1, maximum: 1000, default: 50 },
          }],
          responses: {
            "200": json({ type: "array", items: ref("RunSummary") }, "the runs"),
            "400": error("limit is not a whole number from 1 to 1000"),
          },
        },
      },
      "/runs/{id}": {
        get: {
          summary: "the live report of a run, its state and predicted TTR",
          parameters: [runId, {
            name: "If-None-Match",
            in: "header",
            description: "the ETag of an earlier answer: 304 while nothing changed",
            schema: { type: "string" },
          }],
          responses: {
            "200": {
              ...json(ref("RunDetail"), "the run"),
              headers: { ETag: { schema: { type: "string" } } },
            },
            "304": { description: "nothing changed since the ETag sent in If-None-Match" },
            "404": error("no such run"),
          },
        },
      },
      "/runs/{id}/events": {
        get: {
          summary: "the run's events as Server-Sent Events, until it ends",
          description: "Events: `step` (StepEvent, id SEQ), `milestone` (MilestoneEvent, id " +
            "SEQ.K), `progress` (ProgressEvent, no id), `state` (StateEvent, no id), `end` " +
            "(EndEvent, id `end`, then the stream closes). Reconnect with Last-Event-ID to get " +
            "everything after it; after `end` the answer is 204.",
          parameters: [runId, {
            name: "Last-Event-ID",
            in: "header",
            description: "the id of the last event received",
            schema: { type: "string" },
          }],
          responses: {
            "200": {
              description: "the event stream",
              content: { "text/event-stream": { schema: { type: "string" } } },
            },
            "204": { description: "the client has seen the end already" },
            "400": error("Last-Event-ID is not an id of this run's stream"),
            "404": error("no such run"),
            "503": {
              ...error("too many event streams open (THAW_MAX_STREAMS, default 100)"),
              headers: { "Retry-After": { schema: { type: "integer" } } },
            },
          },
        },
      },
      "/metrics": {
        get: {
          summary:
            "Prometheus text format: runs by state; steps, bytes, TTR and BTN of recent runs",
          responses: {
            "200": {
              description: "the metrics",
              content: { "text/plain": { schema: { type: "string" } } },
            },
          },
        },
      },
      "/openapi.json": {
        get: {
          summary: "this document",
          responses: { "200": json({ type: "object" }, "the OpenAPI document") },
        },
      },
      "/runs/{id}/steps/{step}/approve": {
        post: {
          summary: "approve a step that waits for approval (or will)",
          ...auth,
          parameters: [runId, stepId],
          responses: {
            "202": json(ref("Accepted"), "the approval is queued; the engine takes it at once"),
            ...denied,
            "404": error("no such run, or the run has no such step"),
            "409": error(
              "the run is not running, or the step has no approval gate and does not wait, or " +
                "has gone past it",
            ),
          },
        },
      },
      "/runs/{id}/steps/{step}/done": {
        post: {
          summary: "mark a step done by hand (a person did its work); its dependents may start",
          description: "For a running run: a step that waits for a person (its approval, or it " +
            "was running when its engine died). For a run with no engine (interrupted, failed, " +
            "cancelled): any step not done; `thaw resume` keeps it done.",
          ...auth,
          parameters: [runId, stepId],
          responses: {
            "200": json(ref("Accepted"), "the run has no engine: the step is recorded done"),
            "202": json(ref("Accepted"), "queued; the engine takes it at once"),
            ...denied,
            "404": error("no such run, or the run has no such step"),
            "409": error("the run is done, the step is done, or it does not wait for a person"),
          },
        },
      },
      "/runs/{id}/cancel": {
        post: {
          summary: "cancel the run: its processes are stopped, nothing half-written is left",
          ...auth,
          parameters: [runId],
          responses: {
            "200": json(ref("Accepted"), "the run is cancelled"),
            "202": json(ref("Accepted"), "asked; the engine has not confirmed within 5 s"),
            ...denied,
            "404": error("no such run"),
            "409": error("the run has already ended"),
          },
        },
      },
    },
  };
  cached = JSON.stringify(doc);
  return cached;
}
