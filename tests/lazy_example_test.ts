/**
 * The lazy-fetch example, `runbooks/lazy-catalog.yaml`, kept light: its generated catalog is the
 * same bytes every time (a small one here, through the row count), its catalog service answers
 * point queries right on such a file, and the runbook loads and plans with TTR with and without
 * lazy. The example itself (278 MiB, about 40 s) runs in `deno task drill`, not here; its figures
 * come from `tests/bench/lazy_reads.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, fnv1a, item, make, sku } from "../runbooks/tools/catalog_db.ts";
import { fromFileUrl, thawCommand } from "./paths.ts";

const RUNBOOKS = fromFileUrl(new URL("../runbooks/", import.meta.url));

Deno.test("make() writes the same catalog bytes every time, when given the same row count", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-catalog-" });
  try {
    assert.equal(make(join(dir, "a.db"), 600), true);
    assert.equal(make(join(dir, "b.db"), 600), true);
    assert.equal(make(join(dir, "a.db"), 600), false, "an existing file is reused");
    assert.equal(make(join(dir, "c.db"), 601), true);
    const [a, b, c] = await Promise.all(["a", "b", "c"].map((n) => describe(join(dir, `${n}.db`))));
    assert.deepEqual(a, b);
    assert.notEqual(a!.sha256, c!.sha256);
    assert.equal(a!.size % 4096, 0, "whole pages: a volume's size is a multiple of 512");
    assert.equal(
      (await Array.fromAsync(Deno.readDir(dir))).filter((e) => e.name.endsWith(".tmp")).length,
      0,
      "no temporary file left",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("catalog_service.ts answers point queries with the generated rows, when run on a catalog", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-catalog-" });
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  make(join(dir, "catalog.db"), 300);
  const svc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(RUNBOOKS, "tools/catalog_service.ts"), String(port), "catalog.db"],
    cwd: dir,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, text: await res.text() };
  };
  try {
    let health = { status: 0, text: "" };
    for (let i = 0; i < 200 && health.status !== 200; i++) {
      health = await get("/healthz").catch(() => health);
      if (health.status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(health.status, 200, "the service came up within 10 s");
    const want = item(42);
    const row = { id: 42, sku: want.sku, name: want.name, price: want.price };
    const check = fnv1a(want.image);
    assert.deepEqual(JSON.parse((await get("/item/42")).text), { ...row, check });
    assert.deepEqual(JSON.parse((await get(`/sku/${sku(42)}`)).text), { ...row, check });
    const random = JSON.parse((await get("/random")).text);
    assert.ok(random.id >= 1 && random.id <= 300, `random item ${random.id} is in the catalog`);
    assert.equal(random.check, fnv1a(item(random.id).image));
    assert.equal((await get("/item/301")).status, 404);
  } finally {
    svc.kill("SIGKILL");
    await svc.status;
    await svc.stderr.cancel();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw plan runbooks/lazy-catalog.yaml shows TTR with and without lazy, at once vs 30 s", async () => {
  // A store of its own: the plan learns sources' rates from earlier live drills in the store.
  const dir = await Deno.makeTempDir({ prefix: "thaw-catalog-" });
  const args = ["plan", join(RUNBOOKS, "lazy-catalog.yaml"), "--store", join(dir, "state.db")];
  const out = await thawCommand(args, {
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output().finally(() => Deno.remove(dir, { recursive: true }));
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  // 278 MiB over 10 MB/s: about 30 s for the whole file, which the service waits for without lazy.
  const m = /with lazy fetches: TTR ([\d.]+)s \(without lazy: (\d+)s\), BTN (\d+)s/.exec(text);
  assert.ok(m, text);
  assert.ok(Number(m[1]) < 5, `TTR with lazy ${m[1]} s`);
  assert.ok(Number(m[2]) >= 29 && Number(m[2]) <= 35, `TTR without lazy ${m[2]} s`);
  assert.ok(Number(m[3]) >= 29, `BTN ${m[3]} s`);
  assert.match(text, /critical path to TTR: .*catalog-volume -> start-catalog/);
});

Deno.test("runbooks/lazy-catalog.yaml's drill needs the lazy-fetch tools, named in its first lines", async () => {
  const text = await Deno.readTextFile(join(RUNBOOKS, "lazy-catalog.yaml"));
  const needs = /^# drill needs: (.*)$/m.exec(text)?.[1]?.split(" ") ?? [];
  assert.equal(needs[0], "tools/needs.sh");
  assert.ok(needs.includes("--fuse"), "FUSE checked: the volume is a FUSE file");
  for (const tool of ["qemu-storage-daemon", "qemu-img", "nbdkit", "nbdfuse", "fusermount3"]) {
    assert.ok(needs.includes(tool), `${tool} in ${needs.join(" ")}`);
  }
});
