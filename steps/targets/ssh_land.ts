/**
 * A fetch's data landing on a {@linkcode Target} (a host over ssh, or this machine): written under
 * a temporary name, continued after the bytes an interrupted attempt or a killed engine left
 * there, checked on the target (size; sha256 with the target's own tool, `sha256sum` on a host),
 * then renamed into place. It never deletes what thaw did not write: a directory at `to` is an
 * error, found before a byte moves and again before the rename.
 *
 * @example Land bytes on this machine
 * ```ts
 * import assert from "node:assert/strict";
 * import { localTarget } from "./local.ts";
 * import { openLanding } from "./ssh_land.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const landing = await openLanding(localTarget, { to: `${dir}/x`, tmp: `${dir}/.x.part` });
 * await landing.write(new TextEncoder().encode("hello"));
 * assert.equal((await landing.finish()).bytes, 5);
 * assert.equal(await Deno.readTextFile(`${dir}/x`), "hello");
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { dirname } from "node:path";
import type { FileWriter, Target } from "../kind.ts";

/** Where and what a fetch lands. */
export interface LandingSpec {
  /** Absolute destination on the target. */
  readonly to: string;
  /** Absolute temporary path beside `to` (same directory: the rename is atomic). */
  readonly tmp: string;
  /** Expected size, bytes, when known. */
  readonly size?: number | undefined;
  /** Expected sha256, lower-case hex, when known. */
  readonly sha256?: string | undefined;
}

/** A landing failed: a check, or what is at `to`. */
export class LandingError extends Error {
  /** Makes one; `restart`: the temporary file was removed, the next attempt starts at byte 0. */
  constructor(message: string, readonly restart: boolean) {
    super(message);
    this.name = "LandingError";
  }
}

/** A landing under way. */
export interface Landing {
  /** Where the data continues: bytes already under the temporary name (0 for a fresh start). */
  readonly offset: number;
  /** Bytes under the temporary name so far (offset plus what was written). */
  readonly bytes: number;
  /** Appends the next bytes of the data set (back-pressure: resolves when the target took them). */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Flushes, checks (size, sha256 on the target) and renames into place. A failed check removes
   * the temporary file and throws a {@linkcode LandingError} with `restart`.
   */
  finish(signal?: AbortSignal): Promise<{ bytes: number }>;
  /** Stops writing and keeps the temporary file, to continue later. */
  abort(): Promise<void>;
}

/**
 * `Promise.all` that waits for every operation before it rejects: none is left running on the
 * target (a `mkdir -p` after the caller gave up) when it returns.
 */
async function settled<T extends readonly unknown[]>(
  ops: { [K in keyof T]: Promise<T[K]> },
): Promise<T> {
  const results = await Promise.allSettled(ops);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

async function refuseDirectory(target: Target, to: string): Promise<void> {
  if ((await target.stat(to))?.type === "directory") {
    throw new LandingError(
      `${target.name}:${to} is an existing directory thaw did not write: a fetch never deletes ` +
        `it. Point "to" at a new path, or move the directory away`,
      false,
    );
  }
}

/**
 * Opens a landing: checks `to`, creates the temporary file's directory, and, with `resume`,
 * continues after the bytes a file at `tmp` holds (unless more than `size`); else starts empty.
 */
export async function openLanding(
  target: Target,
  spec: LandingSpec,
  options: { resume?: boolean } = {},
): Promise<Landing> {
  // One round trip to a host, not three: these do not depend on each other.
  const [, old] = await settled([
    refuseDirectory(target, spec.to),
    target.stat(spec.tmp),
    target.mkdir(dirname(spec.tmp)),
  ]);
  if (old !== null && old.type !== "file") await target.remove(spec.tmp); // thaw's own name
  let offset = options.resume !== false && old?.type === "file" ? old.size : 0;
  if (spec.size !== undefined && offset > spec.size) offset = 0;
  const writer: FileWriter = await target.openWrite(spec.tmp, { offset });
  let bytes = offset;
  let open = true;
  const close = async () => {
    if (!open) return;
    open = false;
    await writer.close();
  };
  return {
    offset,
    get bytes() {
      return bytes;
    },
    async write(chunk) {
      await writer.write(chunk);
      bytes += chunk.length;
    },
    async finish(signal) {
      await writer.sync();
      await close();
      const [size] = await settled([
        check(target, spec, signal),
        refuseDirectory(target, spec.to),
      ]);
      await target.rename(spec.tmp, spec.to);
      return { bytes: size };
    },
    abort: close,
  };
}

/** Checks what is under the temporary name (size, sha256); its size. */
async function check(target: Target, spec: LandingSpec, signal?: AbortSignal): Promise<number> {
  const info = await target.stat(spec.tmp);
  if (info === null || info.type !== "file") {
    throw new LandingError(`${target.name}:${spec.tmp} vanished before its check`, true);
  }
  if (spec.size !== undefined && info.size !== spec.size) {
    await target.remove(spec.tmp);
    throw new LandingError(
      `${target.name}:${spec.tmp}: ${info.size} bytes, ${spec.size} expected`,
      true,
    );
  }
  if (spec.sha256 === undefined) return info.size;
  const got = await target.sha256(spec.tmp, signal);
  if (got !== spec.sha256.toLowerCase()) {
    await target.remove(spec.tmp);
    throw new LandingError(
      `${target.name}:${spec.to}: sha256 mismatch (got ${got}, expected ${spec.sha256})`,
      true,
    );
  }
  return info.size;
}
