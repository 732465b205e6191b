/**
 * The CLI's side of the HTTP API: `thaw serve`, and `--listen` during `run`, `drill` and `resume`.
 *
 * @module
 */
import { UsageError } from "../runbook/errors.ts";
import type { Store } from "../store/types.ts";
import type { Invocation } from "./args.ts";
import type { CliContext } from "./cli.ts";
import { withStore } from "./store_open.ts";

/** The API and its pages: loaded only when something serves them (`serve`, `--listen`). */
const api = () => import("../api/serve.ts");

/** Where the serving commands write. */
export interface ServeContext {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/** The flags that serve the API. */
export interface ServeFlags {
  readonly listen?: string | undefined;
  readonly token?: string | undefined;
}

/** The token changes need: `--token`, else `THAW_TOKEN`. */
function tokenOf(flags: ServeFlags): string | undefined {
  return flags.token || Deno.env.get("THAW_TOKEN") || undefined;
}

function started(url: string, token: string | undefined): string {
  const loopback = /^http:\/\/(127\.[\d.]+|\[::1\]|localhost):/.test(url);
  return `status API on ${url}` +
    (token ? "" : " (read-only: set THAW_TOKEN to allow approve and cancel)") +
    (loopback ? "" : "; not on loopback: anyone who can reach it can read the runs");
}

/** `thaw serve [--listen HOST:PORT] [--token TOKEN]`. */
export function serveCommand(inv: Invocation, ctx: CliContext): Promise<number> {
  if (inv.positionals.length) throw new UsageError("serve takes no arguments: thaw serve");
  return withStore(ctx, inv.values.store, (store) => serve(ctx, store, inv.values));
}

/** `thaw serve`: the API over `store` until SIGINT or SIGTERM. */
export async function serve(ctx: ServeContext, store: Store, flags: ServeFlags): Promise<number> {
  const token = tokenOf(flags);
  const { DEFAULT_LISTEN, serveApi } = await api();
  const server = await serveApi({ store, token, listen: flags.listen ?? DEFAULT_LISTEN });
  ctx.stdout(`thaw serve: ${started(server.url, token)}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
      resolve();
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  });
  await server.close();
  ctx.stdout("thaw serve: stopped\n");
  return 0;
}

/** How long `--listen` waits, once the run ended, for its event streams to send their `end`. */
export const LISTEN_DRAIN_MS = 2000;

/**
 * Runs `body` with the API served beside it when `--listen` is given (on standard error, so that
 * `--json` keeps standard output for reports).
 */
export async function withListen<T>(
  ctx: ServeContext,
  store: Store,
  flags: ServeFlags,
  body: (url?: string) => Promise<T>,
): Promise<T> {
  if (flags.listen === undefined) return await body();
  const token = tokenOf(flags);
  const server = await (await api()).serveApi({ store, token, listen: flags.listen });
  ctx.stderr(`thaw: ${started(server.url, token)}\n`);
  try {
    return await body(server.url); // the address, for links (notifications give the run's page)
  } finally {
    // The run has ended in the store: its watchers get their `end` event before the server goes.
    await server.close({ drainMs: LISTEN_DRAIN_MS });
  }
}
