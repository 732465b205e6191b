/**
 * The durable store of live runs: the {@link Store} interface (with {@link Leases}), its one
 * implementation over Kysely with a dialect for SQLite and one for PostgreSQL, and
 * {@link openStore}, which picks the dialect from a path or URL.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { openStore } from "./mod.ts";
 * const store = await openStore(":memory:"); // or DEFAULT_STORE, or any file path
 * await store.createRun({
 *   id: "r1", runbook: "vod", file: "/rb/vod.yaml", fileSha256: "00", mode: "live",
 *   drill: false, strategy: "aggressive", vars: {}, steps: ["fetch-db", "start"], startedAt: 0,
 *   pid: 1, host: "dr1",
 * });
 * await store.recordSteps("r1", [
 *   { step: "start", state: "frozen", at: 2, detail: "waits for fetch-db" },
 *   { step: "start", state: "running", at: 9 },
 * ]);
 * const [start] = await store.steps("r1");
 * equal(start?.frozenS, 7);
 * await store.addCommand("r1", "cancel"); // from `thaw cancel`, in another process
 * equal((await store.takeCommands("r1"))[0]?.kind, "cancel");
 * await store.close();
 * ```
 *
 * @module
 */
import { openSqlite } from "./dialects/sqlite.ts";
import { StoreError } from "./errors.ts";
import { DEFAULT_STORE, fileStorePath, isPostgresUrl } from "./paths.ts";
import { KyselyStore } from "./kysely_store.ts";

export type * from "./types.ts";
export { LeaseLost, StoreError } from "./errors.ts";
export { KyselyStore } from "./kysely_store.ts";
export { BUSY_TIMEOUT_MS } from "./dialects/sqlite.ts";
export { redactUrl } from "./dialects/url.ts";
/** The store over SQLite (the same class as every dialect's; kept for older callers). */
export { KyselyStore as SqliteStore } from "./kysely_store.ts";

export { DEFAULT_STORE, defaultStore, fileStorePath, isPostgresUrl, logRoot } from "./paths.ts";

/**
 * Opens (creating if needed) the SQLite store at `path`, or an in-memory one for `:memory:`
 * (see `dialects/sqlite.ts`).
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { openSqliteStore } from "./mod.ts";
 * const store = await openSqliteStore(":memory:");
 * await store.createRun({
 *   id: "r1", runbook: "vod", file: "/rb/vod.yaml", fileSha256: "00", mode: "live",
 *   drill: false, strategy: "aggressive", vars: {}, steps: ["fetch-db"], startedAt: 0,
 *   pid: 1, host: "dr1",
 * });
 * await store.recordSteps("r1", [{ step: "fetch-db", state: "running", at: 0 }]);
 * const [step] = await store.steps("r1");
 * equal(step?.state, "running");
 * equal(step?.startS, 0);
 * await store.close();
 * ```
 */
export async function openSqliteStore(path: string): Promise<KyselyStore> {
  return new KyselyStore(await openSqlite(path));
}

/**
 * Opens the PostgreSQL store at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`), migrating
 * its schema (see `dialects/postgres.ts`); `max` bounds its pool of connections.
 */
export async function openPostgresStore(url: string, max?: number): Promise<KyselyStore> {
  // Loaded on first use: the `pg` driver costs start-up time to every command that does not need it.
  const { openPostgres } = await import("./dialects/postgres.ts");
  return new KyselyStore(await openPostgres(url, max));
}

/**
 * Opens the store at `pathOrUrl`: an SQLite file path, a `file://` URL, `:memory:`, or a
 * `postgres://` / `postgresql://` URL. Any other URL scheme is refused with a
 * {@link StoreError}.
 *
 * @example
 * ```ts
 * import { equal, rejects } from "node:assert/strict";
 * import { openStore, StoreError } from "./mod.ts";
 * const store = await openStore(":memory:");
 * equal(await store.getRun("nope"), undefined);
 * await store.close();
 * await rejects(openStore("mysql://db/thaw"), StoreError);
 * ```
 */
export function openStore(pathOrUrl: string): Promise<KyselyStore> {
  if (isPostgresUrl(pathOrUrl)) return openPostgresStore(pathOrUrl);
  if (/^file:\/\//i.test(pathOrUrl)) {
    try {
      return openSqliteStore(fileStorePath(pathOrUrl));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  if (/^[a-z][a-z0-9+.-]+:\/\//i.test(pathOrUrl)) {
    return Promise.reject(
      new StoreError(
        `cannot open the store ${pathOrUrl}: unknown kind of store; use an SQLite file ` +
          `path (default ${DEFAULT_STORE}) or a postgres:// URL`,
      ),
    );
  }
  return openSqliteStore(pathOrUrl);
}
