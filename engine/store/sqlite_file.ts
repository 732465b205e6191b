/**
 * The file of an SQLite store, before SQLite opens it: thaw writes only into a store it made, and
 * keeps it readable by its owner only (`--var` values such as passwords are stored in it).
 *
 * - A new store is created with mode 0600 (SQLite gives its `-wal` and `-shm` files the same
 *   mode), in a directory created with mode 0700.
 * - An existing file must be thaw's store: an SQLite database that is empty or holds thaw's
 *   migrations. Anything else (a text file, another program's database) is refused before a
 *   byte is written into it.
 * - An existing store of an older thaw, readable by others, is made owner-only.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { dirname } from "node:path";
import { StoreError } from "./errors.ts";
import { MIGRATIONS } from "./migrations.ts";

/** Mode of the store's file (and of its `-wal` and `-shm` files). */
export const STORE_FILE_MODE = 0o600;
/** Mode of directories thaw creates for the store and the step logs. */
export const STORE_DIR_MODE = 0o700;

const HEADER = "SQLite format 3\0";

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Why the SQLite database at `path` is not thaw's store, or undefined when it is (or empty). */
function notThaws(path: string): string | undefined {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { readOnly: true });
  } catch (e) {
    return `it cannot be read as an SQLite database (${messageOf(e)})`;
  }
  try {
    const tables = db.prepare("select name from sqlite_master where type = 'table'").all()
      .map((r) => String(r.name));
    // Empty, or a store another thaw is creating right now (its migration bookkeeping is made
    // before the first migration commits): thaw's.
    if (tables.every((t) => t === "kysely_migration" || t === "kysely_migration_lock")) {
      return undefined;
    }
    const first = Object.keys(MIGRATIONS).sort()[0]!;
    const ours = tables.includes("kysely_migration") &&
      db.prepare("select 1 from kysely_migration where name = ?").all(first).length > 0;
    if (ours) return undefined;
    const shown = tables.slice(0, 3).join(", ") + (tables.length > 3 ? ", ..." : "");
    return `it is an SQLite database of another program (tables ${shown})`;
  } catch (e) {
    return `it cannot be read as an SQLite database (${messageOf(e)})`;
  } finally {
    db.close();
  }
}

/** The first bytes of the file at `path` (fewer when it is shorter). */
async function head(path: string, n: number): Promise<Uint8Array> {
  using f = await Deno.open(path, { read: true });
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const k = await f.read(buf.subarray(got));
    if (k === null) break;
    got += k;
  }
  return buf.subarray(0, got);
}

/** Makes the files of the store at `path` owner-only, where they are readable by others. */
async function ownerOnly(path: string): Promise<void> {
  for (const p of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      const info = await Deno.stat(p);
      if (info.mode !== null && (info.mode & 0o077) !== 0) await Deno.chmod(p, STORE_FILE_MODE);
    } catch { /* absent, or not ours to change: SQLite reports what matters */ }
  }
}

/**
 * Prepares the file of the SQLite store at `path` (not `:memory:`): creates it and its directory
 * owner-only, or checks that the existing file is thaw's store without writing into it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prepareStoreFile } from "./sqlite_file.ts";
 * const dir = await Deno.makeTempDir();
 * await prepareStoreFile(`${dir}/state/thaw.db`);
 * assert.equal((await Deno.stat(`${dir}/state/thaw.db`)).mode! & 0o777, 0o600);
 * await Deno.writeTextFile(`${dir}/notes.txt`, "my notes\n");
 * await assert.rejects(prepareStoreFile(`${dir}/notes.txt`), /not thaw's store/);
 * assert.equal(await Deno.readTextFile(`${dir}/notes.txt`), "my notes\n");
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @throws {StoreError} when the file is something else than thaw's store, or cannot be made.
 */
export async function prepareStoreFile(path: string): Promise<void> {
  const fail = (why: string, cause?: unknown) =>
    new StoreError(`cannot open the store ${path}: ${why}`, { cause });
  try {
    await Deno.mkdir(dirname(path), { recursive: true, mode: STORE_DIR_MODE });
  } catch (e) {
    throw fail(`cannot create its directory: ${messageOf(e)}`, e);
  }
  try {
    (await Deno.open(path, { createNew: true, write: true, mode: STORE_FILE_MODE })).close();
    return;
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw fail(messageOf(e), e);
  }
  let size: number;
  try {
    const info = await Deno.stat(path);
    if (info.isDirectory) throw fail("it is a directory; name a file with --store");
    size = info.size;
    if (size > 0 && new TextDecoder().decode(await head(path, HEADER.length)) !== HEADER) {
      throw fail(refusal("it is not an SQLite database"));
    }
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw fail(messageOf(e), e);
  }
  const why = size > 0 ? notThaws(path) : undefined;
  if (why) throw fail(refusal(why));
  await ownerOnly(path);
}

function refusal(why: string): string {
  return `not thaw's store: ${why}; thaw wrote nothing into it. ` +
    `Name a new file with --store (the default is .thaw/state.db)`;
}
