/**
 * The HTTP status API as a Hono app over a {@link Store}: what incident tools and dashboards poll
 * while a recovery runs. Test it without a socket through `app.request()`; serve it with
 * {@link serveApi} (`thaw serve`, or `--listen` in the engine's own process).
 *
 * @module
 */
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { streamSSE } from "hono/streaming";
import {
  findRun,
  requestApproval,
  requestCancel,
  requestDone,
  stateOf,
  SteerError,
} from "../live/runs.ts";
import { StoreError } from "../store/errors.ts";
import type { Store } from "../store/types.ts";
import { authorize } from "./auth.ts";
import { parseCursor, streamEvents, StreamGate, type StreamOptions } from "./events.ts";
import { tooManyStreams } from "./limits.ts";
import { collect, METRICS_TYPE, render } from "./metrics.ts";
import { openApiText } from "./openapi.ts";
import { RunsView, type Snapshot, type ViewOptions } from "./view.ts";
import { addPages } from "../pages/routes.ts";

/** What the app serves, and how. */
export interface ApiOptions {
  readonly store: Store;
  /** The token that changes need; without one, changes are refused. */
  readonly token?: string | undefined;
  /** How fresh answers are kept. */
  readonly view?: ViewOptions;
  /** How event streams poll the store. */
  readonly events?: Omit<StreamOptions, "signal">;
  /** Ends the event streams (the server is shutting down). */
  readonly signal?: AbortSignal;
  /** Caps and counts the open event streams (default: a gate of `DEFAULT_MAX_STREAMS`). */
  readonly streams?: StreamGate;
  /** How long `POST /runs/ID/cancel` waits for the engine to confirm (ms, default 5000). */
  readonly cancelWaitMs?: number;
  /** Where internal errors are logged (default: standard error). */
  readonly log?: (line: string) => void;
}

/** A request the API refuses, with its status. */
export class ApiError extends Error {
  /** The HTTP status. */
  readonly status: 400 | 404 | 405;
  /** Builds the error. */
  constructor(status: 400 | 404 | 405, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/**
 * The API over `options.store`.
 *
 * @example
 * ```ts
 * import { createApp } from "./app.ts";
 * import { openStore } from "../store/mod.ts";
 * import assert from "node:assert/strict";
 * const store = await openStore(":memory:");
 * const app = createApp({ store });
 * assert.equal((await app.request("/healthz")).status, 200);
 * const missing = await app.request("/runs/01NOPE");
 * assert.equal(missing.status, 404);
 * assert("error" in await missing.json());
 * await store.close();
 * ```
 */
export function createApp(options: ApiOptions): Hono {
  const { store } = options;
  const view = new RunsView(store, options.view);
  const streams = options.streams ?? new StreamGate();
  const log = options.log ?? ((line: string) => console.error(line));
  const app = new Hono();

  const changes = createMiddleware(async (c, next) => {
    const verdict = authorize(c.req.header("authorization"), options.token);
    if (verdict === "no-token-configured") {
      return c.json({
        error: "changes are refused: this server has no token " +
          "(start it with THAW_TOKEN set, or --token)",
        status: 403,
      }, 403);
    }
    if (verdict !== "ok") {
      return c.json(
        {
          error: verdict === "missing"
            ? "changes need an Authorization: Bearer TOKEN header"
            : "wrong token",
          status: 401,
        },
        401,
        { "WWW-Authenticate": 'Bearer realm="thaw"' },
      );
    }
    return await next();
  });

  app.get("/healthz", (c) => c.text("ok"));
  app.get(
    "/openapi.json",
    () => new Response(openApiText(), { headers: { "Content-Type": "application/json" } }),
  );
  app.get("/runs", async (c) => answer(c.req.raw, await view.list(limitOf(c.req.query("limit")))));
  app.get("/runs/:id", (c): Response | Promise<Response> => {
    const id = c.req.param("id");
    // The hot path of every poller: a fresh answer is served without waiting for anything.
    const fresh = view.peek(id);
    if (fresh) return answer(c.req.raw, fresh);
    const refresh = async (): Promise<Response> => {
      const snapshot = await view.detail(id);
      if (!snapshot) await findRun(store, id, false); // throws the 404 with suggestions
      return answer(c.req.raw, snapshot!);
    };
    return refresh();
  });
  app.get("/runs/:id/events", async (c) => {
    const header = c.req.header("last-event-id");
    const cursor = parseCursor(header);
    if (!cursor) {
      throw new ApiError(
        400,
        `Last-Event-ID "${header}" is not an id this stream sends (SEQ, SEQ.K or "end")`,
      );
    }
    const run = await findRun(store, c.req.param("id"), false);
    if (cursor.end) return c.body(null, 204);
    if (cursor.seq > 0) {
      const [next] = await store.stepEvents(run.id, cursor.seq - 1);
      if (next?.seq !== cursor.seq) {
        throw new ApiError(
          400,
          `Last-Event-ID ${header} is past the last event of run ${run.id}; ` +
            "reconnect without it to get the stream from the start",
        );
      }
    }
    if (!streams.tryOpen()) return tooManyStreams(c, streams.max);
    return streamSSE(c, async (stream) => {
      try {
        await streamEvents(stream, store, run, cursor, {
          ...options.events,
          ...(options.signal ? { signal: options.signal } : {}),
          feeds: streams.feeds,
        });
      } catch (e) {
        log(`thaw serve: event stream of run ${run.id}: ${(e as Error)?.stack ?? e}`);
        await stream.writeSSE({ event: "error", data: JSON.stringify({ error: "internal error" }) })
          .catch(() => {});
      } finally {
        streams.close();
      }
    });
  });
  app.get("/metrics", async () => {
    const predicted = async (id: string) => (await view.predicted(id))?.ttr_s ?? null;
    return new Response(render(await collect(store, predicted)), {
      headers: { "Content-Type": METRICS_TYPE },
    });
  });
  app.post("/runs/:id/steps/:step/approve", changes, async (c) => {
    const run = await findRun(store, c.req.param("id"), false);
    const step = c.req.param("step");
    await requestApproval(store, run, step);
    return c.json({
      run: run.id,
      step,
      state: "running",
      message: `approval of ${step} queued; the engine takes it within a moment`,
    }, 202);
  });
  app.post("/runs/:id/steps/:step/done", changes, async (c) => {
    const run = await findRun(store, c.req.param("id"), false);
    const step = c.req.param("step");
    const how = await requestDone(store, run, step);
    return how === "queued"
      ? c.json({
        run: run.id,
        step,
        state: "running",
        message: `${step} marked done by hand; the engine takes it within a moment`,
      }, 202)
      : c.json({
        run: run.id,
        step,
        state: await stateOf(store, run),
        message: `${step} recorded done; thaw resume ${run.id} carries on after it`,
      }, 200);
  });
  app.post("/runs/:id/cancel", changes, async (c) => {
    const run = await findRun(store, c.req.param("id"), false);
    const state = await requestCancel(store, run, options.cancelWaitMs ?? 5000);
    if (state === "running") {
      return c.json({
        run: run.id,
        state,
        message: "asked the engine to cancel; it has not confirmed yet",
      }, 202);
    }
    return c.json({ run: run.id, state, message: `run ${run.id} is ${state}` }, 200);
  });
  // The pages for people: GET / (the runs) and GET /runs/ID/page (a run, live).
  addPages(app, store, view);
  // Any other method on a known path: 405, naming the methods the path has.
  const methods = new Map<string, Set<string>>();
  for (const r of app.routes) methods.set(r.path, (methods.get(r.path) ?? new Set()).add(r.method));
  for (const [path, known] of methods) {
    const allow = [...known].join(", ");
    app.all(path, (c) =>
      c.json(
        { error: `${c.req.method} is not allowed here; use ${allow}`, status: 405 },
        405,
        { Allow: allow },
      ));
  }

  app.notFound((c) =>
    c.json({
      error: `no such endpoint: ${c.req.method} ${c.req.path} (GET /openapi.json lists them)`,
      status: 404,
    }, 404)
  );
  app.onError((e, c) => {
    if (e instanceof ApiError || e instanceof SteerError) {
      return c.json({ error: e.message, status: e.status }, e.status);
    }
    if (e instanceof StoreError) {
      return c.json({ error: `the store is not available: ${e.message}`, status: 503 }, 503);
    }
    log(`thaw serve: internal error on ${c.req.method} ${c.req.path}: ${e?.stack ?? e}`);
    return c.json({ error: "internal error (the server's log has the details)", status: 500 }, 500);
  });
  return app;
}

/** A cached answer, or `304` when the client's `If-None-Match` names its ETag. */
function answer(req: Request, s: Snapshot): Response {
  const inm = req.headers.get("if-none-match");
  if (inm && matches(inm, s.etag)) {
    return new Response(null, { status: 304, headers: s.notModified as [string, string][] });
  }
  return new Response(s.body, { headers: s.headers as [string, string][] });
}

function matches(header: string, etag: string): boolean {
  if (header.trim() === "*") return true;
  return header.split(",").some((t) => t.trim().replace(/^W\//, "") === etag);
}

function limitOf(text: string | undefined): number {
  if (text === undefined) return 50;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 1000) {
    throw new ApiError(400, `limit=${text}: expected a whole number from 1 to 1000`);
  }
  return n;
}
