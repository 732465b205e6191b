/**
 * Fetches that go through a step's {@linkcode Target} (`on:`) rather than this machine's file
 * calls, through a test-only target that keeps its files under a root directory of its own (so a
 * byte that bypassed the target would land at the real path): temporary name, sha256, rename,
 * continuing after a partial, refusals. The same against a real sshd: `hosts_ssh_test.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Target, target as targetNamed } from "../steps/kind.ts";
import { localTarget } from "../steps/targets/local.ts";
import { fetchKind } from "../steps/fetch/kind.ts";
import type { FetchEffect, FetchSpec } from "../steps/types.ts";
import { context, counted, data, fetchSpec, rooted, sha256, withServer } from "./target_helpers.ts";

const BYTES = data(300_000);
const SHA = sha256(BYTES);

Deno.test("fetchKind.execute() lands data through its target, when the step runs elsewhere", async () => {
  await withServer({ "db.dump": BYTES }, async (server, dir) => {
    const root = join(dir, "root");
    const { target, calls } = counted(rooted(root), "elsewhere");
    const spec = fetchSpec(`${server.url}db.dump`, "/srv/restore/db.dump", { sha256: SHA });
    const effect = await fetchKind.execute(spec, context(target));
    assert.deepEqual(effect, {
      ok: true,
      bytes: BYTES.length,
      transferred: BYTES.length,
      source: 0,
    });
    assert.deepEqual(await Deno.readFile(join(root, "srv/restore/db.dump")), BYTES);
    assert.equal(await localTarget.stat("/srv/restore/db.dump"), null, "bypassed the target");
    assert.equal(await target.stat(spec.tmp), null, "the temporary name is gone");
    assert.equal(calls.rename, 1);
    assert.equal(calls.openWrite, 1);
    assert.equal(calls.sha256, undefined, "hashed while streaming: every byte was seen");
  });
});

Deno.test("fetchKind.execute() continues after a partial file on its target, when one is left", async () => {
  await withServer({ "db.dump": BYTES }, async (server, dir) => {
    const root = join(dir, "root");
    const { target, calls } = counted(rooted(root), "elsewhere");
    const spec = fetchSpec(`${server.url}db.dump`, "/srv/db.dump", { sha256: SHA });
    await target.mkdir("/srv");
    const w = await target.openWrite(spec.tmp);
    await w.write(BYTES.subarray(0, 100_000));
    await w.close();
    const effect = await fetchKind.execute(spec, context(target));
    assert.deepEqual(effect, { ok: true, bytes: BYTES.length, transferred: 200_000, source: 0 });
    assert.deepEqual(server.requests.map((r) => r.range), ["bytes=100000-"]);
    assert.equal(calls.sha256, 1, "checked on the target: the first bytes were not seen");
    assert.deepEqual(await Deno.readFile(join(root, "srv/db.dump")), BYTES);
  });
});

Deno.test("fetchKind.execute() leaves nothing on its target, when the sha256 does not match", async () => {
  await withServer({ "db.dump": BYTES }, async (server, dir) => {
    const root = join(dir, "root");
    const target = rooted(root);
    const spec = fetchSpec(`${server.url}db.dump`, "/srv/db.dump", { sha256: "0".repeat(64) });
    const effect = await fetchKind.execute(spec, context(target)) as FetchEffect;
    assert.equal(effect.ok, false);
    assert.match(
      effect.ok ? "" : effect.reason,
      /sha256 mismatch: expected 0{64}, got [0-9a-f]{64}/,
    );
    assert.equal(await target.stat(spec.to), null);
    assert.equal(await target.stat(spec.tmp), null);
  });
});

Deno.test("fetchKind.execute() never replaces a directory on its target that thaw did not write", async () => {
  await withServer({ "db.dump": BYTES }, async (server, dir) => {
    const root = join(dir, "root");
    const target = rooted(root);
    await target.mkdir("/srv/db.dump/keep");
    const spec = fetchSpec(`${server.url}db.dump`, "/srv/db.dump");
    const effect = await fetchKind.execute(spec, context(target)) as FetchEffect;
    assert.equal(effect.ok, false);
    assert.match(
      effect.ok ? "" : effect.reason,
      /^elsewhere:\/srv\/db\.dump is an existing directory thaw did not write/,
    );
    assert.equal((await target.stat("/srv/db.dump/keep"))?.type, "directory");
    assert.equal(server.requests.length, 0, "refused before a byte moved");
  });
});

Deno.test("fetchKind.execute() fails on its target, when the file there is not the size written", async () => {
  await withServer({ "db.dump": BYTES }, async (server, dir) => {
    const inner = rooted(join(dir, "root"));
    // A writer that loses its first chunk on the way: only the target's own size can tell.
    const lossy: Target = {
      ...inner,
      openWrite: async (path, options) => {
        const writer = await inner.openWrite(path, options);
        let first = true;
        return {
          ...writer,
          write: (c) => first ? (first = false, Promise.resolve()) : writer.write(c),
        };
      },
    };
    const spec = fetchSpec(`${server.url}db.dump`, "/srv/db.dump");
    const effect = await fetchKind.execute(spec, context(lossy)) as FetchEffect;
    assert.equal(effect.ok, false);
    assert.match(
      effect.ok ? "" : effect.reason,
      /elsewhere:\/srv\/\.db\.dump\.thaw-r1\.part holds \d+ bytes after 300000 bytes were written/,
    );
    assert.equal(await inner.stat(spec.to), null);
    assert.equal(await inner.stat(spec.tmp), null);
  });
});

Deno.test("fetchKind.execute() sends a file of this machine to its target, when the source is a path", async () => {
  await withServer({}, async (_server, dir) => {
    const root = join(dir, "root");
    const target = rooted(root);
    await Deno.writeFile(join(dir, "local.dump"), BYTES);
    const spec: FetchSpec = {
      ...fetchSpec("", "/srv/local.dump", { sha256: SHA }),
      sources: [{ kind: "location", location: join(dir, "local.dump") }],
    };
    const effect = await fetchKind.execute(spec, context(target));
    assert.equal(effect.ok, true, effect.ok ? "" : effect.reason);
    assert.deepEqual(await Deno.readFile(join(root, "srv/local.dump")), BYTES);
  });
});

Deno.test("fetchKind.execute() fails a relative destination, when the step runs elsewhere", async () => {
  const effect = await fetchKind.execute(
    fetchSpec("http://127.0.0.1:9/x", "restore/x"),
    context(rooted("/nonexistent")),
  ) as FetchEffect;
  assert.deepEqual(effect, {
    ok: false,
    reason: '"to" is restore/x, a relative path on elsewhere: write an absolute path there',
    transferred: 0,
  });
});

Deno.test("target() is this machine, when asked for local", () => {
  assert.equal(targetNamed("local"), localTarget);
});
