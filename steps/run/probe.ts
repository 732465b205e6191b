/**
 * Readiness probes: `http` (a GET answered 2xx), `tcp` (a connection accepted) or `run` (a command
 * exiting 0), polled every `intervalMs` until one passes or `timeoutMs` has gone by.
 *
 * @module
 */

import { hostPort, networkError, oneLine } from "./net.ts";
import type { Process } from "../kind.ts";
import { localTarget } from "../targets/local.ts";
import type { ProbeSpec, StepContext } from "../types.ts";

/**
 * What a probe needs: the common context (a `run` probe starts on its `target`, this machine by
 * default), and the shell for `run` probes (`bash` by default).
 */
export interface ProbeContext
  extends Pick<StepContext, "signal" | "clock" | "env" | "cwd" | "target"> {
  readonly shell?: string;
  /** `run` probes run as this system user (the step's `user:`). */
  readonly user?: string | undefined;
}

/** The outcome of {@linkcode probe}. */
export type ProbeResult =
  | { readonly ok: true; readonly afterMs: number }
  | { readonly ok: false; readonly reason: string };

/** No single attempt waits longer than this, whatever time is left. */
const ATTEMPT_MAX_MS = 5000;
/** Nor shorter: an attempt with no time to answer proves nothing. */
const ATTEMPT_MIN_MS = 100;

/**
 * A duration for a person: `350ms`, `1.5s`, `10s`, `2m`, `2m30s`, `1h5m`.
 *
 * @example
 * ```ts
 * import { formatMs } from "./probe.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatMs(150_000), "2m30s");
 * ```
 */
export function formatMs(ms: number): string {
  if (!(ms >= 0)) ms = 0;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(ms < 10_000 ? 1 : 0))}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ""}`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)}h${m % 60 ? `${m % 60}m` : ""}`;
}

/** One attempt: undefined when it passed, otherwise what it saw. Aborted by `signal`. */
type Attempt = (ms: number, signal: AbortSignal) => Promise<string | undefined>;

/** Runs `f` with a signal that aborts after `ms` (real time) or when `outer` aborts. */
async function within<T>(
  ms: number,
  outer: AbortSignal,
  f: (signal: AbortSignal, timedOut: () => boolean) => Promise<T>,
): Promise<T> {
  const ac = new AbortController();
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    ac.abort(new DOMException("attempt timed out", "TimeoutError"));
  }, ms);
  const onAbort = () => ac.abort(outer.reason);
  outer.addEventListener("abort", onAbort, { once: true });
  try {
    return await f(ac.signal, () => late);
  } finally {
    clearTimeout(timer);
    outer.removeEventListener("abort", onAbort);
  }
}

function httpAttempt(url: string): Attempt {
  return (ms, outer) =>
    within(ms, outer, async (signal, late) => {
      try {
        const res = await fetch(url, { signal });
        await res.body?.cancel().catch(() => {});
        return res.status >= 200 && res.status < 300 ? undefined : String(res.status);
      } catch (e) {
        return late() ? `no answer within ${formatMs(ms)}` : networkError(e);
      }
    });
}

function tcpAttempt(target: string): Attempt {
  const addr = hostPort(target);
  return (ms, outer) =>
    within(ms, outer, async (signal, late) => {
      if (!addr) return "not a host:port";
      try {
        const conn = await Deno.connect({ ...addr, transport: "tcp", signal });
        conn.close();
        return undefined;
      } catch (e) {
        return late() ? `no answer within ${formatMs(ms)}` : networkError(e);
      }
    });
}

/** The attempt of a probe of any kind. */
function attemptOf(spec: ProbeSpec, ctx: ProbeContext): Attempt {
  return spec.kind === "http"
    ? httpAttempt(spec.target)
    : spec.kind === "tcp"
    ? tcpAttempt(spec.target)
    : runAttempt(spec.target, ctx);
}

/** A `run` probe: the command starts on the step's target (a host's probe runs there). */
function runAttempt(command: string, ctx: ProbeContext): Attempt {
  const target = ctx.target ?? localTarget;
  return async (ms, outer) => {
    let stderr = "";
    const decoder = new TextDecoder();
    let group: Process;
    try {
      group = await target.spawn({
        shell: ctx.shell ?? "bash",
        command,
        cwd: ctx.cwd,
        env: ctx.env,
        user: ctx.user,
        stderr: (chunk) => stderr = (stderr + decoder.decode(chunk, { stream: true })).slice(-4096),
      });
    } catch (e) {
      return `cannot start ${ctx.shell ?? "bash"}: ${
        oneLine(e instanceof Error ? e.message : String(e))
      }`;
    }
    const g = group;
    return await within(ms, outer, async (signal) => {
      const stopped = new Promise<"stopped">((resolve) => {
        if (signal.aborted) resolve("stopped");
        signal.addEventListener("abort", () => resolve("stopped"), { once: true });
      });
      const first = await Promise.race([g.status, stopped]);
      if (first === "stopped") {
        await target.killGroup(g.pgid, outer.aborted ? 0 : 1000).catch(() => {});
        await g.status;
        await g.closeOutput();
        return `still running after ${formatMs(ms)} (killed)`;
      }
      // Whatever the command left behind in its group goes with it.
      await target.killGroup(g.pgid, 1000).catch(() => {});
      await Promise.race([g.drained, new Promise((r) => setTimeout(r, 100))]);
      await g.closeOutput();
      if (first.code === 0) return undefined;
      const last = stderr.split("\n").map((l) => oneLine(l)).filter((l) => l !== "").pop();
      const how = first.signal ? `killed by ${first.signal}` : `exit ${first.code}`;
      return last ? `${how}: ${last}` : how;
    });
  };
}

/**
 * Polls `spec` every `intervalMs` until an attempt passes or `timeoutMs` has gone by (times on
 * `ctx.clock`). Each attempt gets what is left of the time (at most 5 s, at least 100 ms): an HTTP
 * request or connection is abandoned, a `run` command's process group killed. Stops at once when
 * `ctx.signal` aborts (reason `cancelled`).
 *
 * The failure reason names the target, what the last attempt saw and how long it was polled:
 * `http://127.0.0.1:8000/healthz: 503 for 2m`, `127.0.0.1:5432: connection refused for 30s`,
 * `run pg_isready: exit 2 for 1m`.
 *
 * @example A TCP port that is listening
 * ```ts
 * import { probe } from "./probe.ts";
 * import { realClock } from "../types.ts";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const result = await probe(
 *   { kind: "tcp", target: `127.0.0.1:${listener.addr.port}`, timeoutMs: 1000, intervalMs: 100 },
 *   { signal: new AbortController().signal, clock: realClock, env: {}, cwd: Deno.cwd() },
 * );
 * listener.close();
 * assert(result.ok);
 * ```
 */
export async function probe(spec: ProbeSpec, ctx: ProbeContext): Promise<ProbeResult> {
  const { clock, signal } = ctx;
  const attempt = attemptOf(spec, ctx);
  const label = spec.kind === "run" ? `run ${oneLine(spec.target, 60)}` : spec.target;
  const start = clock.now();
  let last = "not tried";
  for (;;) {
    if (signal.aborted) return { ok: false, reason: "cancelled" };
    const left = spec.timeoutMs - (clock.now() - start);
    const seen = await attempt(
      Math.min(ATTEMPT_MAX_MS, Math.max(ATTEMPT_MIN_MS, left)),
      signal,
    ).catch((e) => oneLine(e instanceof Error ? e.message : String(e)));
    if (signal.aborted) return { ok: false, reason: "cancelled" };
    const elapsed = clock.now() - start;
    if (seen === undefined) return { ok: true, afterMs: elapsed };
    last = seen;
    if (elapsed >= spec.timeoutMs) {
      return { ok: false, reason: `${label}: ${last} for ${formatMs(elapsed)}` };
    }
    try {
      await clock.sleep(Math.max(1, Math.min(spec.intervalMs, spec.timeoutMs - elapsed)), signal);
    } catch {
      return { ok: false, reason: "cancelled" };
    }
  }
}

/**
 * One attempt of `spec`, given at most `ms` (real time): true when it passes. Never throws.
 *
 * @example Nothing listens on a port just closed
 * ```ts
 * import { probeOnce } from "./probe.ts";
 * import { realClock } from "../types.ts";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const target = `127.0.0.1:${listener.addr.port}`;
 * const ctx = { signal: new AbortController().signal, clock: realClock, env: {}, cwd: "/" };
 * const spec = { kind: "tcp", target, timeoutMs: 1000, intervalMs: 100 } as const;
 * assert(await probeOnce(spec, ctx));
 * listener.close();
 * assert(!(await probeOnce(spec, ctx)));
 * ```
 */
export async function probeOnce(spec: ProbeSpec, ctx: ProbeContext, ms = 1000): Promise<boolean> {
  const seen = await attemptOf(spec, ctx)(ms, ctx.signal).catch(() => "error");
  return seen === undefined;
}

/** The `host:port` an `http` or `tcp` probe knocks on (the default port of the scheme for URLs). */
export function probeAddress(spec: ProbeSpec): string {
  if (spec.kind !== "http") return spec.target;
  try {
    const url = new URL(spec.target);
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    return `${url.hostname}:${port}`;
  } catch {
    return spec.target;
  }
}

/**
 * For a drill: undefined when `ready` is a `run` probe or does not pass yet (one attempt, at most
 * `ms`); otherwise why the step must fail: "something else already answers on 127.0.0.1:8000".
 * A drill proves the service it started, never a stale one from an earlier run.
 */
export async function staleService(
  ready: ProbeSpec,
  ctx: ProbeContext,
  ms = 1000,
): Promise<string | undefined> {
  if (ready.kind === "run") return undefined;
  if (!(await probeOnce(ready, ctx, ms))) return undefined;
  return `something else already answers on ${probeAddress(ready)} before the step started ` +
    `(${ready.target} passes): stop it first, a drill must prove the service it starts`;
}
