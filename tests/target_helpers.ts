/**
 * What the tests of steps on a target share (`target_fetch_test.ts`, `hosts_ssh_test.ts`): a
 * target that counts what it is asked, a target whose files live under a root directory of its
 * own, a step context, a fetch spec, and a loopback HTTP server over a temporary directory.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Target } from "../steps/kind.ts";
import { localTarget } from "../steps/targets/local.ts";
import { realClock } from "../steps/types.ts";
import type { FetchSpec } from "../steps/types.ts";
import { type BackupServer, startBackupServer } from "./http_backup_server.ts";

/** `n` bytes that differ from one offset to the next. */
export function data(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = (i * 7 + (i >> 9)) & 0xff;
  return bytes;
}

/** The sha256 of `bytes`, lower-case hex. */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** What the test targets were asked, by operation. */
export type Calls = Record<string, number>;

/** Wraps `inner`, counting each operation (so a test sees the fetch went through it). */
export function counted(inner: Target, name: string): { target: Target; calls: Calls } {
  const calls: Calls = {};
  const count = (op: string) => calls[op] = (calls[op] ?? 0) + 1;
  const target: Target = {
    name,
    spawn: (cmd) => (count("spawn"), inner.spawn(cmd)),
    killGroup: (pgid, grace) => (count("killGroup"), inner.killGroup(pgid, grace)),
    groupAlive: (pgid) => (count("groupAlive"), inner.groupAlive(pgid)),
    stat: (p) => (count("stat"), inner.stat(p)),
    openWrite: (p, o) => (count("openWrite"), inner.openWrite(p, o)),
    rename: (a, b) => (count("rename"), inner.rename(a, b)),
    remove: (p) => (count("remove"), inner.remove(p)),
    mkdir: (p) => (count("mkdir"), inner.mkdir(p)),
    sha256: (p, s) => (count("sha256"), inner.sha256(p, s)),
  };
  return { target, calls };
}

/**
 * A target whose files live under `root` (`/srv/x` is `ROOT/srv/x`): this machine's file
 * operations, elsewhere. Its processes are this machine's (`sh` programs get paths unmapped:
 * only file operations are used here).
 */
export function rooted(root: string): Target {
  const at = (p: string) => join(root, p);
  return {
    ...localTarget,
    name: "elsewhere",
    stat: (p) => localTarget.stat(at(p)),
    openWrite: (p, o) => localTarget.openWrite(at(p), o),
    rename: (a, b) => localTarget.rename(at(a), at(b)),
    remove: (p) => localTarget.remove(at(p)),
    mkdir: (p) => localTarget.mkdir(at(p)),
    sha256: (p, s) => localTarget.sha256(at(p), s),
  };
}

/** A step context on `target` (real clock, a small PATH). */
export function context(target: Target, signal = new AbortController().signal) {
  return {
    signal,
    clock: realClock,
    env: { PATH: "/usr/bin:/bin" },
    log: () => {},
    target,
  };
}

/** A fetch of `url` to `to` (its temporary name beside it), without retries. */
export function fetchSpec(url: string, to: string, extra: Partial<FetchSpec> = {}): FetchSpec {
  return {
    sources: [{ kind: "location", location: url }],
    to,
    tmp: join(to, "..", `.${to.split("/").pop()}.thaw-r1.part`),
    retries: 0,
    backoffMs: 10,
    ...extra,
  };
}

/**
 * Serves `files` from a temporary directory (readable by other users) on 127.0.0.1 for `body`;
 * the server is closed and the directory removed after, also when `body` throws.
 */
export async function withServer(
  files: Record<string, Uint8Array>,
  body: (server: BackupServer, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-target-fetch-" });
  await Deno.chmod(dir, 0o755);
  const served = join(dir, "served");
  await Deno.mkdir(served);
  for (const [name, bytes] of Object.entries(files)) {
    await Deno.writeFile(join(served, name), bytes);
  }
  const server = startBackupServer(served);
  try {
    await body(server, dir);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}
