/**
 * The execution of a lazy fetch (contract revision 5): attach the volume at `to` (the daemons of
 * `volume_set.ts`), tell the engine (`LazyHooks.attached`: the steps that need it start), then
 * stream the rest home at the share of the link the engine gives, reporting each second what was
 * fetched and how far the stream is (the engine turns it into demand), flushing the overlay every
 * {@linkcode FLUSH_MS} so a `kill -9` loses at most that much. Home: `sha256` is checked through
 * `to`, the backup is let go, and the volume is left served at `to` as a service (a drill stops
 * it at its end; a real run leaves it, listed by `thaw status`).
 *
 * The overlay is the fetch's temporary name (`.NAME.thaw-RUN.part`, a qcow2 file): a resumed run
 * starts again on it (nothing home is fetched again), a cancelled run removes it.
 *
 * @module
 */
import { newSha256, sha256Ready } from "../sha256.ts";
import { basename, dirname, join } from "node:path";
import type { FetchContext, FetchSpec, RunContext, Service } from "../../types.ts";
import { type LazyHooks, standaloneHooks } from "./hooks.ts";
import { checkLazyTools } from "./tools.ts";
import { type Layout, VolumeSet } from "./volume_set.ts";

/** How often the overlay is made durable (the research kept 80.5 of 85 MB with 2 s). */
export const FLUSH_MS = 2000;
/** How often the stream's progress and the bytes fetched are sampled. */
export const SAMPLE_MS = 500;
/** How often the stream's speed follows the engine's share. */
const SHARE_MS = 250;

/** What a lazy fetch is given: a fetch's context, and the engine's hooks. */
export interface LazyContext extends Partial<FetchContext>, Pick<RunContext, "logFile"> {
  readonly signal: AbortSignal;
  readonly env: Readonly<Record<string, string>>;
  readonly log: (line: string) => void;
  readonly lazy?: LazyHooks;
}

/** What a lazy fetch did: a fetch's effect, with the volume left served when home. */
export type LazyEffect =
  | {
    readonly ok: true;
    readonly bytes: number;
    readonly transferred: number;
    readonly source: number;
    readonly service?: Service;
  }
  | { readonly ok: false; readonly reason: string; readonly transferred: number };

/**
 * Attaches the volume, streams it home, checks it; never throws (the effect says why not).
 */
export async function executeLazy(spec: FetchSpec, ctx: LazyContext): Promise<LazyEffect> {
  const hooks = ctx.lazy ?? standaloneHooks;
  const fail = (reason: string, transferred = 0): LazyEffect => ({
    ok: false,
    reason,
    transferred,
  });
  const writable = spec.lazy?.writable ?? false;
  const tools = await checkLazyTools({ writable });
  if (tools.message !== undefined) return fail(tools.message);
  const source = spec.sources.findIndex((s) =>
    s.kind === "location" && /^https?:\/\//i.test(s.location)
  );
  const from = spec.sources[source];
  if (!from || from.kind !== "location") return fail("a lazy fetch reads an http(s):// source");
  if (spec.size === undefined) return fail("a lazy fetch needs its size");
  const layout = {
    ...await layoutOf(spec, ctx, from.location, spec.size, writable),
    bandwidth: hooks.ceiling?.() ?? Infinity,
  };
  if (ctx.signal.aborted) return fail("cancelled");
  let set: VolumeSet;
  try {
    set = await VolumeSet.start(layout);
  } catch (e) {
    return fail(`cannot attach ${spec.to}: ${(e as Error).message ?? e}`);
  }
  // Recorded for the step: stopping its group (cancel, resume) unmounts `to` and stops the rest.
  ctx.onSpawn?.({ pid: set.keeper.pid, pgid: set.keeper.pgid });
  ctx.log(`attached ${spec.to} (overlay ${layout.overlay}, logs ${layout.logs}.*.log)`);
  hooks.attached();
  let keep = false;
  try {
    const why = await streamHome(set, hooks, ctx, spec.size);
    const fetched = await set.fetched();
    if (why !== undefined) return fail(why, fetched);
    await set.releaseBacking();
    // A writable volume holds the service's writes too: its sha256 is not the backup's.
    if (spec.sha256 !== undefined && writable) ctx.log("writable: sha256 not checked");
    else if (spec.sha256 !== undefined) {
      const got = await sha256Of(spec.to, spec.size, ctx.signal);
      if (got !== spec.sha256) {
        await set.stop();
        await Deno.remove(layout.overlay).catch(() => {}); // a bad copy is not left behind
        return fail(`${from.location}: sha256 mismatch (got ${got}, expected ${spec.sha256})`);
      }
    }
    ctx.log(`home: ${fetched} bytes fetched by this attempt`);
    keep = true;
    return { ok: true, bytes: spec.size, transferred: fetched, source, service: set.service() };
  } catch (e) {
    return fail(ctx.signal.aborted ? "cancelled" : String((e as Error)?.message ?? e));
  } finally {
    if (!keep) await set.stop();
  }
}

/**
 * Streams until home: follows the share, samples each second, flushes every 2 s. Resolves
 * undefined when home, or why not (cancelled, the stream failed, a daemon went away).
 */
async function streamHome(
  set: VolumeSet,
  hooks: LazyHooks,
  ctx: LazyContext,
  size: number,
): Promise<string | undefined> {
  const vol = set.volume;
  let share = hooks.share();
  await vol.stream(share);
  let logged = share;
  ctx.log(`stream speed ${speedText(share)} (the scheduler's share)`);
  const ended = vol.waitHome(2 ** 31 - 1).then(
    (home) => home ? undefined : "the stream ended without bringing the volume home",
    (e: Error) => e.message,
  );
  let done: string | undefined | null = null;
  void ended.then((why) => done = why);
  let lost: string | undefined;
  void set.lost.then((why) => lost = why);
  let base = NaN;
  for (let tick = 0; done === null; tick++) {
    if (ctx.signal.aborted) return "cancelled";
    if (lost !== undefined) return lost;
    const now = hooks.share();
    if (now !== share) {
      await vol.setSpeed(share = now);
      // Logged when it pauses, resumes or moves by a quarter since the last line.
      if ((now === 0) !== (logged === 0) || Math.abs(now - logged) > logged / 4) {
        ctx.log(`stream speed ${speedText(logged = now)} (the scheduler's share)`);
      }
    }
    if (tick % (SAMPLE_MS / SHARE_MS) === 0) {
      const p = await vol.progress();
      if (p.state === "failed") return `the stream failed: ${p.error}`;
      if (Number.isNaN(base)) base = p.offset; // what was home already (a resumed overlay)
      const fetched = await set.fetched();
      hooks.sample(fetched, p.offset - base);
      const onDemand = Math.max(0, fetched - (p.offset - base));
      ctx.progress?.(Math.min(size, p.offset + onDemand), size);
    }
    if (tick % (FLUSH_MS / SHARE_MS) === 0 && tick > 0) await vol.flush().catch(() => {});
    await Promise.race([new Promise((r) => setTimeout(r, SHARE_MS)), ended]);
  }
  if (done !== undefined) return done;
  await vol.flush().catch(() => {});
  hooks.sample(await set.fetched(), size - (Number.isNaN(base) ? 0 : base));
  ctx.progress?.(size, size);
  return undefined;
}

/**
 * A stream speed for the step's log.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { speedText } from "./execute.ts";
 *
 * assert.equal(speedText(0), "0 (paused)");
 * assert.equal(speedText(1572864), "1.50 MiB/s");
 * assert.equal(speedText(Infinity), "unlimited");
 * ```
 */
export function speedText(bytesPerS: number): string {
  if (bytesPerS === 0) return "0 (paused)";
  if (!Number.isFinite(bytesPerS)) return "unlimited";
  return `${(bytesPerS / (1 << 20)).toFixed(2)} MiB/s`;
}

/** The sha256 of the first `size` bytes of `file`, read in 1 MiB blocks. */
async function sha256Of(file: string, size: number, signal: AbortSignal): Promise<string> {
  await sha256Ready();
  const h = newSha256();
  using f = await Deno.open(file, { read: true });
  const buf = new Uint8Array(1 << 20);
  for (let left = size; left > 0;) {
    signal.throwIfAborted();
    const n = await f.read(buf.subarray(0, Math.min(buf.length, left)));
    if (n === null) break;
    h.update(buf.subarray(0, n));
    left -= n;
  }
  return h.digest("hex");
}

/**
 * Where the fetch keeps its files: the overlay at the fetch's temporary name; sockets in a short
 * directory named by the run, the step and `to` (the same on resume); logs beside the step's.
 */
async function layoutOf(
  spec: FetchSpec,
  ctx: LazyContext,
  url: string,
  size: number,
  writable: boolean,
): Promise<Layout> {
  const run = ctx.env.THAW_RUN_ID ?? "", step = ctx.env.THAW_STEP ?? "";
  const key = new TextEncoder().encode(`${run}\0${step}\0${spec.to}`);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", key));
  const id = Array.from(digest.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
  const base = Deno.env.get("XDG_RUNTIME_DIR") || "/tmp";
  const runDir = join(base, `thaw-lazy-${id}`);
  const logs = ctx.logFile !== undefined
    ? ctx.logFile.replace(/\.log$/, "")
    : join(dirname(spec.tmp), `.${basename(spec.to)}.thaw`);
  const user = spec.user !== undefined ? { user: spec.user } : {};
  return { url, to: spec.to, overlay: spec.tmp, size, writable, runDir, logs, ...user };
}
