/**
 * The backup of `runbooks/lazy-catalog.yaml`: a generated SQLite catalog, the same bytes on every
 * machine (for a given SQLite version: the file's header names it; Deno 2.9.6 bundles 3.53.2).
 * One table `items` (`id` the primary key, a `sku` with an index, a name, a price and a 1800-byte
 * image blob), about 2 rows a 4 KiB page: 140,000 rows make a 278 MiB file in a few seconds.
 *
 * A point query reads a handful of pages scattered over the file (the index's and the table's),
 * which is what a lazily restored volume must fetch on demand while the rest streams in.
 *
 * ```sh
 * deno run -A runbooks/tools/catalog_db.ts make FILE [ROWS]   # writes FILE unless it is there
 * deno run -A runbooks/tools/catalog_db.ts describe [ROWS]    # size and sha256 `make` gives
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { dirname } from "node:path";

/** Rows of the example's catalog (278 MiB, 291,246,080 bytes). */
export const ROWS = 140_000;
/** Bytes of each row's image blob. */
export const IMAGE_BYTES = 1800;

/** One row of the catalog. */
export interface Item {
  readonly id: number;
  readonly sku: string;
  readonly name: string;
  readonly price: number;
  readonly image: Uint8Array;
}

/** A 32-bit hash of `n` (a bijection of 0..2^32-1): scatters the skus over the index. */
function mix(n: number): number {
  let x = (n ^ 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * The sku of item `id`: unique, in an order unrelated to the id's.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sku } from "./catalog_db.ts";
 * assert.match(sku(1), /^SKU-[0-9a-f]{8}-1$/);
 * assert.notEqual(sku(1), sku(2));
 * ```
 */
export function sku(id: number): string {
  return `SKU-${mix(id).toString(16).padStart(8, "0")}-${id}`;
}

const WORDS = [
  "lamp",
  "chair",
  "desk",
  "rug",
  "shelf",
  "vase",
  "clock",
  "mirror",
  "stool",
  "bench",
];

/** Item `id` (1-based), as the catalog holds it. */
export function item(id: number, image = new Uint8Array(IMAGE_BYTES)): Item {
  let s = mix(id * 7 + 3) || 1;
  const words = new Uint32Array(image.buffer, image.byteOffset, image.byteLength >> 2);
  for (let k = 0; k < words.length; k++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    words[k] = s >>> 0;
  }
  const h = mix(id);
  const name = `${WORDS[h % 10]} ${WORDS[(h >>> 8) % 10]} no. ${id}`;
  return { id, sku: sku(id), name, price: 100 + (h % 99_900), image };
}

/**
 * FNV-1a of `bytes`, as the catalog service reports each image (`check`) so a reader can tell a
 * right row from a wrong one without moving the blob.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fnv1a } from "./catalog_db.ts";
 * assert.equal(fnv1a(new Uint8Array()), 0x811c9dc5);
 * assert.equal(fnv1a(new TextEncoder().encode("a")), 0xe40c292c);
 * ```
 */
export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 16777619);
  return h >>> 0;
}

/**
 * Writes the catalog of `rows` items at `path` (through `PATH.tmp`, renamed into place), unless a
 * file is already there. Returns true when it wrote one.
 */
export function make(path: string, rows = ROWS): boolean {
  try {
    Deno.statSync(path);
    return false;
  } catch { /* not there yet */ }
  Deno.mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  try {
    Deno.removeSync(tmp);
  } catch { /* none left */ }
  const db = new DatabaseSync(tmp);
  try {
    db.exec("PRAGMA page_size = 4096; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;");
    db.exec(
      "CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT NOT NULL, name TEXT NOT NULL, " +
        "price INTEGER NOT NULL, image BLOB NOT NULL)",
    );
    const insert = db.prepare("INSERT INTO items VALUES (?, ?, ?, ?, ?)");
    const image = new Uint8Array(IMAGE_BYTES);
    db.exec("BEGIN");
    for (let id = 1; id <= rows; id++) {
      const it = item(id, image);
      insert.run(it.id, it.sku, it.name, it.price, it.image);
    }
    db.exec("COMMIT");
    db.exec("CREATE UNIQUE INDEX items_sku ON items (sku)");
  } finally {
    db.close();
  }
  Deno.renameSync(tmp, path);
  return true;
}

/** The size and sha256 of the file at `path`. */
export async function describe(path: string): Promise<{ size: number; sha256: string }> {
  const h = createHash("sha256");
  using f = await Deno.open(path);
  let size = 0;
  for await (const chunk of f.readable) {
    h.update(chunk);
    size += chunk.length;
  }
  return { size, sha256: h.digest("hex") };
}

if (import.meta.main) {
  const [command, ...rest] = Deno.args;
  const rows = (arg: string | undefined) => arg === undefined ? ROWS : Number(arg);
  if (command === "make" && rest.length >= 1 && rest.length <= 2 && rows(rest[1]) > 0) {
    const began = performance.now();
    if (make(rest[0]!, rows(rest[1]))) {
      const secs = ((performance.now() - began) / 1000).toFixed(1);
      console.log(`${rest[0]}: ${(await Deno.stat(rest[0]!)).size} bytes, made in ${secs} s`);
    }
  } else if (command === "describe" && rest.length <= 1 && rows(rest[0]) > 0) {
    const dir = await Deno.makeTempDir();
    try {
      make(`${dir}/catalog.db`, rows(rest[0]));
      console.log(JSON.stringify(await describe(`${dir}/catalog.db`)));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  } else {
    console.error("usage: catalog_db.ts make FILE [ROWS] | describe [ROWS]");
    Deno.exit(2);
  }
}
