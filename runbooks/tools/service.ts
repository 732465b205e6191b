/**
 * The service the example runbooks bring back: a small HTTP server on 127.0.0.1 that serves the
 * restored data. `/healthz` answers 200 once every file it was told to need is in place.
 * `/FILE?kib=N` answers the first N KiB of FILE only (a page of it, as a customer reads).
 *
 * ```sh
 * deno run -A runbooks/tools/service.ts PORT DATA_DIR [NEEDED_FILE]...
 * ```
 *
 * @module
 */
import { join, normalize } from "node:path";

const [port, dir, ...needed] = Deno.args;
if (!port || !dir) {
  console.error("usage: service.ts PORT DATA_DIR [NEEDED_FILE]...");
  Deno.exit(2);
}
Deno.serve({ hostname: "127.0.0.1", port: Number(port), onListen: () => {} }, async (req) => {
  const path = normalize(new URL(req.url).pathname);
  if (path === "/healthz") {
    for (const f of needed) {
      try {
        await Deno.stat(join(dir, f));
      } catch {
        return new Response(`missing ${f}\n`, { status: 503 });
      }
    }
    return new Response("ok\n");
  }
  if (path.includes("..")) return new Response("bad path\n", { status: 400 });
  try {
    const file = await Deno.open(join(dir, path));
    const kib = Number(new URL(req.url).searchParams.get("kib") ?? NaN);
    if (!(kib > 0)) return new Response(file.readable);
    const page = new Uint8Array(kib * 1024);
    let n = 0;
    for (let r; n < page.length && (r = await file.read(page.subarray(n))) !== null;) n += r;
    file.close();
    return new Response(page.subarray(0, n));
  } catch {
    return new Response("not found\n", { status: 404 });
  }
});
