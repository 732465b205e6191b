/**
 * `thaw standby`: stands by for the runs of a shared store (contract revision 3, "Shared state
 * and takeover"). About every second it asks the store for running runs whose lease expired (their
 * engine died, or lost the store), takes one over (exactly one standby wins) and carries it on
 * under the resume rules, as `thaw resume` would: done steps stay done, partial fetches continue,
 * a run step that was running and is not idempotent waits for a person. Once that run ends it
 * stands by again. Any number of standbys may watch one store, on other machines.
 *
 * Ctrl-C (or SIGTERM) while standing by stops it (exit 0); while it carries a run on, it cancels
 * that run as it would for `thaw run`, then stops.
 *
 * @module
 */
import { RunbookErrors, UsageError } from "../runbook/errors.ts";
import type { Strategy } from "../runbook/model.ts";
import { StoreError } from "../store/errors.ts";
import type { Lease, LeaseState, LeaseStore, Store } from "../store/types.ts";
import { engineName, EngineStopped, hasLeases, LEASE_TTL_MS } from "../live/lease.ts";
import { findRun, storedRunbook } from "../live/runs.ts";
import { type LiveCliContext, liveRun } from "./live.ts";
import type { Invocation } from "./args.ts";
import { withStore } from "./store_open.ts";

/** How often a standby asks the store for expired leases (ms). */
export const POLL_MS = 1000;

/** How a standby stands by (tests shorten the times). */
export interface StandbyOptions {
  /** Between two looks at the store (default {@link POLL_MS}). */
  readonly pollMs?: number;
  /** The lease it takes runs with (default `LEASE_TTL_MS`). */
  readonly ttlMs?: number;
  /** Aborting it stops the standby (default: on SIGINT or SIGTERM). */
  readonly signal?: AbortSignal;
}

/** `thaw standby [--store URL]`, from the command line. */
export function standbyCommand(inv: Invocation, ctx: LiveCliContext): Promise<number> {
  if (inv.positionals.length) throw new UsageError("standby takes no arguments: thaw standby");
  return withStore(ctx, inv.values.store, (store, logs) => standby(ctx, store, logs));
}

/** `thaw standby`: stands by until stopped; returns the exit code. */
export async function standby(
  ctx: LiveCliContext,
  store: Store,
  logRoot: string,
  options: StandbyOptions = {},
): Promise<number> {
  if (!hasLeases(store)) throw new UsageError("this store has no leases: thaw standby needs one");
  const ac = new AbortController();
  const signal = options.signal ?? ac.signal;
  const stop = () => ac.abort();
  if (!options.signal) {
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  }
  const holder = engineName();
  const ttlMs = options.ttlMs ?? LEASE_TTL_MS;
  const say = (text: string) =>
    ctx.stdout(`${new Date().toISOString()} standby ${holder}: ${text}\n`);
  const where = (store as { path?: string }).path ?? "the store";
  say(`standing by on ${where} (takes over runs whose lease expired; lease ${ttlMs / 1000}s)`);
  /** Runs this standby could not carry on (its runbook is refused here): left to others. */
  const refused = new Set<string>();
  let unreachable = false;
  try {
    while (!signal.aborted) {
      let expired: LeaseState[] = [];
      try {
        expired = await store.expiredLeases();
        if (unreachable) say("the store answers again");
        unreachable = false;
      } catch (e) {
        if (!(e instanceof StoreError)) throw e;
        if (!unreachable) {
          say(`${e.message}; trying again every ${(options.pollMs ?? POLL_MS) / 1000}s`);
        }
        unreachable = true;
      }
      for (const l of expired) {
        if (signal.aborted || refused.has(l.run)) continue;
        const taken = await store.takeLease(l.run, holder, ttlMs).catch(() => undefined);
        if (taken === undefined) continue; // another standby won, or the engine came back
        say(
          `took over run ${l.run} from ${l.holder || "its engine"} (its lease expired ` +
            `${Math.max(0, l.now - l.expiresAt)}ms before, by the database's clock)`,
        );
        const ok = await carryOn(ctx, store, taken, logRoot, { holder, ttlMs, taken }, say);
        if (!ok) refused.add(l.run);
        if (!signal.aborted) say("standing by again");
      }
      await sleep(options.pollMs ?? POLL_MS, signal);
    }
  } finally {
    if (!options.signal) {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
    }
  }
  say("stopped");
  return 0;
}

/**
 * Carries on the run of `lease` as its engine, to its end; false when this machine cannot run
 * it (its runbook is refused here: the lease is left to expire, for another standby).
 */
async function carryOn(
  ctx: LiveCliContext,
  store: LeaseStore,
  lease: Lease,
  logRoot: string,
  leaseOptions: { holder: string; ttlMs: number; taken: Lease },
  say: (text: string) => void,
): Promise<boolean> {
  try {
    const run = await findRun(store, lease.run, false);
    const rb = await storedRunbook(run);
    const flags = { strategy: run.strategy as Strategy, vars: { ...run.vars }, json: false };
    const view = { ...ctx, tty: false };
    const report = await liveRun(view, store, rb, flags, logRoot, run, leaseOptions);
    say(`run ${run.id} ended: ${report.outcome}`);
    return true;
  } catch (e) {
    if (e instanceof EngineStopped) say(e.message);
    else if (e instanceof StoreError) say(`${e.message}; run ${lease.run} is left to a standby`);
    else if (e instanceof UsageError || e instanceof RunbookErrors) {
      say(`cannot carry run ${lease.run} on here: ${e.message}; leaving it to another standby`);
      return false;
    } else say(`internal error carrying run ${lease.run} on: ${(e as Error)?.message ?? e}`);
    return true;
  }
}

/** Sleeps `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
