/**
 * The backup behind a lazy fetch (steps/fetch/lazy/nbdkit.ts), against the real tools: the
 * stand-in backup server (runbooks/tools/backup.ts) on 127.0.0.1, nbdkit's curl plugin on a unix
 * socket, read with nbdcopy and qemu-img dd, and through an nbdfuse file during an outage. Ignored
 * where nbdkit, nbdcopy, qemu-img or nbdfuse is not installed (CI installs them from Debian).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { block, make, serve } from "../runbooks/tools/backup.ts";
import { startBacking } from "../steps/fetch/lazy/nbdkit.ts";
import { mountFile } from "../steps/fetch/lazy/nbdfuse.ts";
import { findProgram, fuseProblem } from "../steps/fetch/lazy/tools.ts";

const PATH = Deno.env.get("PATH") ?? "";
const ignore = ["nbdkit", "nbdcopy", "qemu-img"].some((p) => !findProgram(p, PATH));
const MIB = 1 << 20;
const NAME = "img.bin";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/** A port nothing listens on now. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}

/** Forwards 127.0.0.1:port to `target`, counting the bytes the target sent back. */
function countingProxy(target: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let received = 0;
  const pipe = async (from: Deno.Conn, to: Deno.Conn, count: boolean) => {
    const buf = new Uint8Array(1 << 16);
    try {
      for (let n; (n = await from.read(buf)) !== null;) {
        if (count) received += n;
        for (let o = 0; o < n;) o += await to.write(buf.subarray(o, n));
      }
    } catch { /* closed */ }
    for (const c of [from, to]) {
      try {
        c.close();
      } catch { /* already */ }
    }
  };
  const accepting = (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({ hostname: "127.0.0.1", port: target });
      conns.add(client).add(server);
      pipe(client, server, false);
      pipe(server, client, true);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    received: () => received,
    close: async () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already */ }
      }
      await accepting;
    },
  };
}

/** What `make` wrote for NAME, bytes `from` to `from + length`. */
function expected(from: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let at = from; at < from + length;) {
    const i = Math.floor(at / MIB), off = at % MIB;
    const part = block(NAME, i).subarray(off, Math.min(MIB, off + from + length - at));
    out.set(part, at - from);
    at += part.length;
  }
  return out;
}

/** How `p` ended: its value, or the error it threw. */
function settled<T>(p: Promise<T>) {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** `qemu-img dd` of `count` 64 KiB blocks from block `skip` of the export; the bytes. */
async function dd(uri: string, skip: number, count: number, out: string): Promise<Uint8Array> {
  // qemu-img dd counts the skipped blocks in `count`.
  const args = ["dd", "-f", "raw", "-O", "raw", "bs=65536", `skip=${skip}`];
  const r = await new Deno.Command("qemu-img", {
    args: [...args, `count=${skip + count}`, `if=${uri}`, `of=${out}`],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  return await Deno.readFile(out);
}

/**
 * A temporary directory holding the 4 MiB image NAME, served by the stand-in backup server on a
 * free port of 127.0.0.1 (`server`: shut down and started again by the outage test); disposed by
 * shutting the server down and removing the directory.
 */
async function backupFixture() {
  const dir = await Deno.makeTempDir({ prefix: "thaw-nbdkit-" });
  const port = freePort();
  const url = `http://127.0.0.1:${port}/${NAME}`;
  const f = {
    dir,
    port,
    url,
    server: serve(dir, port) as Deno.HttpServer | undefined,
    /** `startBacking()`'s options for this backup (read from `url`), gone with the test. */
    backing: (from = url) => ({
      url: from,
      socket: `${dir}/b.sock`,
      log: `${dir}/nbdkit.log`,
      exitWithParent: true,
    }),
    async [Symbol.asyncDispose]() {
      await f.server?.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
  try {
    await make(dir, NAME, 4);
  } catch (e) {
    await f[Symbol.asyncDispose]();
    throw e;
  }
  return f;
}

Deno.test({
  name: "startBacking() serves the backup read-only over NBD and counts the bytes it fetched",
  ignore,
  async fn() {
    await using f = await backupFixture();
    const { dir } = f;
    const proxy = countingProxy(f.port);
    let backing;
    try {
      backing = await startBacking(f.backing(`http://127.0.0.1:${proxy.port}/${NAME}`));
      assert.equal(backing.uri, `nbd+unix:///?socket=${dir}/b.sock`);
      assert.equal(await backing.fetchedBytes(), 0);
      const info = await new Deno.Command("nbdinfo", {
        args: ["--json", "--no-content", backing.uri],
      }).output();
      const exp = JSON.parse(new TextDecoder().decode(info.stdout)).exports[0];
      assert.equal(exp["export-size"], 4 * MIB);
      assert.equal(exp.is_read_only, true);

      // A range: 3 blocks of 64 KiB from 640 KiB on.
      const part = await dd(backing.uri, 10, 3, `${dir}/part`);
      assert.deepEqual(part, expected(10 * 65536, 3 * 65536));
      assert.equal(await backing.fetchedBytes(), 3 * 65536);

      // The whole image, in 256 KiB requests.
      const copy = await new Deno.Command("nbdcopy", {
        args: ["--request-size=262144", backing.uri, `${dir}/copy`],
      }).output();
      assert.equal(copy.code, 0, new TextDecoder().decode(copy.stderr));
      const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
      assert.equal(sha(await Deno.readFile(`${dir}/copy`)), sha(expected(0, 4 * MIB)));
      const fetched = await backing.fetchedBytes();
      assert.equal(fetched, 3 * 65536 + 4 * MIB, "fetched = the bytes read, exactly");
      // On the wire: the same bodies plus the HTTP headers (a few hundred bytes a request).
      const wire = proxy.received();
      console.log(
        `read ${fetched} bytes; fetched ${fetched} (1.000x), on the wire ${wire} ` +
          `(${(wire / fetched).toFixed(4)}x, the HTTP headers)`,
      );
      assert(wire > fetched && wire < fetched * 1.02, `wire ${wire}, fetched ${fetched}`);

      // Started again on the same socket and read log: it refuses a socket something serves,
      // takes over one left by a dead process, and counts its own fetches only.
      await backing.stop();
      backing = undefined;
      const again = f.backing(`http://127.0.0.1:${proxy.port}/${NAME}`);
      // Another nbdkit on the socket, then killed with -9: it leaves its socket behind.
      const squatter = new Deno.Command("nbdkit", {
        args: ["--exit-with-parent", "-U", again.socket, "-P", `${dir}/sq.pid`, "null"],
      }).spawn();
      for (let i = 0; i < 500 && !(await exists(`${dir}/sq.pid`)); i++) await sleep(10);
      await assert.rejects(startBacking(again), /b\.sock: something already serves on this socket/);
      squatter.kill("SIGKILL");
      await squatter.status;
      assert((await Deno.lstat(again.socket)).isSocket, "a stale socket is left");
      backing = await startBacking(again);
      assert.equal(await backing.fetchedBytes(), 0);
      assert.deepEqual(await dd(backing.uri, 63, 1, `${dir}/last`), expected(63 * 65536, 65536));
      assert.equal(await backing.fetchedBytes(), 65536);
    } finally {
      await backing?.stop();
      await proxy.close();
    }
  },
});

Deno.test({
  name: "startBacking() makes reads wait out a 4 s backup outage and return the right bytes",
  ignore: ignore || !findProgram("nbdfuse", PATH) || fuseProblem() !== undefined,
  async fn() {
    await using f = await backupFixture();
    const { dir } = f;
    let backing, mounted;
    try {
      backing = await startBacking(f.backing());
      // A client connected before the outage (as qemu-storage-daemon is): a read-only FUSE file.
      mounted = await mountFile({ uri: backing.uri, file: `${dir}/vol`, log: `${dir}/fuse.log` });
      const file = await Deno.open(mounted.file);
      try {
        const head = new Uint8Array(65536);
        assert.equal(await file.read(head), 65536);
        assert.deepEqual(head, expected(0, 65536));

        await f.server?.shutdown();
        f.server = undefined;
        const down = performance.now();
        // During the outage: a read on the open connection (as qemu-storage-daemon's), and a new
        // connection's read.
        let done = false;
        const far = new Uint8Array(65536);
        await file.seek(3 * MIB, Deno.SeekMode.Start);
        const onOpen = settled(file.read(far).finally(() => done = true));
        const onNew = settled(dd(backing.uri, 40, 2, `${dir}/part`));
        await new Promise((r) => setTimeout(r, 4000));
        assert.equal(done, false, "a read on an open connection waits while the backup is down");
        // A new connection is refused at once, on every nbdkit (`retry-request-open=false`): the
        // HEAD request that asks the size failed. Never a wrong byte, never a hang.
        const early = await Promise.race([onNew, sleep(0).then(() => undefined)]);
        assert(early !== undefined, "a connection made during the outage was refused at once");
        assert(!early.ok, "no new connection can read while the backup is down");
        assert.match(String(early.error), /Requested export not available/);
        f.server = serve(dir, f.port);
        const up = performance.now();
        const read = await onOpen;
        const waited = performance.now() - down, after = performance.now() - up;
        assert(read.ok, `the read on the open connection: ${!read.ok && read.error}`);
        assert.equal(read.value, 65536);
        assert.deepEqual(far, expected(3 * MIB, 65536));
        // Tried again once the backup is back, a new connection reads the right bytes.
        assert.deepEqual(
          await dd(backing.uri, 40, 2, `${dir}/part`),
          expected(40 * 65536, 2 * 65536),
        );
        console.log(
          `reads issued in a ${((up - down) / 1000).toFixed(1)} s outage completed after ` +
            `${(waited / 1000).toFixed(2)} s, ${after.toFixed(0)} ms after the backup was back; ` +
            `a connection made during it was refused at once`,
        );
        const log = await Deno.readTextFile(`${dir}/nbdkit.log`);
        assert.match(log, /problem doing HEAD request to fetch size of URL/);
        assert.match(log, /(Couldn't|Could not) connect to server/);
      } finally {
        file.close();
      }
    } finally {
      await mounted?.stop();
      await backing?.stop();
    }
  },
});

Deno.test({
  name: "setBandwidth() caps what nbdkit fetches from the backup, changed while it runs",
  ignore,
  async fn() {
    await using f = await backupFixture();
    const { dir } = f;
    let backing;
    try {
      backing = await startBacking(f.backing());
      await dd(backing.uri, 0, 1, `${dir}/first`);
      await backing.setBandwidth(MIB);
      await new Promise((r) => setTimeout(r, 1100)); // nbdkit reads the rate file each second
      const start = performance.now();
      const copy = await new Deno.Command("nbdcopy", { args: [backing.uri, "null:"] }).output();
      const seconds = (performance.now() - start) / 1000;
      assert.equal(copy.code, 0);
      // 4 MiB at 1 MiB/s, of which up to 2 s worth (2 MiB) may burst: 2 s at least.
      assert(seconds > 1.5, `4 MiB took ${seconds.toFixed(2)} s at a 1 MiB/s cap`);
      assert.equal(await backing.fetchedBytes(), 65536 + 4 * MIB);
      await assert.rejects(backing.setBandwidth(-1), RangeError);
    } finally {
      await backing?.stop();
    }
  },
});

Deno.test({
  name: "startBacking() keeps serving after the process that started it is killed with -9",
  ignore,
  async fn() {
    await using f = await backupFixture();
    const { dir } = f;
    let pgid = 0;
    try {
      // An engine stand-in: starts the backing as a real run does (not exitWithParent), says its
      // group, and waits to be killed.
      const code = `
        import { startBacking } from ${
        JSON.stringify(import.meta.resolve("../steps/fetch/lazy/nbdkit.ts"))
      };
        const b = await startBacking({ url: ${JSON.stringify(f.url)},
          socket: ${JSON.stringify(`${dir}/b.sock`)}, log: ${
        JSON.stringify(`${dir}/nbdkit.log`)
      } });
        console.log(b.pid);
        setTimeout(() => {}, 60_000);`;
      const engine = new Deno.Command(Deno.execPath(), {
        args: ["eval", code],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = engine.stdout.pipeThrough(new TextDecoderStream()).getReader();
      pgid = Number((await reader.read()).value?.trim());
      assert.ok(pgid > 1, "the stand-in started nbdkit");
      engine.kill("SIGKILL");
      await engine.status;
      reader.releaseLock();
      await engine.stdout.cancel().catch(() => {});
      await sleep(500); // nbdkit's PR_SET_PDEATHSIG would have stopped it by now
      const uri = `nbd+unix:///?socket=${dir}/b.sock`;
      assert.deepEqual(await dd(uri, 20, 2, `${dir}/part`), expected(20 * 65536, 2 * 65536));
    } finally {
      if (pgid > 1) {
        const { killGroup } = await import("../steps/process/process.ts");
        await killGroup(pgid, 3000);
      }
    }
  },
});
