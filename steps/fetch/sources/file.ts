/**
 * The `file://…` or plain-path source of a fetch.
 *
 * - First a copy-on-write clone, `cp --reflink=always SRC TMP` (`-R` for a directory), when
 *   nothing is under tmp yet: instant where the file system shares blocks (btrfs, XFS, ZFS…),
 *   failing fast elsewhere, after which a streamed copy follows. A clone moves no bytes over the
 *   link: it counts 0 transferred bytes; with `sha256` set the clone is still read and checked.
 *   (A clone is not tried over a partial tmp: `cp` would truncate it before failing.)
 * - A single file is streamed in {@linkcode CHUNK}-byte chunks, each taken on the link, hashed
 *   and written, continuing after the bytes already under tmp (read from the same offset).
 * - A directory is copied as a tree (files streamed, symbolic links recreated, modes kept), never
 *   resumed (a leftover tmp is removed first) and never hashed: a `sha256` cannot describe a
 *   tree, so a directory source with `sha256` set fails rather than go unchecked.
 * - A missing source fails at once, naming the path; other read errors fail the attempt.
 * - The path is this machine's. Landing on another target (a host, `on:`), a single file is
 *   streamed there (no clone); a directory fails, with advice to use `fetch.run` on the host.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { isAbsolute, resolve } from "node:path";
import { removeQuietly, sizeUnder } from "../atomic.ts";
import { describeError, SourceFailure } from "../attempt.ts";
import type { Attempt, Outcome } from "../attempt.ts";
import { remoteTargetOf } from "../place.ts";
import { hashFile, openSink } from "../sink.ts";

/** Bytes per read of a streamed copy. */
export const CHUNK = 256 << 10;

/**
 * The local path of a `file://` URL or a path (relative paths against `cwd`).
 *
 * @example
 * ```ts
 * import { localPath } from "./file.ts";
 * if (localPath("file:///backups/db%201.dump", "/") !== "/backups/db 1.dump") throw new Error();
 * if (localPath("db.dump", "/srv") !== "/srv/db.dump") throw new Error();
 * ```
 */
export function localPath(location: string, cwd: string): string {
  if (/^file:/i.test(location)) return fileURLToPath(location);
  return isAbsolute(location) ? location : resolve(cwd, location);
}

/** Why a local path cannot be read, for the SRE; `retry` for errors that may pass. */
function failure(error: unknown, path: string, named: boolean): SourceFailure {
  const where = named ? "" : `: ${path}`;
  if (error instanceof Deno.errors.NotFound) {
    return new SourceFailure(`no such file or directory${where}`, false);
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new SourceFailure(`permission denied${where}`, false);
  }
  return new SourceFailure(`cannot read ${path}: ${describeError(error)}`, true);
}

/** Tries `cp --reflink=always`; on failure removes what cp left and reports false. */
async function tryClone(source: string, tree: boolean, attempt: Attempt): Promise<boolean> {
  const args = ["--reflink=always", ...(tree ? ["-R"] : []), "--", source, attempt.spec.tmp];
  let success = false;
  try {
    const output = await new Deno.Command("cp", {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
      signal: attempt.signal,
    }).output();
    success = output.success;
  } catch {
    // No cp: stream instead.
  }
  attempt.signal.throwIfAborted();
  if (!success) await removeQuietly(attempt.spec.tmp);
  return success;
}

/** Streams one file into `to` (a tree member: no hash, no resume). */
async function copyMember(from: string, to: string, mode: number, attempt: Attempt, done: {
  bytes: number;
  total: number;
}): Promise<void> {
  using source = await Deno.open(from, { read: true });
  using target = await Deno.open(to, { write: true, createNew: true, mode });
  const buffer = new Uint8Array(CHUNK);
  for (;;) {
    attempt.signal.throwIfAborted();
    const n = await source.read(buffer);
    if (n === null) return;
    await attempt.take(n);
    let offset = 0;
    while (offset < n) offset += await target.write(buffer.subarray(offset, n));
    attempt.call.transferred += n;
    done.bytes += n;
    attempt.ctx.progress(done.bytes, done.total);
  }
}

async function copyTree(from: string, to: string, attempt: Attempt, done: {
  bytes: number;
  total: number;
}): Promise<void> {
  await Deno.mkdir(to);
  for await (const entry of Deno.readDir(from)) {
    const a = `${from}/${entry.name}`;
    const b = `${to}/${entry.name}`;
    if (entry.isSymlink) {
      await Deno.symlink(await Deno.readLink(a), b);
    } else if (entry.isDirectory) {
      await copyTree(a, b, attempt, done);
    } else if (entry.isFile) {
      const mode = (await Deno.stat(a)).mode ?? 0o644;
      await copyMember(a, b, mode & 0o7777, attempt, done);
    } else {
      attempt.ctx.log(`${attempt.label}: skipped ${a} (not a file, directory or link)`);
    }
  }
  const mode = (await Deno.stat(from)).mode;
  if (mode !== null) await Deno.chmod(to, mode & 0o7777);
}

async function fetchTree(path: string, attempt: Attempt): Promise<Outcome> {
  const { spec } = attempt;
  if (spec.sha256 !== undefined) {
    throw new SourceFailure(
      "is a directory, but sha256 is set (only a single file can be checked)",
      false,
    );
  }
  await removeQuietly(spec.tmp);
  if (await tryClone(path, true, attempt)) {
    const bytes = await sizeUnder(spec.tmp);
    attempt.ctx.progress(bytes, bytes);
    return { ok: true, bytes, resumed: false, synced: false };
  }
  const done = { bytes: 0, total: await sizeUnder(path) };
  try {
    await copyTree(path, spec.tmp, attempt, done);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) {
      throw failure(error, path, false);
    }
    throw error;
  }
  return { ok: true, bytes: done.bytes, resumed: false, synced: false };
}

/**
 * One attempt of a local source into `spec.tmp`. Throws a {@linkcode SourceFailure}, or the
 * abort reason of `attempt.signal`.
 *
 * @example A copy
 * ```ts ignore
 * const outcome = await fetchFile("/backups/db.dump", "/backups/db.dump", attempt);
 * ```
 *
 * @param path The local path.
 * @param location The path as the runbook gave it (when it is the path, messages do not repeat
 * it).
 * @param attempt The attempt.
 */
export async function fetchFile(
  path: string,
  location: string,
  attempt: Attempt,
): Promise<Outcome> {
  const { spec, ctx } = attempt;
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    throw failure(error, path, path === location);
  }
  const remote = remoteTargetOf(ctx);
  if (info.isDirectory && remote !== undefined) {
    throw new SourceFailure(
      `is a directory on this machine: a file source sends single files to host ` +
        `${remote.name}; for a tree, use fetch.run with a command run there (rsync, tar, restic)`,
      false,
    );
  }
  if (info.isDirectory) return await fetchTree(path, attempt);
  if (!info.isFile) throw new SourceFailure("not a regular file or directory", false);

  // A clone shares blocks of this machine's file system: never for data landing on a host.
  const old = remote === undefined ? await Deno.lstat(spec.tmp).catch(() => null) : undefined;
  if (
    old !== undefined && (old === null || (old.isFile && old.size === 0)) &&
    await tryClone(path, false, attempt)
  ) {
    const digest = spec.sha256 === undefined ? undefined : await hashFile(spec.tmp, attempt.signal);
    ctx.progress(info.size, info.size);
    return { ok: true, bytes: info.size, digest, resumed: false, synced: false };
  }

  const sink = await openSink(attempt, true);
  attempt.keepTmpOnAbort = true;
  try {
    sink.total = info.size;
    if (sink.bytes > info.size) await sink.reset();
    let source: Deno.FsFile;
    try {
      source = await Deno.open(path, { read: true });
    } catch (error) {
      throw failure(error, path, path === location);
    }
    using _source = source;
    if (sink.bytes > 0) await source.seek(sink.bytes, Deno.SeekMode.Start);
    for (;;) {
      attempt.signal.throwIfAborted();
      const buffer = new Uint8Array(CHUNK);
      let n: number | null;
      try {
        n = await source.read(buffer);
      } catch (error) {
        throw failure(error, path, false);
      }
      if (n === null) break;
      await attempt.take(n);
      await sink.push(buffer.subarray(0, n));
    }
    const { bytes, digest } = await sink.finish();
    return { ok: true, bytes, digest, resumed: sink.resumed, synced: true };
  } finally {
    await sink.close();
  }
}
