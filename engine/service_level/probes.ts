/**
 * One service-level sample (contract revision 4): an `http` GET (its latency to the last byte of
 * the body; ok = 2xx), a `tcp` connect (its latency), or a `run` command that prints one number
 * (its value; ok = exit 0 and a number printed). Never throws: a failure is a failed sample with
 * its reason, a probe that takes longer than its timeout is abandoned (a `run` probe's process
 * group killed).
 *
 * `run` probes go through `steps/process/process.ts` `spawnGroup`, like steps do.
 *
 * @module
 */
import { hostPort, networkError, oneLine } from "../../steps/run/net.ts";
import { killGroup, spawnGroup } from "../../steps/process/process.ts";
import type { SlKind } from "./schema.ts";

/** What a sample measured. */
export interface Taken {
  /** Latency in ms (http, tcp), or the number printed (run); null when nothing was measured. */
  readonly value: number | null;
  readonly ok: boolean;
  /** Why it failed (failed samples only). */
  readonly error?: string;
}

/** One probe to take, its target resolved. */
export interface ProbeCall {
  readonly kind: SlKind;
  /** The URL, `host:port` or command, expressions resolved. */
  readonly target: string;
  /** Give up after this many milliseconds. */
  readonly timeoutMs: number;
}

/** Where `run` probes run. */
export interface RunContext {
  readonly cwd: string;
  /** The complete environment of the command. */
  readonly env: Readonly<Record<string, string>>;
  /** `bash` by default. */
  readonly shell?: string;
}

/** The most bytes of an http answer read (the rest is dropped: the latency is to this point). */
export const MAX_BODY = 8 * 1024 * 1024;
/** The most bytes of a `run` probe's output kept. */
const MAX_OUTPUT = 4096;
const NUMBER_RE = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;

function ms(x: number): string {
  return `${Math.round(x)}ms`;
}

/** A signal that aborts after `timeoutMs` or with `outer`, and whether the timeout fired. */
function deadline(timeoutMs: number, outer?: AbortSignal) {
  const ac = new AbortController();
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    ac.abort(new DOMException("probe timed out", "TimeoutError"));
  }, timeoutMs);
  const onAbort = () => ac.abort(outer?.reason);
  outer?.addEventListener("abort", onAbort, { once: true });
  return {
    signal: ac.signal,
    late: () => late,
    done: () => {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
    },
  };
}

/**
 * Times one network sample: `f` gets a signal that aborts after the probe's timeout (or with
 * `outer`) and the start; a timeout, a stop or a network error becomes a failed sample.
 */
async function timedSample(
  call: ProbeCall,
  outer: AbortSignal | undefined,
  f: (signal: AbortSignal, start: number) => Promise<Taken>,
): Promise<Taken> {
  const d = deadline(call.timeoutMs, outer);
  const start = performance.now();
  try {
    return await f(d.signal, start);
  } catch (e) {
    if (d.late()) {
      return { value: null, ok: false, error: `no answer within ${ms(call.timeoutMs)}` };
    }
    return { value: null, ok: false, error: outer?.aborted ? "stopped" : networkError(e) };
  } finally {
    d.done();
  }
}

function httpSample(call: ProbeCall, outer?: AbortSignal): Promise<Taken> {
  return timedSample(call, outer, async (signal, start) => {
    const res = await fetch(call.target, { signal, redirect: "manual" });
    let read = 0;
    const reader = res.body?.getReader();
    while (reader) {
      const chunk = await reader.read();
      if (chunk.done) break;
      read += chunk.value.byteLength;
      if (read >= MAX_BODY) {
        await reader.cancel().catch(() => {});
        break;
      }
    }
    const latency = performance.now() - start;
    const ok = res.status >= 200 && res.status < 300;
    return ok ? { value: latency, ok } : { value: latency, ok, error: `HTTP ${res.status}` };
  });
}

function tcpSample(call: ProbeCall, outer?: AbortSignal): Promise<Taken> {
  const addr = hostPort(call.target);
  if (!addr) {
    return Promise.resolve({
      value: null,
      ok: false,
      error: `not a host:port: ${oneLine(call.target)}`,
    });
  }
  return timedSample(call, outer, async (signal, start) => {
    const conn = await Deno.connect({ ...addr, transport: "tcp", signal });
    const latency = performance.now() - start;
    conn.close();
    return { value: latency, ok: true };
  });
}

/** What a `run` probe printed, as its sample. */
function parsePrinted(code: number, stdout: string, stderr: string): Taken {
  const text = stdout.trim();
  if (code !== 0) {
    const last = stderr.split("\n").map((l) => oneLine(l)).filter((l) => l !== "").pop();
    return { value: null, ok: false, error: last ? `exit ${code}: ${last}` : `exit ${code}` };
  }
  if (!NUMBER_RE.test(text) || !Number.isFinite(Number(text))) {
    return {
      value: null,
      ok: false,
      error: text === ""
        ? "printed nothing; a run probe prints one number"
        : `printed ${
          JSON.stringify(oneLine(text, 40))
        }, not a number; a run probe prints one number`,
    };
  }
  return { value: Number(text), ok: true };
}

async function runSample(call: ProbeCall, ctx: RunContext, outer?: AbortSignal): Promise<Taken> {
  const decoder = new TextDecoder(), errDecoder = new TextDecoder();
  let stdout = "", stderr = "";
  let group;
  try {
    group = spawnGroup(ctx.shell ?? "bash", call.target, {
      cwd: ctx.cwd,
      env: ctx.env,
      stdout: (c) => stdout = (stdout + decoder.decode(c, { stream: true })).slice(0, MAX_OUTPUT),
      stderr: (c) => stderr = (stderr + errDecoder.decode(c, { stream: true })).slice(-MAX_OUTPUT),
    });
  } catch (e) {
    const why = oneLine(e instanceof Error ? e.message : String(e));
    return { value: null, ok: false, error: `cannot start ${ctx.shell ?? "bash"}: ${why}` };
  }
  const g = group;
  const d = deadline(call.timeoutMs, outer);
  try {
    const stopped = new Promise<"stopped">((resolve) => {
      if (d.signal.aborted) resolve("stopped");
      d.signal.addEventListener("abort", () => resolve("stopped"), { once: true });
    });
    const first = await Promise.race([g.status, stopped]);
    // Whatever the command left behind in its group goes with it, at once: a probe is not a step.
    await killGroup(g.pgid, 0).catch(() => {});
    if (first === "stopped") {
      await g.status;
      await g.closeOutput();
      const error = d.late() ? `no number within ${ms(call.timeoutMs)} (killed)` : "stopped";
      return { value: null, ok: false, error };
    }
    await Promise.race([g.drained, new Promise((r) => setTimeout(r, 100))]);
    await g.closeOutput();
    return parsePrinted(first.code, stdout, stderr);
  } finally {
    d.done();
  }
}

/**
 * Takes one sample of `call` (never throws). `signal` abandons it (error `stopped`).
 *
 * @example A command that prints a number
 * ```ts
 * import assert from "node:assert/strict";
 * import { takeSample } from "./probes.ts";
 * const ctx = { cwd: Deno.cwd(), env: { PATH: Deno.env.get("PATH") ?? "" } };
 * const s = await takeSample({ kind: "run", target: "echo 42.5", timeoutMs: 5000 }, ctx);
 * assert.deepEqual(s, { value: 42.5, ok: true });
 * ```
 */
export async function takeSample(
  call: ProbeCall,
  ctx: RunContext,
  signal?: AbortSignal,
): Promise<Taken> {
  try {
    if (call.kind === "http") return await httpSample(call, signal);
    if (call.kind === "tcp") return await tcpSample(call, signal);
    return await runSample(call, ctx, signal);
  } catch (e) {
    return { value: null, ok: false, error: oneLine(e instanceof Error ? e.message : String(e)) };
  }
}
