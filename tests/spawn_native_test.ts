// Tests of steps/process/spawn_native.ts: commands started by posix_spawn through FFI lead their
// own session and group, report exit codes and signals, and hand over their output.
import assert from "node:assert/strict";
import { nativeSpawner } from "../steps/process/spawn_native.ts";
import { spawnGroup, spawnGroupAsync } from "../steps/process/process.ts";

const PATH = Deno.env.get("PATH") ?? "/usr/bin:/bin";
const native = nativeSpawner();
const ignore = native === undefined; // not Linux/glibc or no FFI: spawnGroup uses setsid

/** A sink that keeps what it is given, as text. */
function collect(): { sink: (chunk: Uint8Array) => void; text: () => string } {
  let text = "";
  const decoder = new TextDecoder();
  return {
    sink: (chunk) => text += decoder.decode(chunk, { stream: true }),
    text: () => text,
  };
}

/** Session and process group of `pid`, from /proc. */
function ids(pid: number): { pgrp: number; session: number } {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { pgrp: Number(f[2]), session: Number(f[3]) };
}

Deno.test({
  name: "nativeSpawner().spawn() leads a new session and group, when it starts",
  ignore,
  fn: async () => {
    const child = native!.spawn(["sh", "-c", "read x < /dev/stdin; sleep 5"], {
      cwd: "/",
      env: { PATH },
    });
    try {
      assert.deepEqual(ids(child.pid), { pgrp: child.pid, session: child.pid });
    } finally {
      Deno.kill(child.pid, "SIGKILL");
      assert.deepEqual(await child.status, { code: 137, signal: "SIGKILL" });
      await child.closeOutput();
    }
  },
});

Deno.test({
  name: "nativeSpawner().spawn() gives exit code, output, exact env and cwd, when it exits",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const out = collect(), err = collect();
      const child = native!.spawn(
        ["sh", "-c", 'echo "$0 $A $(pwd) $(env | wc -l)"; echo e >&2; exit 3'],
        { cwd: dir, env: { PATH, A: "a b" }, stdout: out.sink, stderr: err.sink },
      );
      const status = await child.status;
      await child.drained;
      await child.closeOutput();
      // $0 is the name as given; env holds PATH, A and what sh sets (PWD, and maybe SHLVL, _).
      assert.match(out.text(), new RegExp(`^sh a b ${await Deno.realPath(dir)} \\d+\\n$`));
      assert.equal(err.text(), "e\n");
      assert.deepEqual(status, { code: 3, signal: null });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "nativeSpawner().spawn() throws NotFound, when the program or directory is missing",
  ignore,
  fn: () => {
    const opts = { cwd: "/", env: { PATH }, stdout: () => {}, stderr: () => {} };
    assert.throws(() => native!.spawn(["no-such-shell-here"], opts), Deno.errors.NotFound);
    assert.throws(
      () => native!.spawn(["sh", "-c", "true"], { ...opts, cwd: "/no/such/dir" }),
      Deno.errors.NotFound,
    );
  },
});

Deno.test({
  name: "nativeSpawner().spawn() passes large output whole, when a command writes megabytes",
  ignore,
  fn: async () => {
    let bytes = 0;
    const child = native!.spawn(["sh", "-c", "head -c 3000000 /dev/zero; echo x >&2"], {
      cwd: "/",
      env: { PATH },
      stdout: (chunk) => bytes += chunk.length,
      stderr: () => {
        throw new Error("a failing sink must not stop the reading");
      },
    });
    assert.equal((await child.status).code, 0);
    await child.drained;
    assert.equal(bytes, 3_000_000);
    await child.closeOutput();
  },
});

Deno.test({
  name: "spawnGroup() stops reading promptly, when a daemon keeps the pipes open",
  ignore,
  fn: async () => {
    const group = spawnGroup("sh", "sleep 30 & echo started", {
      cwd: "/",
      env: { PATH },
      stdout: () => {},
      stderr: () => {},
    });
    assert.equal((await group.status).code, 0);
    const t0 = performance.now();
    await group.closeOutput();
    assert(performance.now() - t0 < 5000, "closeOutput() must not wait for the daemon");
    Deno.kill(-group.pgid, "SIGKILL");
  },
});

Deno.test({
  name:
    "spawnGroup[Async]() throws NotFound for a missing shell, run directly, as a step or logged",
  fn: async () => {
    const env = { PATH };
    const step = { PATH, THAW_RUN_ID: "01TESTSPAWNNATIVE00000000", THAW_STEP: "s" };
    const dir = await Deno.makeTempDir({ prefix: "thaw-spawn-" });
    try {
      for (const options of [{ env }, { env: step }, { env, log: `${dir}/service.log` }]) {
        assert.throws(
          () => spawnGroup("no-such-shell-thaw", "true", { cwd: "/", ...options }),
          Deno.errors.NotFound,
          JSON.stringify(options),
        );
        await assert.rejects(
          () => spawnGroupAsync("no-such-shell-thaw", "true", { cwd: "/", ...options }),
          Deno.errors.NotFound,
          `async ${JSON.stringify(options)}`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "nativeSpawner().spawnAsync() gives exit code and output, when many run at once",
  ignore,
  fn: async () => {
    const runs = Array.from({ length: 8 }, async (_, i) => {
      const out = collect();
      const child = await native!.spawnAsync(["sh", "-c", `sleep 0.2; echo ${i}; exit ${i}`], {
        cwd: "/",
        env: { PATH },
        stdout: out.sink,
      });
      assert.deepEqual(ids(child.pid), { pgrp: child.pid, session: child.pid });
      assert.equal((await child.status).code, i);
      await child.drained;
      await child.closeOutput();
      assert.equal(out.text(), `${i}\n`);
    });
    await Promise.all(runs);
    await assert.rejects(
      () => native!.spawnAsync(["sh", "-c", "true"], { cwd: "/no/such/dir", env: { PATH } }),
      Deno.errors.NotFound,
    );
  },
});
