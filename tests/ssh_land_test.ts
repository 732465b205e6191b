/**
 * A fetch's data landing on a host over ssh, through the one landing path the fetch kind has
 * (steps/fetch/target_sink.ts and place.ts over steps/targets/ssh_files.ts), against a real sshd on
 * 127.0.0.1 (tests/sshd.ts): continued after an engine writing it is killed with -9 (its `cat` may
 * still be emptying its buffers: the lock and the cut at the offset keep a byte from being
 * doubled), checked, renamed; never over a directory thaw did not write.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { hasSshd, withSshTarget as withHost } from "./sshd.ts";
import { fetchKind } from "../steps/fetch/kind.ts";
import type { FetchEffect } from "../steps/types.ts";
import { context, counted, data, fetchSpec, sha256, withServer } from "./target_helpers.ts";

const ignore = !hasSshd();
const ALL = data(3 << 20);
const SHA = sha256(ALL);

Deno.test({
  name: "fetchKind.execute() on an ssh host continues after the bytes of an engine killed with -9",
  ignore,
  fn: () =>
    withHost((ssh, host) =>
      withServer({ "db.dump": ALL }, async (server) => {
        const spec = fetchSpec(`${server.url}db.dump`, `${host.dir}/land/db.dump`, {
          sha256: SHA,
        });
        await Deno.mkdir(`${host.dir}/land`);
        await Deno.writeFile(`${host.dir}/src`, ALL);
        // An engine writes the first 2 MiB through its own connection, then is killed with -9.
        const code = `
        import { SshTarget } from ${
          JSON.stringify(new URL("../steps/targets/ssh.ts", import.meta.url).href)
        };
        const t = new SshTarget("h1", { ssh: ${JSON.stringify(host.alias)} }, { sshConfig: ${
          JSON.stringify(host.config)
        }, controlDir: ${JSON.stringify(host.dir)} });
        const all = await Deno.readFile(${JSON.stringify(`${host.dir}/src`)});
        const w = await t.openWrite(${JSON.stringify(spec.tmp)}, { offset: 0 });
        for (let i = 0; i < 32; i++) await w.write(all.slice(i << 16, (i + 1) << 16));
        console.log("written");
        await new Promise(() => {});`;
        const engine = new Deno.Command(Deno.execPath(), {
          args: ["eval", code],
          stdout: "piped",
        }).spawn();
        try {
          const reader = engine.stdout.pipeThrough(new TextDecoderStream()).getReader();
          assert.equal((await reader.read()).value?.trim(), "written");
          await reader.cancel();
        } finally {
          engine.kill("SIGKILL");
          await engine.status;
        }

        const { target, calls } = counted(ssh, "h1");
        const effect = await fetchKind.execute(spec, context(target)) as FetchEffect;
        assert.equal(effect.ok, true, effect.ok ? "" : effect.reason);
        const range = /^bytes=(\d+)-$/.exec(server.requests.at(-1)?.range ?? "");
        const offset = Number(range?.[1]);
        assert(offset > 0 && offset <= 2 << 20, `continued at ${range?.[0]}`);
        assert.equal(effect.transferred, ALL.length - offset);
        assert.equal(calls.sha256, 1, "checked on the host: the first bytes were not seen here");
        assert.deepEqual(await Deno.readFile(spec.to), ALL);
        assert.equal(await ssh.stat(spec.tmp), null);
      })
    ),
});

Deno.test({
  name: "fetchKind.execute() on an ssh host leaves `to` alone and no temporary file, when the " +
    "sha256 does not match",
  ignore,
  fn: () =>
    withHost((ssh, host) =>
      withServer({ "db.dump": ALL.subarray(0, 100_000) }, async (server) => {
        const spec = fetchSpec(`${server.url}db.dump`, `${host.dir}/x`, {
          sha256: "0".repeat(64),
        });
        await Deno.writeTextFile(spec.to, "old");
        const effect = await fetchKind.execute(spec, context(ssh)) as FetchEffect;
        assert.equal(effect.ok, false);
        assert.match(effect.ok ? "" : effect.reason, /sha256 mismatch: expected 0{64}/);
        assert.equal(await Deno.readTextFile(spec.to), "old");
        assert.equal(await ssh.stat(spec.tmp), null);
      })
    ),
});

Deno.test({
  name: "fetchKind.execute() on an ssh host refuses a directory at `to` it did not write, before " +
    "a byte moves",
  ignore,
  fn: () =>
    withHost((ssh, host) =>
      withServer({ "db.dump": ALL.subarray(0, 1000) }, async (server) => {
        const to = join(host.dir, "restore");
        await Deno.mkdir(to);
        await Deno.writeTextFile(`${to}/keep`, "mine");
        const spec = fetchSpec(`${server.url}db.dump`, to);
        const effect = await fetchKind.execute(spec, context(ssh)) as FetchEffect;
        assert.equal(effect.ok, false);
        assert.match(
          effect.ok ? "" : effect.reason,
          /^h1:.*\/restore is an existing directory thaw did not write/,
        );
        assert.equal(await Deno.readTextFile(`${to}/keep`), "mine");
        assert.equal(await ssh.stat(spec.tmp), null);
        assert.equal(server.requests.length, 0, "refused before a byte moved");
      })
    ),
});

Deno.test({
  name: "openWrite() at an offset cuts what follows it, and refuses one past the end",
  ignore,
  fn: () =>
    withHost(async (t, host) => {
      const path = `${host.dir}/it's "a" $file`;
      await Deno.writeTextFile(path, "0123456789");
      const w = await t.openWrite(path, { offset: 4 });
      await w.write(new TextEncoder().encode("ab"));
      await w.close();
      assert.equal(await Deno.readTextFile(path), "0123ab");
      await assert.rejects(
        t.openWrite(path, { offset: 10 }),
        /holds 6 bytes, fewer than the 10 to continue after/,
      );
      assert.equal(await Deno.readTextFile(path), "0123ab");
    }),
});
