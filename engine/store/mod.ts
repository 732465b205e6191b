/**
 * The durable store of live runs: the {@link Store} interface, its SQLite implementation, and
 * {@link openStore}, which picks the implementation from a path or URL.
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
import { fileURLToPath } from "node:url";
import { StoreError } from "./errors.ts";
import { openSqliteStore } from "./sqlite.ts";
import type { Store } from "./types.ts";

export type * from "./types.ts";
export { StoreError } from "./errors.ts";
export { BUSY_TIMEOUT_MS, openSqliteStore, SqliteStore } from "./sqlite.ts";

/** Where the store lives when none is named: relative to the directory thaw runs in. */
export const DEFAULT_STORE = ".thaw/state.db";

/**
 * The path of a `file://` store URL; a {@link StoreError} when it names no local file.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { fileStorePath } from "./mod.ts";
 * equal(fileStorePath("file:///var/lib/thaw/state.db"), "/var/lib/thaw/state.db");
 * ```
 */
export function fileStorePath(url: string): string {
  try {
    return fileURLToPath(url);
  } catch (e) {
    throw new StoreError(
      `cannot open the store ${url}: ${(e as Error).message}; use file:///ABSOLUTE/PATH ` +
        `or a plain path`,
      { cause: e },
    );
  }
}

/**
 * Opens the store at `pathOrUrl`: an SQLite file path, a `file://` URL, or `:memory:`.
 * `postgres://` and `postgresql://` URLs are refused with a {@link StoreError} (not supported
 * yet); so is any other URL scheme.
 *
 * @example
 * ```ts
 * import { equal, rejects } from "node:assert/strict";
 * import { openStore, StoreError } from "./mod.ts";
 * const store = await openStore(":memory:");
 * equal(await store.getRun("nope"), undefined);
 * await store.close();
 * await rejects(openStore("postgres://db/thaw"), StoreError);
 * ```
 */
export function openStore(pathOrUrl: string): Promise<Store> {
  if (/^postgres(ql)?:\/\//i.test(pathOrUrl)) {
    return Promise.reject(
      new StoreError(
        `cannot open the store ${pathOrUrl}: PostgreSQL is not supported yet; ` +
          `use an SQLite file path (default ${DEFAULT_STORE})`,
      ),
    );
  }
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
        `cannot open the store ${pathOrUrl}: unknown kind of store; ` +
          `use an SQLite file path (default ${DEFAULT_STORE})`,
      ),
    );
  }
  return openSqliteStore(pathOrUrl);
}
