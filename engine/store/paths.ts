/**
 * Where the store is, without opening it: the default store, `file://` URLs, where run logs go.
 * Light (no database driver), so that a command can name its store before it needs to open it.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { StoreError } from "./errors.ts";

/** Where the store lives when none is named: relative to the directory thaw runs in. */
export const DEFAULT_STORE = ".thaw/state.db";

/**
 * The store to use when `--store` is not given: `THAW_STORE` when it is set and not empty,
 * else {@link DEFAULT_STORE}. `env` defaults to the process's environment.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultStore } from "./paths.ts";
 * assert.equal(defaultStore({ THAW_STORE: "postgres://thaw@db1/thaw" }), "postgres://thaw@db1/thaw");
 * assert.equal(defaultStore({}), ".thaw/state.db");
 * ```
 */
export function defaultStore(
  env: Readonly<Record<string, string | undefined>> = Deno.env.toObject(),
): string {
  const named = env.THAW_STORE?.trim();
  return named ? named : DEFAULT_STORE;
}

/**
 * The path of a `file://` store URL; a {@link StoreError} when it names no local file.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { fileStorePath } from "./paths.ts";
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
 * Where the step logs of runs kept in the store at `pathOrUrl` go: `logs/` beside an SQLite
 * file; `.thaw/logs` under `cwd` for a database server (the logs stay on the engine's machine).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { logRoot } from "./paths.ts";
 * assert.equal(logRoot("/srv/thaw/state.db", "/home/sre"), "/srv/thaw/logs");
 * assert.equal(logRoot("postgres://thaw@db1/thaw", "/home/sre"), "/home/sre/.thaw/logs");
 * ```
 */
export function logRoot(pathOrUrl: string, cwd: string): string {
  if (isPostgresUrl(pathOrUrl) || pathOrUrl === ":memory:") return join(cwd, ".thaw", "logs");
  const path = /^file:\/\//i.test(pathOrUrl) ? fileStorePath(pathOrUrl) : pathOrUrl;
  return join(resolve(cwd, dirname(path)), "logs");
}

/** True for a `postgres://` or `postgresql://` URL. */
export function isPostgresUrl(pathOrUrl: string): boolean {
  return /^postgres(ql)?:\/\//i.test(pathOrUrl);
}
