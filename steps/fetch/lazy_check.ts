/**
 * The checks of a lazy fetch (contract revision 5, `lazy: true`, `writable: true`): what a
 * runbook must say for a data set to be attached at once and read on demand. Called by the
 * fetch kind's check (`kind.ts`); messages are positioned like every other check's.
 *
 * @module
 */
import { type CheckContext, sourceFor } from "../kind.ts";

/** The keys of a fetch that these checks read (its shape may still be wrong: types checked). */
export interface LazyKeys {
  readonly from?: unknown;
  readonly run?: unknown;
  readonly size?: unknown;
  readonly lazy?: unknown;
  readonly writable?: unknown;
}

/** A scheme at the start of a location: `s3` of `s3://bucket/key`. */
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

/**
 * Why the source `from`, as written, cannot back a lazy fetch, if it cannot: lazy fetches read
 * ranges over HTTP. A location that starts with an expression cannot be told before the run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lazySourceProblem } from "./lazy_check.ts";
 * assert.equal(lazySourceProblem("https://backup/db.img"), undefined);
 * assert.equal(lazySourceProblem("${{ vars.backup }}/db.img"), undefined);
 * assert.match(lazySourceProblem("/mnt/backup/db.img")!, /ranges over HTTP/);
 * ```
 */
export function lazySourceProblem(from: string): string | undefined {
  if (from.startsWith("${{")) return undefined;
  const scheme = SCHEME.exec(from)?.[1]?.toLowerCase();
  if (scheme === "http" || scheme === "https") return undefined;
  // A scheme no source serves is reported once, as such (kind.ts).
  if (scheme !== undefined && sourceFor(from) === undefined) return undefined;
  const what = scheme === undefined ? "a path" : `"${scheme}://"`;
  return `lazy fetches read ranges over HTTP (http:// or https://); ${what} cannot be lazy: ` +
    `serve the file over HTTP, or drop "lazy" to copy it whole`;
}

/** Checks `lazy` and `writable` of fetch `f` (on a host when `onHost`). */
export function checkLazy(f: LazyKeys, onHost: boolean, ctx: CheckContext): void {
  if (f.writable === true && f.lazy !== true) {
    ctx.problem(
      ["fetch", "writable"],
      "key",
      `"writable" applies to lazy fetches only: add "lazy: true" to the fetch of ${ctx.name}, ` +
        `or drop "writable" (an ordinary fetch's file is the service's to write)`,
    );
  }
  if (f.lazy !== true) return;
  if (f.size === undefined) {
    ctx.problem(
      ["fetch", "lazy"],
      "key",
      `a lazy fetch attaches a volume of a known size: add "size" (for example "size: 2GiB") ` +
        `to the fetch of ${ctx.name}`,
    );
  }
  if (f.run !== undefined) {
    ctx.problem(
      ["fetch", "run"],
      "key",
      `lazy fetches read ranges over HTTP; "run:" sources cannot be lazy: drop "lazy" from ` +
        `the fetch of ${ctx.name}, or serve the data set over HTTP`,
    );
  }
  const list = Array.isArray(f.from);
  const from = list ? f.from as unknown[] : f.from === undefined ? [] : [f.from];
  from.forEach((src, k) => {
    if (typeof src !== "string") return;
    const problem = lazySourceProblem(src);
    if (problem !== undefined) {
      ctx.problem(list ? ["fetch", "from", k] : ["fetch", "from"], "value", problem);
    }
  });
  if (onHost) {
    ctx.problem(
      ["fetch", "lazy"],
      "key",
      `lazy fetches on a host ("on:") are not supported yet: the volume is attached on the ` +
        `machine that runs thaw; drop "lazy" from the fetch of ${ctx.name}, or "on:"`,
    );
  }
}
