/**
 * The run step kind: a shell command in its own process group, with a per-attempt timeout,
 * retries with exponential backoff, an optional readiness probe, and background services.
 *
 * @module
 */

import { formatMs, probe, type ProbeResult, staleService } from "./probe.ts";
import type { ExitStatus } from "../process/process.ts";
import type { Process, Target } from "../kind.ts";
import { localTarget } from "../targets/local.ts";
import { lastLogLine, lastTargetLogLine, openLog, openTargetLog } from "./service.ts";
import type { RunContext, RunEffect, RunSpec, Service } from "../types.ts";

/** Grace between SIGTERM and SIGKILL when an attempt times out or fails its probe. */
const KILL_GRACE_MS = 2000;
/** Default grace of {@linkcode Service.stop}. */
const STOP_GRACE_MS = 5000;
/** How many lines of stderr are kept for the failure reason. */
const TAIL_LINES = 20;
/** How long to wait, once the group is gone, for the last output still in the pipes. */
const DRAIN_MS = 200;

// deno-lint-ignore no-control-regex
const CONTROL = /\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x1f\x7f]+/g;

function oneLine(text: string, max = 300): string {
  const line = text.slice(text.lastIndexOf("\r") + 1).replace(CONTROL, " ").trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** The last lines of a stream of bytes. */
class Tail {
  #decoder = new TextDecoder();
  #lines: string[] = [];
  #partial = "";

  push(chunk: Uint8Array): void {
    const parts = (this.#partial + this.#decoder.decode(chunk, { stream: true })).split("\n");
    this.#partial = (parts.pop() ?? "").slice(-4096);
    for (const p of parts) this.#lines.push(p.slice(-4096));
    if (this.#lines.length > TAIL_LINES) this.#lines.splice(0, this.#lines.length - TAIL_LINES);
  }

  /** The last line with something on it, cleaned for a one-line reason. */
  last(): string | undefined {
    return [...this.#lines, this.#partial].map((l) => oneLine(l)).filter((l) => l !== "").pop();
  }
}

/** Where the last line of a command's output comes from: its piped stderr, or its log file. */
interface LastLine {
  last(): Promise<string | undefined>;
}

function pipedTail(tail: Tail): LastLine {
  return { last: () => Promise.resolve(tail.last()) };
}

async function describeExit(status: ExitStatus, tail: LastLine, suffix = ""): Promise<string> {
  const how = status.signal ? `killed by ${status.signal}` : `exit code ${status.code}`;
  const line = await tail.last();
  return `${how}${suffix}${line ? `: ${line}` : ""}`;
}

type Outcome =
  | { readonly ok: true; readonly service?: Service }
  | { readonly ok: false; readonly reason: string; readonly exitCode?: number };

type Event =
  | { readonly type: "exit"; readonly status: ExitStatus }
  | { readonly type: "cancel" }
  | { readonly type: "timeout" }
  | { readonly type: "ready"; readonly result: ProbeResult };

const CANCELLED: Outcome = { ok: false, reason: "cancelled" };
/** Why an attempt's timer and probe stop once it ended (one object: no DOMException per step). */
const ENDED = new Error("the attempt ended");

/** Waits a moment for output still in the pipes, then stops reading them. */
async function closeOutput(group: Process): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([group.drained, new Promise((r) => timer = setTimeout(r, DRAIN_MS))]);
  clearTimeout(timer);
  await group.closeOutput();
}

function makeService(group: Process, tail: LastLine, target: Target): Service {
  let stopping: Promise<void> | undefined;
  return {
    pid: group.pid,
    pgid: group.pgid,
    exited: group.status.then((s) => s.code),
    lost: group.status.then((s) =>
      stopping ? new Promise<never>(() => {}) : describeExit(s, tail, " after it was ready")
    ),
    stop: (graceMs = STOP_GRACE_MS) =>
      stopping ??= (async () => {
        await target.killGroup(group.pgid, graceMs);
        await group.status;
        await closeOutput(group);
      })(),
  };
}

/**
 * Starts an attempt's process group on the step's target (this machine by default). A background
 * service with a log file writes there itself (it must outlive the engine); everything else is
 * piped to `ctx.output`, stderr kept for the failure reason.
 */
async function start(spec: RunSpec, ctx: RunContext): Promise<{ group: Process; tail: LastLine }> {
  const target = ctx.target ?? localTarget;
  const base = {
    shell: spec.shell,
    command: spec.command,
    cwd: ctx.cwd,
    env: ctx.env,
    user: spec.user,
  };
  if (spec.background && ctx.logFile !== undefined && target.name !== "local") {
    // The log file is on the host: the service writes it there and outlives thaw.
    const log = ctx.logFile;
    const from = await openTargetLog(target, log);
    return {
      group: await target.spawn({ ...base, log }),
      tail: { last: () => lastTargetLogLine(target, log, from) },
    };
  }
  if (spec.background && ctx.logFile !== undefined) {
    const log = ctx.logFile;
    const from = openLog(log);
    return {
      group: await target.spawn({ ...base, log }),
      tail: {
        last: () => lastLogLine(log, from),
      },
    };
  }
  const tail = new Tail();
  const group = await target.spawn({
    ...base,
    ...(ctx.output ? { stdout: ctx.output } : {}),
    stderr: (chunk) => {
      tail.push(chunk);
      ctx.output?.(chunk);
    },
  });
  return { group, tail: pipedTail(tail) };
}

/** One attempt: start the command, wait for it (and its probe), clean up. */
async function attempt(spec: RunSpec, ctx: RunContext): Promise<Outcome> {
  const target = ctx.target ?? localTarget;
  let group: Process, tail: LastLine;
  try {
    ({ group, tail } = await start(spec, ctx));
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return { ok: false, reason: `cannot start ${spec.shell}: ${oneLine(why)}` };
  }
  const { pgid } = group;
  // A group on a host is not this machine's to clean up after a crash: its ssh session ending
  // stops it there (and a service is watched through its target).
  if (target.name === "local") ctx.onSpawn?.({ pid: group.pid, pgid });

  // Ends this attempt's timer and probe.
  const done = new AbortController();
  let onAbort = () => {};
  const cancel = new Promise<Event>((resolve) => {
    onAbort = () => resolve({ type: "cancel" });
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener("abort", onAbort, { once: true });
  });
  const never = new Promise<never>(() => {});
  const timeout: Promise<Event> = spec.timeoutMs === undefined
    ? never
    : ctx.clock.sleep(spec.timeoutMs, done.signal).then(() => ({ type: "timeout" }), () => never);
  const exit = group.status.then((status): Event => ({ type: "exit", status }));
  let probing: Promise<ProbeResult> | undefined;
  const ready = (): Promise<Event> => {
    probing = probe(spec.ready!, {
      ...ctx,
      signal: AbortSignal.any([done.signal, ctx.signal]),
      shell: spec.shell,
      user: spec.user,
    });
    return probing.then((result) => ({ type: "ready", result }));
  };

  /** Ends the attempt: stops the timer and probe; unless the service lives on, the group too. */
  const end = async (outcome: Outcome, killGrace?: number): Promise<Outcome> => {
    done.abort(ENDED);
    ctx.signal.removeEventListener("abort", onAbort);
    await probing;
    if (outcome.ok && outcome.service) return outcome;
    if (killGrace !== undefined) await target.killGroup(pgid, killGrace);
    await group.status;
    await closeOutput(group);
    return outcome;
  };
  const timedOut = () =>
    `timed out after ${formatMs(spec.timeoutMs ?? 0)}; process group ${pgid} killed`;

  if (spec.background) {
    if (!spec.ready) return end({ ok: true, service: makeService(group, tail, target) });
    const ev = await Promise.race([exit, cancel, timeout, ready()]);
    switch (ev.type) {
      case "cancel":
        return end(CANCELLED, 0);
      case "timeout":
        return end({ ok: false, reason: timedOut() }, KILL_GRACE_MS);
      case "exit":
        // Whatever it started in its group goes with it.
        return end({
          ok: false,
          reason: await describeExit(ev.status, tail, " before it was ready"),
          exitCode: ev.status.code,
        }, KILL_GRACE_MS);
      case "ready":
        if (ctx.signal.aborted) return end(CANCELLED, 0);
        return ev.result.ok
          ? end({ ok: true, service: makeService(group, tail, target) })
          : end({ ok: false, reason: `ready probe failed: ${ev.result.reason}` }, KILL_GRACE_MS);
    }
  }

  const ev = await Promise.race([exit, cancel, timeout]);
  if (ev.type === "cancel") return end(CANCELLED, 0);
  if (ev.type === "timeout") return end({ ok: false, reason: timedOut() }, KILL_GRACE_MS);
  if (ev.type !== "exit") throw new Error("unreachable");
  // The command is done: nothing it started may outlive it in its group.
  const left = await target.killGroup(pgid, KILL_GRACE_MS);
  if (left !== "gone") ctx.log(`stopped what the command left running (process group ${pgid})`);
  if (ev.status.code !== 0) {
    const reason = await describeExit(ev.status, tail);
    return end({ ok: false, reason, exitCode: ev.status.code });
  }
  if (!spec.ready) return end({ ok: true });
  const after = await Promise.race([cancel, timeout, ready()]);
  if (after.type === "cancel" || ctx.signal.aborted) return end(CANCELLED);
  if (after.type === "timeout") {
    return end({
      ok: false,
      reason: `timed out after ${formatMs(spec.timeoutMs ?? 0)} waiting for the ready probe`,
    });
  }
  if (after.type !== "ready") throw new Error("unreachable");
  return end(
    after.result.ok
      ? { ok: true }
      : { ok: false, reason: `ready probe failed: ${after.result.reason}` },
  );
}

/**
 * Runs a run step: `spec.shell -c spec.command` in `ctx.cwd` with exactly `ctx.env`, as the
 * leader of its own process group (reported through `ctx.onSpawn` for each attempt), stdout and
 * stderr to `ctx.output` (discarded if absent).
 *
 * - Done when the command exits 0 and then `spec.ready`, if any, passes. Whatever the command
 *   left running in its group is stopped when it exits (nothing is orphaned; a daemon that must
 *   outlive the step leaves the group with `setsid`, or the step is `background`).
 * - `background`: the process keeps running; done when `ready` passes (at once without one).
 *   The attempt fails if the process exits first. On success the effect holds the
 *   {@linkcode Service}; `stop()` kills its group (SIGTERM, SIGKILL after 5 s by default);
 *   `lost` says why if it exits on its own. With `ctx.logFile`, the service appends its output
 *   to that file itself (nothing goes through `ctx.output`), so it outlives the engine.
 * - `ctx.drill`: a `http`/`tcp` `ready` probe that passes before an attempt starts fails the
 *   step at once, without running it and without retries ("something else already answers on
 *   127.0.0.1:8000 …").
 * - `spec.user`: the command and `run:` probes run as that system user (see `user.ts`).
 * - `timeoutMs` bounds each attempt (including the wait for `ready`): the whole group is killed
 *   (SIGTERM, SIGKILL after 2 s). A failed `ready` kills the group too.
 * - A failed attempt is retried `retries` times, after `backoffMs` (default 1000) doubling each
 *   time, on `ctx.clock`.
 * - `ctx.signal` aborting kills the group at once (SIGKILL) and gives `reason: "cancelled"`.
 *
 * The failure reason is one line: `exit code 3: <last stderr line>`,
 * `timed out after 10s; process group 1234 killed`,
 * `ready probe failed: http://127.0.0.1:8000/healthz: 503 for 2m`.
 *
 * @example Run a command in a directory
 * ```ts
 * import { runStep } from "./run.ts";
 * import { realClock } from "../types.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const effect = await runStep(
 *   { command: "echo restored > state.txt", shell: "sh", retries: 0, background: false },
 *   {
 *     signal: new AbortController().signal,
 *     clock: realClock,
 *     env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
 *     cwd: dir,
 *     log: console.log,
 *   },
 * );
 * assert(effect.ok);
 * assert.equal(await Deno.readTextFile(`${dir}/state.txt`), "restored\n");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function runStep(spec: RunSpec, ctx: RunContext): Promise<RunEffect> {
  const backoff = spec.backoffMs ?? 1000;
  let attempts = 0;
  for (;;) {
    if (ctx.signal.aborted) return { ok: false, attempts, reason: "cancelled" };
    attempts++;
    const stale = ctx.drill && spec.ready
      ? await staleService(spec.ready, { ...ctx, shell: spec.shell })
      : undefined;
    // Not retried: the other service will still be there.
    if (stale !== undefined) return { ok: false, attempts, reason: stale };
    const outcome = await attempt(spec, ctx);
    if (outcome.ok) {
      return outcome.service
        ? { ok: true, attempts, service: outcome.service }
        : { ok: true, attempts };
    }
    if (outcome === CANCELLED || ctx.signal.aborted) {
      return { ok: false, attempts, reason: "cancelled" };
    }
    const failed = {
      ok: false as const,
      attempts,
      reason: outcome.reason,
      ...(outcome.exitCode !== undefined ? { exitCode: outcome.exitCode } : {}),
    };
    if (attempts > spec.retries) return failed;
    const delay = backoff * 2 ** (attempts - 1);
    ctx.log(`attempt ${attempts} failed: ${outcome.reason}; retrying in ${formatMs(delay)}`);
    try {
      await ctx.clock.sleep(delay, ctx.signal);
    } catch {
      return { ok: false, attempts, reason: "cancelled" };
    }
  }
}
