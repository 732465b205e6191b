/**
 * A fetch's data landing on a host over ssh (steps/targets/ssh_land.ts through
 * steps/targets/ssh.ts), against a real sshd on 127.0.0.1 (tests/sshd.ts): resumed after the engine
 * writing it is killed, checked on the host, renamed; never over a directory thaw did not write.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { hasSshd, withSshTarget as withHost } from "./sshd.ts";
import { LandingError, openLanding } from "../steps/targets/ssh_land.ts";

const ignore = !hasSshd();

/** `n` deterministic bytes. */
function data(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 2654435761) >>> 24;
  return out;
}

function sha(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

Deno.test({
  name:
    "a fetch landing on the host resumes after the engine writing it is killed, checked, renamed",
  ignore,
  fn: () =>
    withHost(async (t, host) => {
      const all = data(3 << 20);
      const spec = { to: `${host.dir}/land/db.dump`, tmp: `${host.dir}/land/.db.dump.part` };
      await Deno.writeFile(`${host.dir}/src`, all);
      // An engine writes the first 2 MiB through its own connection, then is killed with -9.
      const code = `
        import { SshTarget } from ${
        JSON.stringify(new URL("../steps/targets/ssh.ts", import.meta.url).href)
      };
        import { openLanding } from ${
        JSON.stringify(new URL("../steps/targets/ssh_land.ts", import.meta.url).href)
      };
        const t = new SshTarget("h1", { ssh: ${JSON.stringify(host.alias)} }, { sshConfig: ${
        JSON.stringify(host.config)
      }, controlDir: ${JSON.stringify(host.dir)} });
        const all = await Deno.readFile(${JSON.stringify(`${host.dir}/src`)});
        const l = await openLanding(t, ${JSON.stringify(spec)});
        for (let i = 0; i < 32; i++) await l.write(all.slice(i << 16, (i + 1) << 16));
        console.log("written");
        await new Promise(() => {});`;
      const engine = new Deno.Command(Deno.execPath(), { args: ["eval", code], stdout: "piped" })
        .spawn();
      const reader = engine.stdout.pipeThrough(new TextDecoderStream()).getReader();
      assert.equal((await reader.read()).value?.trim(), "written");
      engine.kill("SIGKILL");
      await engine.status;
      await reader.cancel();

      const landing = await openLanding(t, { ...spec, size: all.length, sha256: sha(all) });
      assert(landing.offset > 0 && landing.offset <= 2 << 20, `resumed at ${landing.offset}`);
      for (let at = landing.offset; at < all.length; at += 1 << 16) {
        await landing.write(all.slice(at, Math.min(all.length, at + (1 << 16))));
      }
      assert.equal((await landing.finish()).bytes, all.length);
      assert.deepEqual(await Deno.readFile(spec.to), all);
      assert.equal(await t.stat(spec.tmp), null);
    }),
});

Deno.test({
  name: "a landing with a wrong sha256 removes its temporary file and leaves `to` alone",
  ignore,
  fn: () =>
    withHost(async (t, host) => {
      const spec = { to: `${host.dir}/x`, tmp: `${host.dir}/.x.part`, sha256: "0".repeat(64) };
      await Deno.writeTextFile(spec.to, "old");
      const landing = await openLanding(t, spec);
      await landing.write(data(1000));
      await assert.rejects(
        landing.finish(),
        (e: Error) => e instanceof LandingError && e.restart && /sha256 mismatch/.test(e.message),
      );
      assert.equal(await Deno.readTextFile(spec.to), "old");
      assert.equal(await t.stat(spec.tmp), null);
    }),
});

Deno.test({
  name: "a landing refuses a directory at `to` it did not write, before writing a byte",
  ignore,
  fn: () =>
    withHost(async (t, host) => {
      const to = `${host.dir}/restore`;
      await Deno.mkdir(to);
      await Deno.writeTextFile(`${to}/keep`, "mine");
      await assert.rejects(
        openLanding(t, { to, tmp: `${host.dir}/.restore.part` }),
        /is an existing directory thaw did not write/,
      );
      assert.equal(await Deno.readTextFile(`${to}/keep`), "mine");
      assert.equal(await t.stat(`${host.dir}/.restore.part`), null);
    }),
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
