/**
 * Atomic placement of fetched data: it is written under a temporary name beside its destination,
 * flushed to disk, then renamed into place, so the destination holds either nothing (or its old
 * content) or the complete data, even after a crash.
 *
 * @module
 */

import { dirname } from "node:path";

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

/**
 * Moves complete data from `tmp` to `to`: flushes it to disk first (unless the caller already
 * did), replaces whatever `to` held (a directory there is removed first, since a rename cannot
 * replace a non-empty one), then flushes the parent directory so the new name is durable.
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
  if (old !== null && (old.isDirectory || from.isDirectory)) await removeQuietly(to);
  await Deno.rename(tmp, to);
  await syncDir(dirname(to));
}
