/**
 * A fetch source may read every chunk into one buffer, over and over (the http source does, to
 * spare an allocation per chunk): each sink copies or writes a chunk before its push resolves, so
 * the data lands intact on this machine (steps/fetch/sink.ts), through a target
 * (steps/fetch/target_sink.ts) and on a real ssh host, whose writer gathers chunks into large
 * writes (steps/targets/ssh_files.ts).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { registerSource, streamedSource } from "../mod.ts";
import { fetchKind } from "../steps/fetch/kind.ts";
import type { Target } from "../steps/kind.ts";
import { localTarget } from "../steps/targets/local.ts";
import type { FetchEffect } from "../steps/types.ts";
import { hasSshd, withSshTarget } from "./sshd.ts";
import { context, data, fetchSpec, rooted, sha256 } from "./target_helpers.ts";

/** More than two of the ssh writer's 1 MiB buffers, in chunks that straddle their edges. */
const ALL = data((3 << 20) + 12_345);
const SHA = sha256(ALL);
const CHUNK = 100_003;

/** `reuse://x`: ALL from the offset asked, every chunk in the same buffer. */
function* reused(offset: number): Generator<Uint8Array> {
  const buffer = new Uint8Array(CHUNK);
  for (let at = offset; at < ALL.length; at += CHUNK) {
    const n = Math.min(CHUNK, ALL.length - at);
    buffer.set(ALL.subarray(at, at + n));
    yield buffer.subarray(0, n);
  }
  buffer.fill(0); // what a sink still pointing at it would write last
}

function register() {
  return registerSource(streamedSource({
    key: "reuse",
    label: "reuse://",
    schemes: ["reuse"],
    open: (_from, request) =>
      Promise.resolve({ body: reused(request.offset), offset: request.offset, size: ALL.length }),
  }));
}

/** Fetches `reuse://x` to `to` on `target` and checks what landed there. */
async function land(to: string, read: (path: string) => Promise<Uint8Array>, target: Target) {
  using _source = register();
  const spec = fetchSpec("reuse://x", to, { sha256: SHA });
  const effect = await fetchKind.execute(spec, context(target)) as FetchEffect;
  assert.equal(effect.ok, true, effect.ok ? "" : effect.reason);
  // The digest was taken as the chunks streamed: only a read-back shows a chunk overwritten
  // before it was written (compared by digest: a diff of megabytes would fill the memory).
  const landed = await read(to);
  assert.equal(landed.length, ALL.length);
  assert.equal(sha256(landed), SHA, "the bytes that landed are not the bytes sent");
}

Deno.test("fetchKind.execute() lands every byte here, when the source reuses one buffer for each chunk", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-sink-reuse-" });
  try {
    await land(join(dir, "db.dump"), (p) => Deno.readFile(p), localTarget);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetchKind.execute() lands every byte through a target, when the source reuses one buffer for each chunk", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-sink-reuse-" });
  try {
    const target = rooted(dir);
    await target.mkdir("/srv");
    await land("/srv/db.dump", (p) => Deno.readFile(join(dir, p)), target);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "fetchKind.execute() lands every byte on an ssh host, when the source reuses one buffer " +
    "for each chunk",
  ignore: !hasSshd(),
  fn: () =>
    withSshTarget(async (target, host) => {
      await land(`${host.dir}/land/db.dump`, (p) => Deno.readFile(p), target);
    }),
});
