/**
 * The HTTP status API: a Hono app over the store ({@link createApp}) and its server
 * ({@link serveApi}).
 *
 * @example
 * ```ts
 * import { createApp } from "./mod.ts";
 * import { openStore } from "../store/mod.ts";
 * import assert from "node:assert/strict";
 * const store = await openStore(":memory:");
 * const res = await createApp({ store }).request("/runs");
 * assert.equal(res.status, 200);
 * assert.equal((await res.json()).length, 0);
 * await store.close();
 * ```
 *
 * @module
 */
export { ApiError, type ApiOptions, createApp } from "./app.ts";
export { authorize, type Verdict } from "./auth.ts";
export { type Cursor, parseCursor } from "./events.ts";
export { METRICS_TYPE, RECENT } from "./metrics.ts";
export { openApiText } from "./openapi.ts";
export { type ApiServer, DEFAULT_LISTEN, parseListen, serveApi } from "./serve.ts";
export { RunsView, type Snapshot, type ViewOptions } from "./view.ts";
