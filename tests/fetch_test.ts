import { deepEqual, equal, match, ok } from "node:assert/strict";
import { createHash } from "node:crypto";
import { fetchData } from "../steps/fetch/fetch.ts";
import {
  type FetchContext,
  type FetchEffect,
  type FetchSpec,
  realClock,
  type SourceSpec,
  type Spawned,
} from "../steps/types.ts";
import { type BackupServer, type Faults, startBackupServer } from "./http_backup_server.ts";

const SIZE = 3 * 1024 * 1024 + 12345;

interface Fixture {
  dir: string;
  data: Uint8Array;
  sha256: string;
  server: BackupServer;
  /** `http://127.0.0.1:PORT/data.bin` */
  url: string;
  to: string;
  tmp: string;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A temporary directory with `srv/data.bin` (random), served on 127.0.0.1. */
async function fixture(faults: Faults = {}): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-fetch-" });
  const data = new Uint8Array(SIZE);
  for (let i = 0; i < SIZE; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  await Deno.mkdir(`${dir}/srv`);
  await Deno.writeFile(`${dir}/srv/data.bin`, data);
  const server = startBackupServer(`${dir}/srv`, faults);
  return {
    dir,
    data,
    sha256: sha256(data),
    server,
    url: `${server.url}data.bin`,
    to: `${dir}/restore/db/data.bin`,
    tmp: `${dir}/restore/db/.data.bin.thaw-tmp`,
    async [Symbol.asyncDispose]() {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A context on the real clock; the link counts every byte taken. */
function context(extra: Partial<FetchContext> = {}) {
  const counted = { bytes: 0, takes: 0, progress: [] as number[], logs: [] as string[] };
  const ctx: FetchContext = {
    signal: new AbortController().signal,
    clock: realClock,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    cwd: "/",
    log: (line) => counted.logs.push(line),
    link: {
      take: (bytes) => {
        counted.bytes += bytes;
        counted.takes++;
        return Promise.resolve();
      },
    },
    progress: (bytes) => counted.progress.push(bytes),
    ...extra,
  };
  return { ctx, counted };
}

function spec(f: Fixture, sources: (string | SourceSpec)[], more: Partial<FetchSpec> = {}) {
  return {
    sources: sources.map((s) => typeof s === "string" ? { kind: "location", location: s } : s),
    to: f.to,
    tmp: f.tmp,
    sha256: f.sha256,
    retries: 2,
    backoffMs: 5,
    ...more,
  } as FetchSpec;
}

const run = (command: string): SourceSpec => ({ kind: "run", command, shell: "bash" });

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

function assertOk(effect: FetchEffect): asserts effect is Extract<FetchEffect, { ok: true }> {
  ok(effect.ok, effect.ok ? "" : effect.reason);
}

async function assertDelivered(f: Fixture, effect: FetchEffect, source = 0): Promise<void> {
  assertOk(effect);
  equal(effect.source, source);
  equal(effect.bytes, SIZE);
  equal(sha256(await Deno.readFile(f.to)), f.sha256);
  equal(await exists(f.tmp), false);
}

async function assertNothingLeft(f: Fixture): Promise<void> {
  equal(await exists(f.to), false, "to must not exist");
  equal(await exists(f.tmp), false, "tmp must not exist");
}

Deno.test("fetchData() resumes with a Range request, when the connection drops mid-file", async () => {
  await using f = await fixture({ dropAfter: 1_000_000 });
  const { ctx, counted } = context();
  const effect = await fetchData(spec(f, [f.url]), ctx);
  await assertDelivered(f, effect);
  deepEqual(f.server.requests.map((r) => [r.range, r.status]), [
    [null, 200],
    ["bytes=1000000-", 206],
  ]);
  ok(effect.transferred >= SIZE && effect.transferred < 1.3 * SIZE);
  equal(counted.bytes, effect.transferred);
  equal(counted.progress.at(-1), SIZE);
});

Deno.test("fetchData() completes from a flaky server, when it answers 503 once and drops mid-file", async () => {
  await using f = await fixture({ fail503: 1, dropAfter: 2_000_000 });
  const effect = await fetchData(spec(f, [f.url]), context().ctx);
  await assertDelivered(f, effect);
  deepEqual(f.server.requests.map((r) => r.status), [503, 200, 206]);
  ok(f.server.bytesSent < 1.3 * SIZE, `${f.server.bytesSent} bytes sent`);
});

Deno.test("fetchData() continues in the next attempt, when the resume is answered 503", async () => {
  await using f = await fixture({ dropAfter: 1_500_000, fail503Ranges: 1 });
  const effect = await fetchData(spec(f, [f.url]), context().ctx);
  await assertDelivered(f, effect);
  deepEqual(f.server.requests.map((r) => [r.range, r.status]), [
    [null, 200],
    ["bytes=1500000-", 503],
    ["bytes=1500000-", 206],
  ]);
  ok(f.server.bytesSent < 1.3 * SIZE);
});

Deno.test("fetchData() fails clearly and leaves nothing, when the source serves corrupt bytes", async () => {
  await using f = await fixture({ corrupt: true });
  const effect = await fetchData(spec(f, [f.url]), context().ctx);
  ok(!effect.ok);
  match(
    effect.reason,
    new RegExp(`^${f.url}: sha256 mismatch: expected ${f.sha256}, got [0-9a-f]{64}$`),
  );
  equal(f.server.requests.length, 1, "a mismatch is not retried");
  await assertNothingLeft(f);
});

Deno.test("fetchData() falls back to the next tier, when the first source fails", async () => {
  await using f = await fixture();
  const effect = await fetchData(spec(f, [`${f.server.url}missing.bin`, f.url]), context().ctx);
  await assertDelivered(f, effect, 1);
  equal(f.server.requests[0]!.status, 404);

  await Deno.remove(f.to);
  const second = await fetchData(spec(f, [`${f.dir}/nowhere/data.bin`, f.url]), context().ctx);
  await assertDelivered(f, second, 1);
});

Deno.test("fetchData() lists every source tried and why, when all fail", async () => {
  await using f = await fixture({ fail503: 100 });
  const missing = `${f.dir}/nowhere/data.bin`;
  const effect = await fetchData(
    spec(f, [`${f.server.url}data.bin`, missing, `file://${missing}`, run("exit 3")], {
      retries: 1,
      backoffMs: 1,
    }),
    context().ctx,
  );
  ok(!effect.ok);
  deepEqual(effect.reason.split("\n"), [
    `${f.url}: HTTP 503 Service Unavailable (2 attempts)`,
    `${missing}: no such file or directory`,
    `file://${missing}: no such file or directory: ${missing}`,
    "run: exit 3: exit code 3 (2 attempts)",
  ]);
  await assertNothingLeft(f);
});

Deno.test("fetchData() fails a 4xx source at once, when retries are left", async () => {
  await using f = await fixture();
  const effect = await fetchData(
    spec(f, [`${f.server.url}missing.bin`], { retries: 5, backoffMs: 60_000 }),
    context().ctx,
  );
  ok(!effect.ok);
  equal(effect.reason, `${f.server.url}missing.bin: HTTP 404 Not Found`);
  equal(f.server.requests.length, 1);
});

Deno.test("fetchData() gives up an attempt, when the server stalls past timeoutMs", async () => {
  await using f = await fixture({ stallAfter: 100_000 });
  const effect = await fetchData(spec(f, [f.url], { retries: 1, timeoutMs: 300 }), context().ctx);
  await assertDelivered(f, effect);
  deepEqual(f.server.requests.map((r) => [r.range, r.status]), [[null, 200], [
    "bytes=100000-",
    206,
  ]]);

  f.server.faults.stallAfter = 0;
  const failed = await fetchData(spec(f, [f.url], { retries: 0, timeoutMs: 300 }), context().ctx);
  ok(!failed.ok);
  equal(failed.reason, `${f.url}: timed out after 300ms`);
});

Deno.test("fetchData() continues after the bytes under tmp, when a previous run left them", async () => {
  await using f = await fixture();
  await Deno.mkdir(`${f.dir}/restore/db`, { recursive: true });
  await Deno.writeFile(f.tmp, f.data.subarray(0, 1_234_567));
  const { ctx, counted } = context();
  const effect = await fetchData(spec(f, [f.url]), ctx);
  await assertDelivered(f, effect);
  deepEqual(f.server.requests.map((r) => [r.range, r.status]), [["bytes=1234567-", 206]]);
  equal(effect.transferred, SIZE - 1_234_567);
  equal(counted.bytes, SIZE - 1_234_567);
});

Deno.test("fetchData() starts over from byte 0, when the bytes under tmp are wrong or too many", async () => {
  await using f = await fixture();
  await Deno.mkdir(`${f.dir}/restore/db`, { recursive: true });
  await Deno.writeFile(f.tmp, new Uint8Array(1000).fill(7));
  const effect = await fetchData(spec(f, [f.url], { retries: 0 }), context().ctx);
  await assertDelivered(f, effect);
  deepEqual(f.server.requests.map((r) => r.range), ["bytes=1000-", null]);

  await Deno.writeFile(f.tmp, new Uint8Array(SIZE + 1));
  await fetchData(spec(f, [f.url], { size: SIZE }), context().ctx).then(assertOk);
  equal(f.server.requests.at(-1)!.range, null);
});

Deno.test("fetchData() starts over from byte 0, when the server ignores Range", async () => {
  await using f = await fixture({ ignoreRange: true });
  await Deno.mkdir(`${f.dir}/restore/db`, { recursive: true });
  await Deno.writeFile(f.tmp, f.data.subarray(0, 5000));
  const effect = await fetchData(spec(f, [f.url]), context().ctx);
  await assertDelivered(f, effect);
  equal(effect.transferred, SIZE);
});

Deno.test("fetchData() copies a file, when given a file:// URL or a plain path", async () => {
  await using f = await fixture();
  for (const location of [`file://${f.dir}/srv/data.bin`, `${f.dir}/srv/data.bin`]) {
    await Deno.remove(`${f.dir}/restore`, { recursive: true }).catch(() => {});
    const { ctx, counted } = context();
    const effect = await fetchData(spec(f, [location]), ctx);
    await assertDelivered(f, effect);
    equal(effect.transferred, SIZE);
    equal(counted.bytes, SIZE);
    ok(counted.takes > 1);
  }
  await Deno.writeFile(f.tmp, f.data.subarray(0, 777_777));
  const resumed = await fetchData(spec(f, [`${f.dir}/srv/data.bin`]), context().ctx);
  await assertDelivered(f, resumed);
  equal(resumed.transferred, SIZE - 777_777);
});

Deno.test("fetchData() clones a file, when cp --reflink=always succeeds", async () => {
  await using f = await fixture();
  const bin = `${f.dir}/bin`;
  await Deno.mkdir(bin);
  const cp = (await new Deno.Command("bash", { args: ["-c", "command -v cp"] }).output()).stdout;
  await Deno.writeTextFile(
    `${bin}/cp`,
    `#!/bin/sh\n[ "$1" = --reflink=always ] || exit 64\necho "$@" >> ${bin}/calls\nshift\nexec ${
      new TextDecoder().decode(cp).trim()
    } "$@"\n`,
    { mode: 0o755 },
  );
  const path = Deno.env.get("PATH") ?? "";
  Deno.env.set("PATH", `${bin}:${path}`);
  try {
    const { ctx, counted } = context();
    const effect = await fetchData(spec(f, [`${f.dir}/srv/data.bin`]), ctx);
    await assertDelivered(f, effect);
    equal(effect.transferred, 0, "a clone moves nothing over the link");
    equal(counted.bytes, 0);
    match(
      await Deno.readTextFile(`${bin}/calls`),
      /^--reflink=always -- \S+data.bin \S+thaw-tmp\n$/,
    );
    await Deno.remove(f.to);
    const bad = await fetchData(
      spec(f, [`${f.dir}/srv/data.bin`], { sha256: "0".repeat(64) }),
      ctx,
    );
    ok(!bad.ok);
    match(bad.reason, /sha256 mismatch: expected 0{64}, got /);
    await assertNothingLeft(f);
  } finally {
    Deno.env.set("PATH", path);
  }
});

Deno.test("fetchData() copies a directory tree, when the source is a directory", async () => {
  await using f = await fixture();
  await Deno.mkdir(`${f.dir}/srv/tree/sub`, { recursive: true });
  await Deno.writeTextFile(`${f.dir}/srv/tree/a.txt`, "alpha");
  await Deno.writeTextFile(`${f.dir}/srv/tree/sub/b.txt`, "bravo!");
  await Deno.symlink("a.txt", `${f.dir}/srv/tree/link`);
  const { ctx, counted } = context();
  const effect = await fetchData(spec(f, [`${f.dir}/srv/tree`], { sha256: undefined }), ctx);
  assertOk(effect);
  equal(effect.bytes, 11);
  equal(counted.bytes, 11);
  equal(await Deno.readTextFile(`${f.to}/sub/b.txt`), "bravo!");
  equal(await Deno.readLink(`${f.to}/link`), "a.txt");

  const checked = await fetchData(spec(f, [`${f.dir}/srv/tree`]), ctx);
  ok(!checked.ok);
  match(checked.reason, /is a directory, but sha256 is set/);
});

Deno.test("fetchData() runs a command that writes a file, when the source is run:", async () => {
  await using f = await fixture();
  const spawned: Spawned[] = [];
  const { ctx } = context({
    cwd: `${f.dir}/srv`,
    env: { PATH: Deno.env.get("PATH") ?? "", NAME: "data.bin" },
    onSpawn: (p) => spawned.push(p),
  });
  const effect = await fetchData(spec(f, [run('cat "$NAME" > "$THAW_TO"')]), ctx);
  await assertDelivered(f, effect);
  equal(effect.transferred, SIZE);
  equal(spawned.length, 1);
  equal(spawned[0]!.pgid, spawned[0]!.pid);
});

Deno.test("fetchData() runs a command that writes a directory, when the source is run:", async () => {
  await using f = await fixture();
  await Deno.mkdir(`${f.dir}/restore/db/.data.bin.thaw-tmp/stale`, { recursive: true });
  const command =
    'mkdir -p "$THAW_TO/sub" && printf abc > "$THAW_TO/a" && printf de > "$THAW_TO/sub/b"';
  const effect = await fetchData(spec(f, [run(command)], { sha256: undefined }), context().ctx);
  assertOk(effect);
  equal(effect.bytes, 5);
  equal(await Deno.readTextFile(`${f.to}/sub/b`), "de");
  equal(await exists(`${f.to}/stale`), false, "a run source starts from an empty tmp");
});

Deno.test("fetchData() stops a run: command's process group, while the link holds it back", async () => {
  await using f = await fixture();
  let pid = 0;
  let stateWhileHeld = "";
  const go = `${f.dir}/go`;
  const { ctx } = context({
    onSpawn: (p) => pid = p.pid,
    link: {
      take: async () => {
        if (stateWhileHeld !== "") return;
        for (let i = 0; i < 200 && stateWhileHeld !== "T"; i++) {
          await new Promise((resolve) => setTimeout(resolve, 25));
          stateWhileHeld = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1]![0]!;
        }
        await Deno.writeTextFile(go, "");
      },
    },
  });
  const command = `printf abc > "$THAW_TO"; until [ -e ${go} ]; do sleep 0.05; done`;
  const effect = await fetchData(spec(f, [run(command)], { sha256: undefined }), ctx);
  assertOk(effect);
  equal(stateWhileHeld, "T", "stopped while the link held it back");
  equal(await Deno.readTextFile(f.to), "abc");
});

Deno.test("fetchData() reports the exit code and stderr, when the run: command fails", async () => {
  await using f = await fixture();
  const command =
    'printf partial > "$THAW_TO"; echo "connecting" >&2; echo "disk on fire" >&2; exit 3';
  const effect = await fetchData(spec(f, [run(command)], { retries: 1 }), context().ctx);
  ok(!effect.ok);
  match(effect.reason, /^run: printf partial > "\$THAW_TO"; echo .*…: exit code 3: /);
  match(effect.reason, /: exit code 3: connecting \| disk on fire \(2 attempts\)$/);
  await assertNothingLeft(f);
});

Deno.test("fetchData() kills the process group, when a run: source times out", async () => {
  await using f = await fixture();
  const command = `sleep 60 & echo $! > ${f.dir}/pid; wait`;
  const effect = await fetchData(
    spec(f, [run(command)], { retries: 0, timeoutMs: 300 }),
    context().ctx,
  );
  ok(!effect.ok);
  match(effect.reason, /: timed out after 300ms \(process group killed\)$/);
  await assertGone(Number(await Deno.readTextFile(`${f.dir}/pid`)));
  await assertNothingLeft(f);
});

/** Waits until a process is gone or a zombie (killed processes take a moment to be reaped). */
async function assertGone(pid: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
    if (stat === "" || / Z /.test(stat)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  ok(false, `process ${pid} is still running`);
}

Deno.test("fetchData() stops and keeps tmp for a later run, when aborted during an http transfer", async () => {
  await using f = await fixture();
  const controller = new AbortController();
  const { ctx } = context({ signal: controller.signal });
  let taken = 0;
  const link = {
    take: (bytes: number) => {
      taken += bytes;
      if (taken > 1_000_000) controller.abort(new Error("run cancelled"));
      return Promise.resolve();
    },
  };
  const effect = await fetchData(spec(f, [f.url]), { ...ctx, link });
  ok(!effect.ok);
  equal(effect.reason, `${f.url}: aborted (run cancelled)`);
  equal(await exists(f.to), false);
  const kept = (await Deno.stat(f.tmp)).size;
  ok(kept > 0 && kept < SIZE);

  const resumed = await fetchData(spec(f, [f.url]), context().ctx);
  await assertDelivered(f, resumed);
  equal(resumed.transferred, SIZE - kept);
  equal(f.server.requests.at(-1)!.range, `bytes=${kept}-`);
});

Deno.test("fetchData() removes tmp, when aborted during a run: source", async () => {
  await using f = await fixture();
  const controller = new AbortController();
  const { ctx } = context({ signal: controller.signal, onSpawn: () => controller.abort() });
  const effect = await fetchData(spec(f, [run('echo x > "$THAW_TO"; sleep 60')]), ctx);
  ok(!effect.ok);
  match(effect.reason, /^run: .*: aborted/);
  await assertNothingLeft(f);
});

Deno.test("fetchData() passes every byte through the link, when it fetches over http", async () => {
  await using f = await fixture();
  const { ctx, counted } = context();
  const effect = await fetchData(spec(f, [f.url], { sha256: undefined }), ctx);
  await assertDelivered(f, effect);
  equal(counted.bytes, SIZE);
  equal(effect.transferred, SIZE);
  ok(counted.takes > 1);
  ok(counted.progress.every((bytes, i) => i === 0 || bytes >= counted.progress[i - 1]!));
});
