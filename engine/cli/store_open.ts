/**
 * The state store as the commands see it: which store `--store` names (resolved against the
 * user's directory), opening it for a command and closing it after, and what planning reads from
 * it when it exists (the history's estimates, the last live drill's service level). The store's
 * code (Kysely, the dialects) is loaded only when a store is opened: planning with no store does
 * without.
 *
 * @module
 */
import { resolve } from "node:path";
import type { Estimates } from "../plan/graph.ts";
import type { Runbook } from "../runbook/model.ts";
import type { Store } from "../store/types.ts";
import { defaultStore, fileStorePath, logRoot } from "../store/paths.ts";

/** Opens the store at `pathOrUrl` (`store/mod.ts`, loaded on first use). */
async function openStore(pathOrUrl: string): Promise<Store> {
  return await (await import("../store/mod.ts")).openStore(pathOrUrl);
}

/** The user's directory, where a relative `--store` resolves. */
export interface StoreContext {
  readonly cwd: string;
}

/** The store named by `--store` (default `$THAW_STORE`, else `.thaw/state.db` under `cwd`). */
export function storePath(ctx: StoreContext, flag: string | undefined): string {
  flag ??= defaultStore(); // $THAW_STORE, else .thaw/state.db
  // A URL stays a URL (`openStore` refuses the schemes it does not know): never a file "mysql:".
  if (flag && /^file:\/\//i.test(flag)) return fileStorePath(flag);
  if (flag && (/^[a-z][a-z0-9+.-]*:\/\//i.test(flag) || flag === ":memory:")) return flag;
  return resolve(ctx.cwd, flag);
}

/** Opens the store for a command, and closes it after; `body` gets the directory of run logs. */
export async function withStore(
  ctx: StoreContext,
  flag: string | undefined,
  body: (store: Store, logs: string) => Promise<number>,
): Promise<number> {
  const path = storePath(ctx, flag);
  const store = await openStore(path);
  try {
    return await body(store, logRoot(path, ctx.cwd));
  } finally {
    await store.close();
  }
}

/** The store, if its file exists (planning never creates one). */
export async function existingStore(path: string): Promise<Store | undefined> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) return await openStore(path); // refused if unknown
  try {
    await Deno.stat(path);
  } catch {
    return undefined;
  }
  return await openStore(path);
}

/** Estimates from the store's history of `runbook`, when there is a store. */
export async function storedEstimates(path: string, runbook: Runbook): Promise<Estimates> {
  const store = await existingStore(path);
  if (!store) return {};
  try {
    const { historyEstimates } = await import("../plan/history.ts");
    return await historyEstimates(store, runbook);
  } finally {
    await store.close();
  }
}

/** The last live drill's service level of `runbook`, for a simulated drill (`service_level/last.ts`). */
export async function storedLastMeasured(path: string, runbook: Runbook) {
  if (!runbook.serviceLevel.length) return undefined;
  const store = await existingStore(path);
  if (!store) return undefined;
  try {
    const { lastMeasuredOf } = await import("../service_level/last.ts");
    return await lastMeasuredOf(store, runbook.name, runbook.serviceLevel.map((p) => p.name));
  } finally {
    await store.close();
  }
}
