/**
 * An NBD export as a plain file (steps/fetch/lazy/nbdfuse.ts) and the check of the tools lazy
 * fetches need (steps/fetch/lazy/tools.ts), against the real tools: `nbdkit memory` on a unix
 * socket as the NBD server, `nbdfuse` mounting it over a file, `fusermount3` unmounting it. The
 * mount tests are ignored where nbdkit or nbdfuse is missing or FUSE is unusable.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mountedAt, mountFile } from "../steps/fetch/lazy/nbdfuse.ts";
import {
  checkLazyTools,
  findProgram,
  fuseProblem,
  startDaemon,
} from "../steps/fetch/lazy/tools.ts";

const PATH = Deno.env.get("PATH") ?? "";
const ignore = !findProgram("nbdkit", PATH) || !findProgram("nbdfuse", PATH) ||
  fuseProblem() !== undefined;

/** `nbdkit memory SIZE` on a unix socket under `dir`, for the test's life. */
function memoryServer(dir: string, size: string) {
  return startDaemon(
    ["nbdkit", "--exit-with-parent", "-U", `${dir}/m.sock`, "-P", `${dir}/m.pid`, "memory", size],
    { log: `${dir}/nbdkit.log`, pidFile: `${dir}/m.pid` },
  );
}

/** A temp dir with `nbdkit memory SIZE` on `m.sock` in it; both gone when disposed. */
async function memoryFixture(size: string, mode?: number) {
  const dir = await Deno.makeTempDir({ prefix: "thaw-fuse-" });
  if (mode !== undefined) await Deno.chmod(dir, mode);
  const server = await memoryServer(dir, size);
  return {
    dir,
    async [Symbol.asyncDispose]() {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** The export's bytes, copied out with nbdcopy. */
async function exportBytes(dir: string): Promise<Uint8Array> {
  const out = await new Deno.Command("nbdcopy", {
    args: [`nbd+unix:///?socket=${dir}/m.sock`, `${dir}/copy`],
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return await Deno.readFile(`${dir}/copy`);
}

Deno.test({
  name: "mountFile() presents a writable export as a file whose writes reach the server",
  ignore: ignore || !findProgram("nbdcopy", PATH),
  async fn() {
    await using fx = await memoryFixture("1M");
    const dir = fx.dir;
    let mounted;
    try {
      const file = `${dir}/restore/vol.img`;
      mounted = await mountFile({
        socket: `${dir}/m.sock`,
        file,
        writable: true,
        log: `${dir}/nbdfuse.log`,
      });
      assert.equal(mounted.file, file);
      assert.equal(mountedAt(file), "fuse");
      assert.equal((await Deno.stat(file)).size, 1 << 20);
      const words = new TextEncoder().encode("written through the file");
      {
        using f = await Deno.open(file, { read: true, write: true });
        await f.seek(12345, Deno.SeekMode.Start);
        assert.equal(await f.write(words), words.length);
        await f.syncData();
        await f.seek(12345, Deno.SeekMode.Start);
        const back = new Uint8Array(words.length);
        assert.equal(await f.read(back), words.length);
        assert.deepEqual(back, words);
      }

      await mounted.stop();
      assert.equal(await mounted.exited, 0);
      assert.equal(mountedAt(file), undefined);
      // The empty file it was mounted over (made by mountFile) is gone with the mount.
      await assert.rejects(Deno.stat(file), Deno.errors.NotFound);
      // What was written lives on in the server.
      const bytes = await exportBytes(dir);
      assert.deepEqual(bytes.subarray(12345, 12345 + words.length), words);
      assert.equal(bytes.subarray(0, 12345).some((b) => b !== 0), false);
    } finally {
      await mounted?.stop();
    }
  },
});

Deno.test({
  name: "mountFile() with allowOther lets another user (nobody) write the file; without, not",
  ignore: ignore || Deno.uid() !== 0 || !findProgram("setpriv", PATH),
  async fn() {
    await using fx = await memoryFixture("1M", 0o755);
    const dir = fx.dir;
    let mounted;
    // dd as nobody: writes "nobody" at byte 4096 of the file; its exit code and stderr.
    const asNobody = async (file: string) => {
      const out = await new Deno.Command("setpriv", {
        args: [
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          "sh",
          "-c",
          `printf nobody | dd of=${file} bs=1 seek=4096 conv=notrunc status=none`,
        ],
        stderr: "piped",
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    };
    try {
      const file = `${dir}/vol.img`;
      const options = { socket: `${dir}/m.sock`, file, writable: true, log: `${dir}/a.log` };
      mounted = await mountFile(options);
      const denied = await asNobody(file);
      assert.notEqual(denied.code, 0);
      assert.match(denied.stderr, /Permission denied/);
      await mounted.stop();
      mounted = await mountFile({ ...options, allowOther: true });
      assert.deepEqual(await asNobody(file), { code: 0, stderr: "" });
      await mounted.stop();
      mounted = undefined;
      const bytes = await exportBytes(dir);
      assert.equal(new TextDecoder().decode(bytes.subarray(4096, 4102)), "nobody");
    } finally {
      await mounted?.stop();
    }
  },
});

Deno.test({
  name: "mountFile() mounts read-only by default, and refuses a file that holds data",
  ignore,
  async fn() {
    await using fx = await memoryFixture("64K");
    const dir = fx.dir;
    let mounted;
    try {
      await Deno.writeTextFile(`${dir}/taken`, "a restored file");
      await assert.rejects(
        mountFile({ socket: `${dir}/m.sock`, file: `${dir}/taken`, log: `${dir}/a.log` }),
        /taken holds 15 bytes; a lazy fetch would hide them: move it away first/,
      );
      assert.equal(await Deno.readTextFile(`${dir}/taken`), "a restored file");

      await Deno.writeFile(`${dir}/ro`, new Uint8Array(0));
      mounted = await mountFile({
        socket: `${dir}/m.sock`,
        file: `${dir}/ro`,
        log: `${dir}/b.log`,
      });
      assert.equal((await Deno.stat(`${dir}/ro`)).size, 65536);
      await assert.rejects(Deno.writeFile(`${dir}/ro`, new Uint8Array(1)));
      await assert.rejects(
        mountFile({ socket: `${dir}/m.sock`, file: `${dir}/ro`, log: `${dir}/c.log` }),
        /ro is already mounted \(fuse\); unmount it first: fusermount3 -u /,
      );
      await mounted.stop();
      // A file that was there before stays, empty, as it was.
      assert.equal((await Deno.stat(`${dir}/ro`)).size, 0);
    } finally {
      await mounted?.stop();
    }
  },
});

Deno.test({
  name: "mountFile() clears the dead mount an nbdfuse killed with -9 left, and mounts again",
  ignore,
  async fn() {
    await using fx = await memoryFixture("64K");
    const dir = fx.dir;
    let mounted;
    try {
      const file = `${dir}/vol`;
      const first = await mountFile({ socket: `${dir}/m.sock`, file, log: `${dir}/a.log` });
      Deno.kill(first.pid, "SIGKILL");
      await first.exited;
      assert.equal(mountedAt(file), "fuse");
      await assert.rejects(Deno.stat(file)); // "Transport endpoint is not connected"
      mounted = await mountFile({ socket: `${dir}/m.sock`, file, log: `${dir}/b.log` });
      assert.equal((await Deno.stat(file)).size, 65536);
    } finally {
      await mounted?.stop();
      if (mountedAt(`${dir}/vol`) !== undefined) {
        await new Deno.Command("fusermount3", { args: ["-u", "-z", `${dir}/vol`] }).output();
      }
    }
  },
});

Deno.test({
  name: "mountFile() says what to install when nbdfuse is missing, before touching the file",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "thaw-fuse-" });
    try {
      await assert.rejects(
        mountFile({
          socket: `${dir}/m.sock`,
          file: `${dir}/vol`,
          log: `${dir}/a.log`,
          env: { PATH: dir },
        }),
        { message: "lazy fetches need nbdfuse: apt-get install libnbd-bin" },
      );
      await assert.rejects(Deno.stat(`${dir}/vol`), Deno.errors.NotFound);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("checkLazyTools() names exactly the missing tools and their packages", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-tools-" });
  try {
    const none = await checkLazyTools({ path: dir, fuseDevice: `${dir}/fuse` });
    assert.deepEqual(none.missing, [
      "qemu-storage-daemon",
      "qemu-img",
      "nbdkit",
      "nbdfuse",
      "fusermount3",
    ]);
    assert.equal(
      none.message,
      "lazy fetches need qemu-storage-daemon, qemu-img, nbdkit, nbdfuse, fusermount3: " +
        "apt-get install qemu-system-common qemu-utils nbdkit libnbd-bin fuse3",
    );
    assert.equal(none.fuse.usable, false);

    // Some present (fake programs), FUSE device absent: named apart.
    for (const name of ["qemu-storage-daemon", "qemu-img", "nbdfuse", "fusermount3"]) {
      await Deno.writeTextFile(`${dir}/${name}`, "#!/bin/sh\n", { mode: 0o755 });
    }
    const some = await checkLazyTools({ path: dir, fuseDevice: `${dir}/fuse` });
    assert.deepEqual(some.missing, ["nbdkit"]);
    assert.deepEqual(some.packages, ["nbdkit"]);
    assert.equal(
      some.message,
      `lazy fetches need nbdkit: apt-get install nbdkit; FUSE is not usable: ${dir}/fuse is ` +
        "missing (no FUSE in this kernel or container: in a container, pass --device /dev/fuse)",
    );
    // An nbdkit without its curl plugin (Fedora splits it out).
    await Deno.writeTextFile(
      `${dir}/nbdkit`,
      "#!/bin/sh\necho \"nbdkit: error: cannot open plugin 'curl': no such file\" >&2\nexit 1\n",
      { mode: 0o755 },
    );
    const plugin = await checkLazyTools({ path: dir, fuseDevice: `${dir}/fuse` });
    assert.deepEqual(plugin.missing, ["nbdkit's curl plugin"]);
    await Deno.remove(`${dir}/nbdkit`);
    // A read-only fetch does not need nbdfuse.
    await Deno.remove(`${dir}/nbdfuse`);
    const ro = await checkLazyTools({ path: dir, writable: false, fuseDevice: `${dir}/fuse` });
    assert.deepEqual(ro.missing, ["nbdkit"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "checkLazyTools() finds nothing missing where the Debian packages are installed",
  ignore: ["qemu-storage-daemon", "qemu-img", "nbdkit", "nbdfuse", "fusermount3"]
    .some((p) => !findProgram(p, PATH)) || fuseProblem() !== undefined,
  async fn() {
    const all = await checkLazyTools();
    assert.deepEqual(all, { missing: [], packages: [], fuse: { usable: true } });
  },
});
