/**
 * The fetch step kind: brings a data set home from the first of its sources that delivers it
 * (backup tiers), into `spec.tmp`, checks it, then renames it to `spec.to`.
 *
 * Sources are plug-ins (`Source` in `../kind.ts`), picked through the registry: the first
 * registered source that matches a location, or `run` for `fetch.run`. Built in:
 * `http(s)://…` ({@link ./sources/http.ts}), `file://…` or a path ({@link ./sources/file.ts}),
 * `run:` a command ({@link ./sources/run.ts}).
 *
 * Guarantees and choices:
 * - `to` holds nothing new until the data is complete, flushed to disk and, when `sha256` is
 *   set, checked: the digest is computed while streaming (or by reading a clone or a command's
 *   file) and compared before the rename. A mismatch fails the source at once, without retries.
 * - Each source gets `1 + retries` attempts, `backoffMs` (default 1000 ms) apart, doubling,
 *   slept on `ctx.clock`. 4xx answers, missing files and a bad digest are not retried.
 * - Continuing: a file already under tmp when the fetch starts holds bytes of an interrupted
 *   attempt; http and file sources continue after them (hashing them first by a local read). If
 *   it holds more than `size`, or a resumed transfer ends with the wrong digest, the source
 *   starts over once from byte 0. Retries of a source continue after what the failed attempt
 *   wrote too.
 * - Cleanup: when the fetch fails, tmp is removed. When a source fails for good, its bytes stay
 *   for the next source only if `sha256` is set (the check guards a splice of two different
 *   files, and a mismatch starts over from byte 0) and the source was not a `run:` command;
 *   otherwise the next source starts empty.
 * - Abort (`ctx.signal`): stops at once and removes tmp, EXCEPT during (or between attempts
 *   of) the http or file transfer of a single file: then tmp is kept, so that the next run
 *   continues after its bytes instead of fetching them again; those bytes are only ever used
 *   after the same checks. Directory copies, clones and `run:` sources are never continued: their
 *   tmp is removed.
 * - An aborted fetch returns `{ ok: false, reason: "…: aborted …" }`; it does not throw.
 * - Where it lands: this machine, or `ctx.target` when that is another (a host, `on:`): then
 *   every file operation goes through the target (`place.ts`, `target_sink.ts`), `to` must be
 *   absolute, streamed sources are read here and written there, and `run:` sources run there.
 *
 * @module
 */

import { isAbsolute } from "node:path";
import type { Destination } from "./atomic.ts";
import { type Place, placeFor } from "./place.ts";
import {
  type Attempt,
  type CallState,
  describeError,
  describeSource,
  formatMs,
  newAttempt,
  type Outcome,
  SourceFailure,
} from "./attempt.ts";
import "./sources/builtin.ts";
import { type Source, sourceFor, sources } from "../kind.ts";
import type { FetchContext, FetchEffect, FetchSpec, SourceSpec } from "../types.ts";

export { describeSource } from "./attempt.ts";

/** What became of one source. */
type Result =
  | { readonly kind: "ok"; readonly bytes: number }
  | { readonly kind: "failed"; readonly reason: string; readonly corrupt: boolean }
  | { readonly kind: "aborted"; readonly keepTmp: boolean };

/** The registered source that serves `source`: `run` for a command, else the first that matches. */
function sourceOf(source: SourceSpec): Source | undefined {
  return source.kind === "run"
    ? sources().find((s) => s.key === "run")
    : sourceFor(source.location);
}

/** One attempt of any source, through the registry. */
function attemptSource(source: SourceSpec, attempt: Attempt): Promise<Outcome> {
  const from = source.kind === "run" ? source.command : source.location;
  const plugin = sourceOf(source);
  if (plugin === undefined) {
    const labels = sources().map((s) => s.label).filter((l) => l !== "").join(", ");
    return Promise.resolve({
      ok: false,
      retry: false,
      reason: `unsupported location (expected ${labels})`,
    });
  }
  return plugin.fetch(from, attempt);
}

/** Every attempt of one source, up to its commit into `to`. */
async function trySource(
  source: SourceSpec,
  label: string,
  spec: FetchSpec,
  ctx: FetchContext,
  call: CallState,
  place: Place,
): Promise<Result> {
  let attempts = 0;
  let restarted = false;
  let keepTmp = false;
  for (;;) {
    attempts++;
    const attempt = newAttempt(label, spec, ctx, call, source);
    let outcome: Outcome;
    try {
      outcome = await attemptSource(source, attempt);
    } catch (error) {
      if (ctx.signal.aborted) return { kind: "aborted", keepTmp: attempt.keepTmpOnAbort };
      if (attempt.timer.fired) {
        const killed = sourceOf(source)?.spawns ? " (process group killed)" : "";
        outcome = {
          ok: false,
          retry: true,
          reason: `timed out after ${formatMs(spec.timeoutMs!)}${killed}`,
        };
      } else if (error instanceof SourceFailure) {
        outcome = { ok: false, retry: error.retry, reason: error.message };
      } else {
        outcome = { ok: false, retry: true, reason: describeError(error) };
      }
    } finally {
      attempt.timer.dispose();
    }
    keepTmp = attempt.keepTmpOnAbort;
    const tries = attempts > 1 ? ` (${attempts} attempts)` : "";
    if (outcome.ok) {
      if (spec.sha256 !== undefined && outcome.digest !== spec.sha256.toLowerCase()) {
        await place.remove(spec.tmp);
        if (outcome.resumed && !restarted) {
          restarted = true;
          attempts--;
          ctx.log(`${label}: sha256 mismatch after continuing a partial file: restart from 0`);
          continue;
        }
        const got = outcome.digest ?? "nothing";
        const reason = `sha256 mismatch: expected ${spec.sha256}, got ${got}${tries}`;
        return { kind: "failed", reason, corrupt: true };
      }
      try {
        await place.commit(spec, outcome.synced);
      } catch (error) {
        const where = `${place.prefix}${spec.tmp} to ${spec.to}`;
        const reason = `cannot move ${where}: ${describeError(error)}`;
        return { kind: "failed", reason, corrupt: false };
      }
      return { kind: "ok", bytes: outcome.bytes };
    }
    if (!outcome.retry || attempts > spec.retries) {
      return { kind: "failed", reason: `${outcome.reason}${tries}`, corrupt: false };
    }
    const delay = (spec.backoffMs ?? 1000) * 2 ** (attempts - 1);
    ctx.log(`${label}: attempt ${attempts} failed (${outcome.reason}); next in ${formatMs(delay)}`);
    try {
      await ctx.clock.sleep(delay, ctx.signal);
    } catch {
      return { kind: "aborted", keepTmp };
    }
  }
}

/**
 * Fetches a data set: tries `spec.sources` in order until one delivers complete (and, with
 * `sha256`, checked) data into `spec.tmp`, which is then renamed to `spec.to`. Never throws
 * for a failed source, a failed fetch or an abort: the effect says what happened, with one line
 * per source tried.
 *
 * @example Copy a file in a temporary directory
 * ```ts
 * import { fetchData } from "./fetch.ts";
 * import { realClock, unlimitedLink } from "../types.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/backup.dump`, "hello");
 * const effect = await fetchData({
 *   sources: [{ kind: "location", location: `${dir}/backup.dump` }],
 *   to: `${dir}/restore/db.dump`,
 *   tmp: `${dir}/restore/.db.dump.thaw-tmp`,
 *   sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
 *   retries: 0,
 * }, {
 *   signal: new AbortController().signal,
 *   clock: realClock,
 *   env: {},
 *   cwd: dir,
 *   log: () => {},
 *   link: unlimitedLink,
 *   progress: () => {},
 * });
 * if (!effect.ok || effect.bytes !== 5) throw new Error("fetch failed");
 * if (await Deno.readTextFile(`${dir}/restore/db.dump`) !== "hello") throw new Error("wrong data");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function fetchData(spec: FetchSpec, ctx: FetchContext): Promise<FetchEffect> {
  const call: CallState = { transferred: 0 };
  const lines: string[] = [];
  const failed = (): FetchEffect => ({
    ok: false,
    reason: lines.join("\n"),
    transferred: call.transferred,
  });
  if (spec.sources.length === 0) {
    lines.push("no source to fetch from");
    return failed();
  }
  if (!isAbsolute(spec.to)) {
    const on = ctx.target === undefined ? "" : ` on ${ctx.target.name}`;
    lines.push(`"to" is ${spec.to}, a relative path${on}: write an absolute path there`);
    return failed();
  }
  const place = placeFor(ctx); // this machine, or the step's host
  let found: Destination;
  try {
    found = await place.checkDestination(spec.to); // never delete what thaw did not write
  } catch (error) {
    lines.push(describeError(error));
    return failed();
  }
  try {
    await place.prepare(spec);
  } catch (error) {
    const where = `${place.prefix}${spec.to}`;
    lines.push(`cannot create the directory of ${where}: ${describeError(error)}`);
    return failed();
  }
  for (const [index, source] of spec.sources.entries()) {
    const label = describeSource(source);
    if (ctx.signal.aborted) {
      // Nothing of this source to clean up; what an earlier source left follows its rules.
      lines.push(`${label}: aborted before it was tried (${describeError(ctx.signal.reason)})`);
      return failed();
    }
    const result = await trySource(source, label, spec, ctx, call, place);
    if (result.kind === "ok") {
      const replaced = found === "file" ? "file" : found === "thaw-directory" ? "directory" : null;
      if (replaced) ctx.log(`${place.prefix}${spec.to}: replaced the ${replaced} that was there`);
      const done = { ok: true, bytes: result.bytes, transferred: call.transferred, source: index };
      return replaced ? { ...done, ok: true, replaced } : { ...done, ok: true };
    }
    if (result.kind === "aborted") {
      lines.push(`${label}: aborted (${describeError(ctx.signal.reason)})`);
      if (result.keepTmp && await place.isFile(spec.tmp).catch(() => false)) return failed();
      break;
    }
    lines.push(`${label}: ${result.reason}`);
    if (spec.sha256 === undefined || result.corrupt || sourceOf(source)?.spawns) {
      await place.remove(spec.tmp).catch(() => {});
    }
    ctx.log(`${label}: failed (${result.reason})`);
  }
  await place.remove(spec.tmp).catch(() => {});
  return failed();
}
