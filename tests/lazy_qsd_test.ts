// LazyVolume against the real qemu-storage-daemon (qemu-system-common), qemu-img (qemu-utils),
// nbdkit with its log filter (nbdkit) to count what is read from the backup, nbdcopy
// (libnbd-bin) to read the NBD export, and FUSE (fuse3, /dev/fuse).
import assert from "node:assert/strict";
import { LazyVolume, type LazyVolumeOptions } from "../steps/fetch/lazy/qsd.ts";
import { mounted } from "../steps/fetch/lazy/qsd_daemon.ts";

const MiB = 1 << 20;
const SIZE = 16 * MiB;

interface Fixture {
  dir: string;
  backing: string;
  sha: string;
  options(extra?: Partial<LazyVolumeOptions>): LazyVolumeOptions;
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Something a test started, stopped after it (last started, first stopped). */
interface Stoppable {
  stop(): Promise<void>;
}

/** A temp dir with a random backing file of SIZE bytes; removed (and daemons stopped) after. */
async function withFixture(fn: (f: Fixture, stopLater: Stoppable[]) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "thaw-qsd-" });
  const backing = `${dir}/backup.img`;
  const data = new Uint8Array(SIZE);
  for (let off = 0; off < SIZE; off += 65536) {
    crypto.getRandomValues(data.subarray(off, off + 65536));
  }
  await Deno.writeFile(backing, data);
  const fixture: Fixture = {
    dir,
    backing,
    sha: await sha256(data),
    options: (extra = {}) => ({
      backing,
      overlay: `${dir}/vol.qcow2`,
      size: SIZE,
      export: { kind: "nbd", socket: `${dir}/vol.sock` },
      runDir: dir,
      log: `${dir}/qsd.log`,
      ...extra,
    }),
  };
  const started: Stoppable[] = [];
  try {
    await fn(fixture, started);
  } finally {
    for (const s of started.reverse()) await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

async function run(cmd: string, args: string[]): Promise<Uint8Array> {
  const out = await new Deno.Command(cmd, { args, stdin: "null" }).output();
  assert(out.success, `${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return out.stdout;
}

/** The overlay's raw content and whether its header still names a backing. */
async function overlayAlone(overlay: string, dir: string) {
  const info = JSON.parse(
    new TextDecoder().decode(await run("qemu-img", ["info", "--output=json", overlay])),
  );
  await run("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", overlay, `${dir}/alone.raw`]);
  const sha = await sha256(await Deno.readFile(`${dir}/alone.raw`));
  return { backing: info["backing-filename"] as string | undefined, sha };
}

/** Bytes of the overlay's own data clusters (not from its backing), per `qemu-img map`. */
async function localBytes(overlay: string): Promise<number> {
  const map = JSON.parse(
    new TextDecoder().decode(await run("qemu-img", ["map", "--output=json", overlay])),
  ) as { depth: number; data: boolean; length: number }[];
  return map.filter((e) => e.depth === 0 && e.data).reduce((n, e) => n + e.length, 0);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("LazyVolume serves the backup's bytes over NBD at attach, before the stream ends", async () => {
  await withFixture(async (f, volumes) => {
    const backup = await nbdkitLogged(f.backing, `${f.dir}/backup.sock`, `${f.dir}/nbdkit.log`);
    volumes.push(backup);
    const vol = await LazyVolume.start(f.options({ backing: backup.uri }));
    volumes.push(vol);
    assert(vol.attachMs < 10_000);
    await vol.stream(256 * 1024);
    const before = await vol.progress();
    assert.equal(before.state, "running");
    assert(before.offset < SIZE, `stream already at ${before.offset}`);
    assert.equal(await vol.home(), false);
    const copy = `${f.dir}/read.raw`;
    await run("nbdcopy", [vol.uri!, copy]);
    assert.equal(await sha256(await Deno.readFile(copy)), f.sha);
    // Every cluster was demanded, so the stream has nothing left to fetch.
    await vol.setSpeed(Infinity);
    assert.equal(await vol.waitHome(10_000), true);
    await vol.stop();
    // Demanded reads and the stream together fetched each byte once.
    assert.equal(await backup.readBytes(), SIZE);
  });
});

Deno.test("LazyVolume serves a read-only FUSE file, when the export is fuse", async () => {
  await withFixture(async (f, volumes) => {
    const file = `${f.dir}/vol.img`;
    await Deno.writeFile(file, new Uint8Array());
    const vol = await LazyVolume.start(f.options({ export: { kind: "fuse", file } }));
    volumes.push(vol);
    assert(mounted(file));
    assert.equal((await Deno.stat(file)).size, SIZE);
    assert.equal(await sha256(await Deno.readFile(file)), f.sha);
    // Read-only: root may open it for writing (no permission check), but no write lands.
    await assert.rejects(async () => {
      using w = await Deno.open(file, { write: true });
      await w.write(new Uint8Array(512));
    });
    await vol.stop();
    assert(!mounted(file));
  });
});

Deno.test("stream() is held to its speed, setSpeed() changes it, and home leaves a plain overlay", async () => {
  await withFixture(async (f, volumes) => {
    const vol = await LazyVolume.start(f.options());
    volumes.push(vol);
    await vol.stream(MiB);
    await sleep(600);
    const slow = await vol.progress();
    assert.equal(slow.speed, MiB);
    assert(slow.offset < SIZE / 2, `at 1 MiB/s the stream reached ${slow.offset} in 0.6 s`);
    await vol.setSpeed(0); // a zero share pauses it
    const paused = await vol.progress();
    assert.equal(paused.paused, true);
    await sleep(300);
    const still = await vol.progress();
    await sleep(300);
    assert.equal((await vol.progress()).offset, still.offset);
    await vol.pause();
    await vol.setSpeed(Infinity); // still paused by pause()
    assert.equal((await vol.progress()).paused, true);
    await vol.resume();
    assert.equal(await vol.waitHome(10_000), true);
    assert.deepEqual(await vol.progress(), {
      state: "home",
      offset: SIZE,
      len: SIZE,
      speed: 0,
      paused: false,
    });
    await vol.stop();
    const alone = await overlayAlone(f.options().overlay, f.dir);
    assert.equal(alone.backing, undefined);
    assert.equal(alone.sha, f.sha);
    // Started again on a home overlay, the backup is not needed at all.
    const again = await LazyVolume.start(f.options({ backing: `${f.dir}/gone.img` }));
    volumes.push(again);
    assert.equal(await again.home(), true);
  });
});

Deno.test("setSpeed(), pause() and resume() are harmless, when the stream ends under them", async () => {
  await withFixture(async (f, volumes) => {
    const vol = await LazyVolume.start(f.options());
    volumes.push(vol);
    await vol.stream(Infinity);
    // As the engine does, changing the speed while the job may end at any moment: a command that
    // reaches the daemon just after the job ended must not fail the fetch.
    let calls = 0;
    for (let k = 0; k < 2000 && (await vol.progress()).state !== "home"; k++) {
      await vol.setSpeed(k % 3 === 0 ? 0 : 64 * MiB + k);
      await vol.pause();
      await vol.resume();
      calls += 3;
    }
    assert.equal(await vol.waitHome(10_000), true, `after ${calls} calls`);
    await vol.setSpeed(MiB); // after home: nothing to change, no error
  });
});

/** nbdkit serving `file` read-only on a unix socket, logging each request to `log`. */
async function nbdkitLogged(file: string, socket: string, log: string) {
  const child = new Deno.Command("nbdkit", {
    args: ["-f", "-r", "-U", socket, "--filter=log", "file", `file=${file}`, `logfile=${log}`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 200; i++) {
    try {
      if (Deno.statSync(socket).isSocket) break;
    } catch { /* not yet */ }
    await sleep(10);
  }
  return {
    uri: `nbd+unix:///?socket=${socket}`,
    /** Bytes the backup served, from byte `from` of the log on. */
    async readBytes(from = 0): Promise<number> {
      const text = (await Deno.readTextFile(log)).slice(from);
      let n = 0;
      for (const m of text.matchAll(/ Read id=\d+ offset=0x[0-9a-f]+ count=0x([0-9a-f]+)/g)) {
        n += parseInt(m[1]!, 16);
      }
      return n;
    },
    logLength: async () => (await Deno.readTextFile(log)).length,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
    },
  };
}

Deno.test("LazyVolume resumes after kill -9 from what flush() kept, reading nothing twice", async () => {
  await withFixture(async (f, volumes) => {
    const backup = await nbdkitLogged(f.backing, `${f.dir}/backup.sock`, `${f.dir}/nbdkit.log`);
    try {
      const options = f.options({ backing: backup.uri });
      const first = await LazyVolume.start(options);
      volumes.push(first);
      await first.stream(8 * MiB);
      await sleep(700);
      const streamed = (await first.progress()).offset;
      await first.flush();
      Deno.kill(first.pid, "SIGKILL");
      await first.stop();
      const kept = await localBytes(options.overlay);
      assert(kept >= streamed && streamed > 0, `kept ${kept} of ${streamed} streamed`);
      assert(kept < SIZE, "the stream was not meant to finish before the kill");
      const readBefore = await backup.readBytes();
      const mark = await backup.logLength();

      const second = await LazyVolume.start(options);
      volumes.push(second);
      await second.stream(Infinity);
      assert.equal(await second.waitHome(10_000), true);
      await second.stop();
      const readAfter = await backup.readBytes(mark);
      assert.equal(readAfter, SIZE - kept, "the resumed stream read only what was not kept");
      assert(readBefore + readAfter < 2 * SIZE);
      assert.equal((await overlayAlone(options.overlay, f.dir)).sha, f.sha);
    } finally {
      await backup.stop();
    }
  });
});

Deno.test("LazyVolume.start() names the package, when qemu-storage-daemon is missing", async () => {
  await withFixture(async (f) => {
    await assert.rejects(
      LazyVolume.start(f.options({ binary: `${f.dir}/bin/qemu-storage-daemon` })),
      /lazy fetches need qemu-storage-daemon.*apt-get install qemu-system-common/,
    );
  });
});

Deno.test("LazyVolume errors say why, when the daemon or QMP refuses", async () => {
  await withFixture(async (f, volumes) => {
    // The daemon exits at start: its own words from the log.
    const missing = `${f.dir}/no-such-mountpoint`;
    await assert.rejects(
      LazyVolume.start(f.options({ export: { kind: "fuse", file: missing } })),
      (e: Error) => {
        assert.match(e.message, /^qemu-storage-daemon exited at start \(exit 1\): .+/);
        assert.match(e.message, /no-such-mountpoint/);
        assert.match(e.message, /\(log: .*qsd\.log\)$/);
        return true;
      },
    );
    const vol = await LazyVolume.start(f.options());
    volumes.push(vol);
    await vol.stream(MiB);
    // QMP's desc, as QMP said it.
    await assert.rejects(vol.stream(MiB), /refused block-stream: .*(in use|busy)/);
    await assert.rejects(LazyVolume.start(f.options()), /already serves this volume/);
    assert.equal((await vol.progress()).state, "running", "the first daemon is untouched");
    await vol.stop();
    await assert.rejects(
      LazyVolume.start(f.options({ size: 2 * SIZE })),
      /holds 16777216 bytes, not the 33554432 asked/,
    );
  });
});

Deno.test("a writable NBD export keeps the service's writes, when the stream comes home", async () => {
  await withFixture(async (f, volumes) => {
    const socket = `${f.dir}/vol.sock`;
    const vol = await LazyVolume.start(
      f.options({ export: { kind: "nbd", socket, writable: true } }),
    );
    volumes.push(vol);
    await vol.stream(MiB);
    // 64 KiB of 0xab at 5 MiB, not yet streamed: written through the export, while streaming.
    await run("qemu-io", ["-f", "raw", "-c", "write -P 0xab 5M 64k", vol.uri!]);
    await vol.flush();
    await vol.setSpeed(Infinity);
    assert.equal(await vol.waitHome(10_000), true);
    await vol.stop();
    await run("qemu-img", [
      "convert",
      "-f",
      "qcow2",
      "-O",
      "raw",
      f.options().overlay,
      `${f.dir}/o`,
    ]);
    const got = await Deno.readFile(`${f.dir}/o`);
    const want = await Deno.readFile(f.backing);
    want.fill(0xab, 5 * MiB, 5 * MiB + 65536);
    assert.equal(await sha256(got), await sha256(want));
  });
});

Deno.test("LazyVolume restarts on a FUSE file a killed daemon left mounted", async () => {
  await withFixture(async (f, volumes) => {
    const file = `${f.dir}/vol.img`;
    await Deno.writeFile(file, new Uint8Array());
    const options = f.options({ export: { kind: "fuse", file } });
    const first = await LazyVolume.start(options);
    volumes.push(first);
    await first.stream(MiB);
    await assert.rejects(LazyVolume.start(options), /already serve/);
    Deno.kill(first.pid, "SIGKILL");
    await first.qmp.done;
    assert(mounted(file), "a killed daemon leaves its mount behind");
    const second = await LazyVolume.start(options);
    volumes.push(second);
    assert.equal(await sha256(await Deno.readFile(file)), f.sha);
    await second.stop();
    await first.stop(); // after the fact: nothing left to undo
    assert(!mounted(file));
  });
});
