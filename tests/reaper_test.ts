// Tests of steps/process/reaper.ts and the spawner's `output` file: a command whose output goes
// to a file (a service's log) or nowhere is waited for by SIGCHLD, with real processes.
import assert from "node:assert/strict";
import { waitingFor } from "../steps/process/reaper.ts";
import { nativeSpawner } from "../steps/process/spawn_native.ts";
import { spawnGroupAsync } from "../steps/process/process.ts";

const PATH = Deno.env.get("PATH") ?? "/usr/bin:/bin";
const native = nativeSpawner();
const ignore = native === undefined; // not Linux/glibc or no FFI: the pidfd/pipe path is moot

Deno.test({
  name: "nativeSpawner().spawn() appends stdout and stderr to `output`, when given a file",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const log = `${dir}/s.log`;
      await Deno.writeTextFile(log, "before\n");
      const child = native!.spawn(["sh", "-c", "echo out; echo err >&2; exit 4"], {
        cwd: dir,
        env: { PATH },
        output: log,
      });
      assert.deepEqual(await child.status, { code: 4, signal: null });
      await child.closeOutput();
      assert.equal(await Deno.readTextFile(log), "before\nout\nerr\n");
      // A new log is created readable by its owner only.
      const fresh = native!.spawn(["sh", "-c", "echo x"], {
        cwd: dir,
        env: { PATH },
        output: `${dir}/new.log`,
      });
      await fresh.status;
      assert.equal((await Deno.stat(`${dir}/new.log`)).mode! & 0o777, 0o600);
      assert.equal(waitingFor(), 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "nativeSpawner().spawn() reports signals and many exits by SIGCHLD, when nothing is piped",
  ignore,
  fn: async () => {
    // 40 children ending close together: coalesced signals must lose none.
    const children = Array.from(
      { length: 40 },
      (_, i) => native!.spawn(["sh", "-c", `exit ${i}`], { cwd: "/", env: { PATH } }),
    );
    const statuses = await Promise.all(children.map((c) => c.status));
    assert.deepEqual(statuses.map((s) => s.code), children.map((_, i) => i));
    const sleeper = native!.spawn(["sleep", "30"], { cwd: "/", env: { PATH } });
    assert.equal(waitingFor(), 1);
    Deno.kill(sleeper.pid, "SIGTERM");
    assert.deepEqual(await sleeper.status, { code: 143, signal: "SIGTERM" });
    assert.equal(waitingFor(), 0);
  },
});

Deno.test({
  name: "spawnGroupAsync() waits for a service by SIGCHLD, when its output goes to its log",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const log = `${dir}/svc.log`;
      const group = await spawnGroupAsync("sh", 'echo "up $$"; exec sleep 30', {
        cwd: dir,
        env: { PATH },
        log,
      });
      // Waited for without a worker thread polling it (a pidfd poll before).
      assert.equal(waitingFor(), 1);
      for (let i = 0; i < 200 && !(await Deno.readTextFile(log)).includes("up"); i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      Deno.kill(group.pid, "SIGTERM");
      assert.deepEqual(await group.status, { code: 143, signal: "SIGTERM" });
      await group.closeOutput();
      assert.equal(await Deno.readTextFile(log), `up ${group.pid}\n`);
      assert.equal(waitingFor(), 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "nativeSpawner().spawn() names the log, when its directory is missing",
  ignore,
  fn: () => {
    assert.throws(
      () =>
        native!.spawn(["sh", "-c", "true"], {
          cwd: "/",
          env: { PATH },
          output: "/nonexistent-thaw-dir/x.log",
        }),
      /cannot open the log \/nonexistent-thaw-dir\/x\.log/,
    );
  },
});

/** A sink that counts and keeps what it is given. */
function collect(): { sink: (chunk: Uint8Array) => void; text: () => string; bytes: () => number } {
  let text = "", bytes = 0;
  const decoder = new TextDecoder();
  return {
    sink: (chunk) => {
      bytes += chunk.length;
      text += decoder.decode(chunk, { stream: true });
    },
    text: () => text,
    bytes: () => bytes,
  };
}

Deno.test({
  name: "nativeSpawner().spawn() hands over a short command's output, when it exits at once",
  ignore,
  fn: async () => {
    // Read when SIGCHLD says it exited: no worker thread polled these pipes.
    for (let i = 0; i < 20; i++) {
      const out = collect(), err = collect();
      const child = native!.spawn(["sh", "-c", `echo out ${i}; echo err ${i} >&2; exit ${i % 3}`], {
        cwd: "/",
        env: { PATH },
        stdout: out.sink,
        stderr: err.sink,
      });
      assert.equal((await child.status).code, i % 3);
      await child.drained;
      await child.closeOutput();
      assert.equal(out.text(), `out ${i}\n`);
      assert.equal(err.text(), `err ${i}\n`);
    }
  },
});

Deno.test({
  name: "nativeSpawner().spawn() passes a burst larger than a pipe, when written before polling",
  ignore,
  fn: async () => {
    // 1 MB at once: the command waits on a full pipe until its pipes are polled (LAZY_MS).
    const out = collect();
    const child = native!.spawn(["sh", "-c", "head -c 1000000 /dev/zero; echo end >&2"], {
      cwd: "/",
      env: { PATH },
      stdout: out.sink,
      stderr: () => {},
    });
    assert.equal((await child.status).code, 0);
    await child.drained;
    await child.closeOutput();
    assert.equal(out.bytes(), 1_000_000);
  },
});
