/**
 * The service `runbooks/lazy-catalog.yaml` brings back: point queries on the generated SQLite
 * catalog (`catalog_db.ts`), over HTTP on 127.0.0.1. It opens the database read-only and
 * `immutable` (no locks, no journal looked for), so it runs on a file that is still arriving: a
 * lazily restored volume, where each page read that is not home yet is fetched on demand.
 *
 * - `GET /healthz`: 200 once one row can be read.
 * - `GET /item/ID`: the item by primary key, as JSON (`check` is the FNV-1a of its image).
 * - `GET /sku/SKU`: the item by sku, through the index.
 * - `GET /random`: a random item by sku (a random id's sku): what a customer browsing does, and
 *   what the runbook's service-level probe asks for, so each sample reads pages not read before.
 *
 * ```sh
 * deno run -A runbooks/tools/catalog_service.ts PORT DB_FILE
 * ```
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { resolve } from "node:path";
import { fnv1a, sku } from "./catalog_db.ts";

const [port, file] = Deno.args;
if (!(Number(port) > 0) || !file) {
  console.error("usage: catalog_service.ts PORT DB_FILE");
  Deno.exit(2);
}
const db = new DatabaseSync(`file:${encodeURI(resolve(file))}?immutable=1`, { readOnly: true });
const byId = db.prepare("SELECT id, sku, name, price, image FROM items WHERE id = ?");
const bySku = db.prepare("SELECT id, sku, name, price, image FROM items WHERE sku = ?");
const top = db.prepare("SELECT max(id) AS n FROM items"); // the table's last page only
let rows = 0;

function answer(row: Record<string, unknown> | undefined): Response {
  if (row === undefined) return new Response("no such item\n", { status: 404 });
  const { image, ...rest } = row;
  return Response.json({ ...rest, check: fnv1a(image as Uint8Array) });
}

Deno.serve({ hostname: "127.0.0.1", port: Number(port), onListen: () => {} }, (req) => {
  const path = new URL(req.url).pathname;
  try {
    if (path === "/healthz") {
      rows ||= Number(top.get()?.n ?? 0);
      return new Response(rows > 0 ? "ok\n" : "empty catalog\n", { status: rows > 0 ? 200 : 503 });
    }
    const m = /^\/(item|sku)\/([^/]+)$/.exec(path);
    if (m?.[1] === "item") return answer(byId.get(Number(m[2])));
    if (m?.[1] === "sku") return answer(bySku.get(decodeURIComponent(m[2]!)));
    if (path === "/random") {
      rows ||= Number(top.get()?.n ?? 0);
      return answer(bySku.get(sku(1 + Math.floor(Math.random() * rows))));
    }
    return new Response("not found\n", { status: 404 });
  } catch (e) {
    // A read the volume could not serve (the backup gone for longer than nbdkit waits).
    return new Response(`${(e as Error).message}\n`, { status: 503 });
  }
});
