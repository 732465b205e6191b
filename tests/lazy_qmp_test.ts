// QmpClient against a real qemu-storage-daemon (package qemu-system-common): replies matched by
// id, QMP's error desc in thrown errors, events awaited, clear failures.
import assert from "node:assert/strict";
import { QmpClient, QmpError } from "../steps/fetch/lazy/qmp.ts";

/** A daemon with one small qcow2 image over a raw backing, and QMP on a socket in `dir`. */
async function daemon(dir: string): Promise<{ socket: string; child: Deno.ChildProcess }> {
  const backing = `${dir}/b.raw`;
  await Deno.writeFile(backing, crypto.getRandomValues(new Uint8Array(65536)));
  const overlay = `${dir}/o.qcow2`;
  const created = await new Deno.Command("qemu-img", {
    args: ["create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", "raw", overlay, "1M"],
  }).output();
  assert(created.success, new TextDecoder().decode(created.stderr));
  const socket = `${dir}/qmp.sock`;
  const child = new Deno.Command("qemu-storage-daemon", {
    args: [
      "--chardev",
      `socket,id=m,path=${socket},server=on,wait=off`,
      "--monitor",
      "chardev=m",
      "--blockdev",
      JSON.stringify({
        driver: "qcow2",
        "node-name": "top",
        file: { driver: "file", filename: overlay },
      }),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return { socket, child };
}

/** Kills the daemon `child` (if it still runs) and removes its directory. */
async function stopDaemon(child: Deno.ChildProcess, dir: string): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch { /* gone */ }
  await child.status;
  await Deno.remove(dir, { recursive: true });
}

async function withDaemon(fn: (socket: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-qmp-" });
  const { socket, child } = await daemon(dir);
  try {
    await fn(socket);
  } finally {
    await stopDaemon(child, dir);
  }
}

/** Runs `fn` with a QMP session on a fresh daemon, closed (and the daemon killed) after. */
async function withQmp(fn: (qmp: QmpClient) => Promise<void>): Promise<void> {
  await withDaemon(async (socket) => {
    const qmp = await QmpClient.connect(socket);
    try {
      await fn(qmp);
    } finally {
      qmp.close();
    }
  });
}

Deno.test("QmpClient.execute() matches concurrent replies to their commands, when pipelined", async () => {
  await withQmp(async (qmp) => {
    const [version, jobs, nodes] = await Promise.all([
      qmp.execute<{ qemu: { major: number } }>("query-version"),
      qmp.execute<unknown[]>("query-block-jobs"),
      qmp.execute<{ "node-name": string }[]>("query-named-block-nodes", { flat: true }),
    ]);
    assert(version.qemu.major >= 6);
    assert.deepEqual(jobs, []);
    assert(nodes.some((n) => n["node-name"] === "top"));
  });
});

Deno.test("QmpClient.execute() throws QMP's desc, when a command fails", async () => {
  await withQmp(async (qmp) => {
    await assert.rejects(qmp.execute("no-such-command"), (e: unknown) => {
      assert(e instanceof QmpError);
      assert.equal(e.errorClass, "CommandNotFound");
      assert.match(e.message, /no-such-command.*has not been found/);
      return true;
    });
    await assert.rejects(
      qmp.execute("block-job-set-speed", { device: "nope", speed: 1 }),
      /refused block-job-set-speed: .*nope/,
    );
    // The session still works after an error.
    assert.deepEqual(await qmp.execute("query-block-jobs"), []);
  });
});

Deno.test("QmpClient.waitEvent() resolves with a job's event, and times out clearly", async () => {
  await withQmp(async (qmp) => {
    await qmp.execute("block-stream", { "job-id": "j", device: "top" });
    const done = await qmp.waitEvent("BLOCK_JOB_COMPLETED", (e) => e.data?.device === "j", 5000);
    assert.equal(done.data?.len, 1 << 20);
    assert.equal(done.data?.error, undefined);
    // Already received: found again at once.
    assert.equal(await qmp.waitEvent("BLOCK_JOB_COMPLETED"), done);
    await assert.rejects(qmp.waitEvent("NEVER", undefined, 50), /no NEVER event .* 50 ms/);
  });
});

Deno.test("QmpClient rejects pending calls when the daemon dies, and connect() names the socket", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-qmp-" });
  const { socket, child } = await daemon(dir);
  try {
    const qmp = await QmpClient.connect(socket);
    const waiting = qmp.waitEvent("NEVER", undefined, 5000);
    child.kill("SIGKILL");
    await assert.rejects(waiting, /closed the QMP connection/);
    await assert.rejects(qmp.execute("query-version"), /closed the QMP connection/);
    await assert.rejects(
      QmpClient.connect(`${dir}/absent.sock`, 50),
      /absent\.sock .*is qemu-storage-daemon running/,
    );
  } finally {
    await stopDaemon(child, dir);
  }
});
