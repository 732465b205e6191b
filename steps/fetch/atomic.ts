/**
 * Atomic placement of fetched data: it is written under a temporary name beside its destination,
 * flushed to disk, then renamed into place, so the destination holds either nothing (or its old
 * content) or the complete data, even after a crash. A fetch never deletes what thaw did not
 * write: a directory at the destination is replaced only when thaw placed it there.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

/**
 * Creates the parent directory of `path` (and its parents) if missing.
 *
 * @example Make room for a file
 * ```ts
 * import { ensureParent } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await ensureParent(`${dir}/a/b/c.dump`);
 * await Deno.stat(`${dir}/a/b`);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function ensureParent(path: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
}

/**
 * Removes a file or a directory tree; a missing path is not an error.
 *
 * @example Remove twice
 * ```ts
 * import { removeQuietly } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await removeQuietly(dir);
 * await removeQuietly(dir);
 * ```
 */
export async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** What is at a path, without following a final symbolic link; `null` when nothing is. */
export async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/**
 * Bytes under a path: the size of a file, or the total size of the files in a directory tree
 * (symbolic links are not followed); 0 when nothing is there. Files vanishing during the walk are
 * skipped, so it can poll a directory another process is writing.
 *
 * @example Size of a tree
 * ```ts
 * import { sizeUnder } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a`, "12345");
 * await Deno.mkdir(`${dir}/sub`);
 * await Deno.writeTextFile(`${dir}/sub/b`, "678");
 * if (await sizeUnder(dir) !== 8) throw new Error("wrong size");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function sizeUnder(path: string): Promise<number> {
  const info = await lstatOrNull(path);
  if (info === null) return 0;
  if (!info.isDirectory) return info.isFile ? info.size : 0;
  let total = 0;
  try {
    for await (const entry of Deno.readDir(path)) {
      if (!entry.isSymlink) total += await sizeUnder(`${path}/${entry.name}`);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return total;
}

/** Flushes a directory entry (its list of names) to disk; best effort where unsupported. */
export async function syncDir(path: string): Promise<void> {
  let dir: Deno.FsFile | undefined;
  try {
    dir = await Deno.open(path, { read: true });
    await dir.sync();
  } catch {
    // Some file systems do not let a directory be opened or flushed: the rename is still atomic.
  } finally {
    dir?.close();
  }
}

/** Flushes a file, or every file and directory of a tree, to disk. */
export async function syncTree(path: string): Promise<void> {
  const info = await Deno.lstat(path);
  if (info.isFile) {
    using file = await Deno.open(path, { read: true });
    await file.syncData();
  } else if (info.isDirectory) {
    for await (const entry of Deno.readDir(path)) {
      if (!entry.isSymlink) await syncTree(`${path}/${entry.name}`);
    }
    await syncDir(path);
  }
}

/** The file beside `to` that records the directory thaw placed at `to` (its device and inode). */
export function writtenMark(to: string): string {
  return join(dirname(to), `.${basename(to)}.thaw-written`);
}

/** Whether the directory `info` at `to` is the one thaw placed there (its mark says so). */
async function thawWrote(to: string, info: Deno.FileInfo): Promise<boolean> {
  try {
    const mark = JSON.parse(await Deno.readTextFile(writtenMark(to)));
    return info.ino !== null && mark?.dev === info.dev && mark?.ino === info.ino &&
      mark?.born === (info.birthtime?.getTime() ?? null); // an inode number can be reused
  } catch {
    return false;
  }
}

/** What a fetch found at its destination before it started. */
export type Destination = "nothing" | "file" | "thaw-directory";

/**
 * Checks what is at a fetch's destination `to` before the fetch starts: a fetch never deletes
 * what thaw did not write. Nothing, a file (replaced only at the final rename) or a directory
 * thaw placed there itself (a drill or a rerun of the same fetch) may be at `to`; any other
 * directory is an error, and nothing is touched.
 *
 * @example A directory thaw did not write
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkDestination } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * assert.equal(await checkDestination(`${dir}/db.dump`), "nothing");
 * await assert.rejects(checkDestination(dir), /is an existing directory thaw did not write/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @throws {Error} when `to` is a directory thaw did not write.
 */
export async function checkDestination(to: string): Promise<Destination> {
  const info = await lstatOrNull(to);
  if (info === null) return "nothing";
  if (!info.isDirectory) return "file";
  if (await thawWrote(to, info)) return "thaw-directory";
  throw new Error(
    `${to} is an existing directory thaw did not write: a fetch never deletes it. ` +
      `Point "to" at a new path (the data set is placed there whole), or move the directory away`,
  );
}

/**
 * Moves complete data from `tmp` to `to`: flushes it to disk first (unless the caller already
 * did), replaces whatever `to` held (a file, or a directory thaw placed there: removed first,
 * since a rename cannot replace a non-empty one; any other directory is an error, see
 * {@linkcode checkDestination}), then flushes the parent directory so the new name is durable.
 * A directory placed at `to` is recorded in {@linkcode writtenMark} so that thaw may replace it.
 *
 * @example Commit a file
 * ```ts
 * import { commit } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/x.tmp`, "data");
 * await commit(`${dir}/x.tmp`, `${dir}/x`);
 * if (await Deno.readTextFile(`${dir}/x`) !== "data") throw new Error("not moved");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function commit(tmp: string, to: string, synced = false): Promise<void> {
  if (!synced) await syncTree(tmp);
  const [from, old] = await Promise.all([Deno.lstat(tmp), lstatOrNull(to)]);
  if (old?.isDirectory) await checkDestination(to); // it may have appeared since the start
  if (old !== null && (old.isDirectory || from.isDirectory)) await removeQuietly(to);
  await Deno.rename(tmp, to);
  const mark = writtenMark(to);
  if (from.isDirectory) {
    const placed = await Deno.lstat(to);
    await Deno.writeTextFile(
      mark,
      JSON.stringify({
        dev: placed.dev,
        ino: placed.ino,
        born: placed.birthtime?.getTime() ?? null,
      }) + "\n",
    );
  } else await removeQuietly(mark);
  await syncDir(dirname(to));
}
