// Lazy fetches (contract revision 5) in the live engine, end to end with the real daemons
// (qemu-storage-daemon, qemu-img, nbdkit, nbdfuse, fusermount3, /dev/fuse): `thaw drill` in a
// child process against a Range-serving backup on 127.0.0.1 that counts the bytes it sends.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Report } from "../engine/schedule/report.ts";
import { engine, thaw, waitFor } from "./live_helpers.ts";
import { daemonsIn, MiB, mountsIn, runbook, sha, SIZE, withBackup } from "./lazy_live_kit.ts";

Deno.test("thaw drill starts the service on a lazy volume before it is home, then detaches it", async () => {
  await withBackup(async (dir, data, backup) => {
    // The service reads 1 MiB near the end: fetched on demand, ahead of the stream.
    const service = "dd if=restore/disk.img bs=1M skip=20 count=1 status=none > tail.bin";
    const rb = runbook(backup.url, { bandwidth: "8MiB/s", sha: sha(data), service });
    await Deno.writeTextFile(join(dir, "rb.yaml"), rb);
    const r = await thaw(dir, ["drill", "rb.yaml", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    const vol = report.steps.find((s) => s.id === "volume")!;
    const svc = report.steps.find((s) => s.id === "service")!;
    assert.equal(vol.state, "done");
    assert.ok(vol.attached_s !== null && vol.attached_s !== undefined, "attached_s");
    assert.ok(vol.attached_s! < vol.end_s!, `attached ${vol.attached_s} < home ${vol.end_s}`);
    assert.ok(svc.end_s! < vol.end_s!, `service done ${svc.end_s} before home ${vol.end_s}`);
    assert.equal(vol.bytes, SIZE);
    assert.ok((vol.on_demand_bytes ?? 0) > 0, `on demand ${vol.on_demand_bytes}`);
    assert.equal((vol.on_demand_bytes ?? 0) + (vol.streamed_bytes ?? 0), SIZE);
    const tail = await Deno.readFile(join(dir, "tail.bin"));
    assert.equal(sha(tail), sha(data.subarray(20 * MiB, 21 * MiB)));
    assert.ok(backup.state.sent < 1.1 * SIZE, `fetched ${backup.state.sent} of ${SIZE}`);
    console.log(
      `attached ${vol.attached_s} s, service done ${svc.end_s} s, home ${vol.end_s} s; ` +
        `fetched ${(backup.state.sent / SIZE).toFixed(3)}x the image; ` +
        `on demand ${vol.on_demand_bytes}`,
    );
    // The drill detached it: no daemon, no mount, no mount point left.
    assert.deepEqual(await daemonsIn(dir, backup.url), []);
    assert.deepEqual(await mountsIn(dir), []);
    await assert.rejects(Deno.stat(join(dir, "restore/disk.img")));
  });
});

Deno.test("thaw resume after kill -9 continues the lazy stream without fetching what was home", async () => {
  await withBackup(async (dir, data, backup) => {
    const service = "true";
    // Slow enough that the stream (which goes on at its last speed while the engine is dead) is
    // not home before the resumed run takes over.
    const rb = runbook(backup.url, { bandwidth: "2MiB/s", sha: sha(data), service });
    await Deno.writeTextFile(join(dir, "rb.yaml"), rb);
    const first = engine(dir, ["drill", "rb.yaml"]);
    const run = await waitFor(dir, async (s) => {
      const r = (await s.listRuns(1))[0];
      return r && backup.state.sent > 5 * MiB ? r : undefined;
    }, "5 MiB streamed");
    Deno.kill(-first.child.pid, "SIGKILL");
    await first.output;
    // The engine is gone: the volume still serves `to`, a part not home yet included (20 MiB on,
    // fetched from the backup now), with the right bytes.
    const asked = backup.state.ranges.length;
    const read = await new Deno.Command("timeout", {
      args: ["-s", "KILL", "10", "dd", "if=restore/disk.img", "bs=1M", "skip=20", "count=1"],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(read.code, 0, `read after kill -9: ${new TextDecoder().decode(read.stderr)}`);
    assert.equal(sha(read.stdout), sha(data.subarray(20 * MiB, 21 * MiB)));
    const fetchedNow = backup.state.ranges.slice(asked);
    assert.ok(
      fetchedNow.some(([a, b]) => a < 21 * MiB && b > 20 * MiB),
      `the read was served from the backup after the kill: ${JSON.stringify(fetchedNow)}`,
    );
    const before = backup.state.sent;
    const resumed = await thaw(dir, ["resume", run.id, "--json"]);
    const afterResume = backup.state.sent - before;
    assert.equal(resumed.code, 0, resumed.stderr);
    const report = JSON.parse(resumed.stdout.trim().split("\n").at(-1)!) as Report;
    const vol = report.steps.find((s) => s.id === "volume")!;
    assert.equal(vol.state, "done");
    const total = backup.state.sent;
    console.log(
      `killed after ${before} bytes; the resumed run fetched ${total - before} more ` +
        `(${total - SIZE} fetched again); in all ${(total / SIZE).toFixed(3)}x the image; ` +
        `report: bytes ${vol.bytes}, attached again at ${vol.attached_s} s, home ${vol.end_s} s`,
    );
    assert.ok(total < 1.5 * SIZE, `fetched ${total} in all for ${SIZE}`);
    assert.ok(afterResume > 4 * MiB, `the resumed run streamed ${afterResume} bytes`);
    assert.deepEqual(await daemonsIn(dir, backup.url), []);
    assert.deepEqual(await mountsIn(dir), []);
  });
});

Deno.test("a writable lazy volume keeps what the service wrote", async () => {
  await withBackup(async (dir, data, backup) => {
    const service = "printf thaw-was-here | dd of=restore/disk.img bs=1 seek=4096 " +
      "conv=notrunc status=none && sync restore/disk.img";
    const rb = runbook(backup.url, { bandwidth: "16MiB/s", service });
    await Deno.writeTextFile(join(dir, "rb.yaml"), rb);
    const r = await thaw(dir, ["drill", "rb.yaml", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const run = (JSON.parse(r.stdout) as Report).run;
    const overlay = join(dir, "restore", `.disk.img.thaw-${run}.part`);
    const raw = join(dir, "disk.raw");
    const convert = await new Deno.Command("qemu-img", {
      args: ["convert", "-O", "raw", overlay, raw],
    }).output();
    assert.ok(convert.success, new TextDecoder().decode(convert.stderr));
    const got = await Deno.readFile(raw);
    assert.equal(new TextDecoder().decode(got.subarray(4096, 4109)), "thaw-was-here");
    const expected = data.slice();
    expected.set(new TextEncoder().encode("thaw-was-here"), 4096);
    assert.equal(sha(got), sha(expected));
    assert.deepEqual(await daemonsIn(dir, backup.url), []);
  });
});

Deno.test("a read of a lazy volume waits out a backup outage and the stream goes on", async () => {
  await withBackup(async (dir, data, backup) => {
    const service =
      "sleep 1.5; dd if=restore/disk.img bs=1M skip=22 count=1 status=none > tail.bin";
    const rb = runbook(backup.url, { bandwidth: "4MiB/s", sha: sha(data), service });
    await Deno.writeTextFile(join(dir, "rb.yaml"), rb);
    const drill = engine(dir, ["drill", "rb.yaml", "--json"]);
    for (let k = 0; k < 200 && backup.state.sent < 4 * MiB; k++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    backup.state.down = true; // the service's read comes during the outage
    await new Promise((r) => setTimeout(r, 3000));
    backup.state.down = false;
    const out = await drill.output;
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.ok(backup.state.refused > 0, "the outage was hit");
    const tail = await Deno.readFile(join(dir, "tail.bin"));
    assert.equal(sha(tail), sha(data.subarray(22 * MiB, 23 * MiB)));
    const report = JSON.parse(new TextDecoder().decode(out.stdout)) as Report;
    const vol = report.steps.find((s) => s.id === "volume")!;
    console.log(`outage of 3 s: ${backup.state.refused} requests refused; home at ${vol.end_s} s`);
    assert.deepEqual(await daemonsIn(dir, backup.url), []);
  });
});

Deno.test("thaw drill fails a lazy fetch at once, saying why, when its backup does not answer", async () => {
  await withBackup(async (dir, _data, backup) => {
    backup.state.down = true; // 503 to everything, the HEAD request that asks the size too
    const rb = runbook(backup.url, { bandwidth: "8MiB/s", service: "true", retries: 0 });
    await Deno.writeTextFile(join(dir, "rb.yaml"), rb);
    const before = await runDirs();
    const t0 = performance.now();
    const r = await thaw(dir, ["drill", "rb.yaml", "--json"]);
    const took = (performance.now() - t0) / 1000;
    assert.notEqual(r.code, 0, "the drill failed");
    const vol = (JSON.parse(r.stdout) as Report).steps.find((s) => s.id === "volume")!;
    assert.equal(vol.state, "failed");
    // Before, nbdkit before 1.36 retried the HEAD request for its whole outage window: 300 s.
    assert.ok(took < 60, `failed after ${took.toFixed(1)} s`);
    // The report says why: what nbdkit was told by the backup, and which backup.
    assert.match(vol.detail ?? "", /HEAD request to fetch size of URL.*503/);
    assert.ok(vol.detail?.includes(`the backup ${backup.url}`), `the report names the backup`);
    assert.ok(backup.state.refused > 0);
    console.log(`failed after ${took.toFixed(1)} s`);
    assert.deepEqual(await daemonsIn(dir, backup.url), []);
    const left = [...await runDirs()].filter((d) => !before.has(d));
    assert.deepEqual(left, [], "the attempt's socket directory is removed");
  });
});

Deno.test("thaw drill refuses a lazy fetch whose to holds data, and leaves it as it was", async () => {
  await withBackup(async (dir, _data, backup) => {
    const rb = runbook(backup.url, { bandwidth: "8MiB/s", service: "true", retries: 0 });
    await Deno.writeTextFile(join(dir, "rb.yaml"), rb);
    await Deno.mkdir(join(dir, "restore"));
    await Deno.writeTextFile(join(dir, "restore/disk.img"), "the only copy\n");
    const before = await runDirs();
    const r = await thaw(dir, ["drill", "rb.yaml", "--json"]);
    assert.notEqual(r.code, 0, "the drill failed");
    const vol = (JSON.parse(r.stdout) as Report).steps.find((s) => s.id === "volume")!;
    assert.equal(vol.state, "failed");
    assert.match(vol.detail ?? "", /disk\.img already holds 14 bytes .*a lazy fetch would hide it/);
    assert.equal(await Deno.readTextFile(join(dir, "restore/disk.img")), "the only copy\n");
    assert.equal(backup.state.sent, 0, "nothing fetched");
    assert.deepEqual(await daemonsIn(dir, backup.url), []);
    const left = [...await runDirs()].filter((d) => !before.has(d));
    assert.deepEqual(left, [], "no socket directory left");
  });
});

Deno.test("executeLazy() fails the step with what to install and starts nothing, when nbdkit is missing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-lazy-tools-" });
  const path = Deno.env.get("PATH") ?? "";
  try {
    await Deno.mkdir(join(dir, "bin"));
    for (const tool of ["qemu-storage-daemon", "qemu-img", "fusermount3", "sh"]) {
      await Deno.symlink((await which(tool, path))!, join(dir, "bin", tool));
    }
    Deno.env.set("PATH", join(dir, "bin"));
    const { executeLazy } = await import("../steps/fetch/lazy/execute.ts");
    const to = join(dir, "restore", "disk.img");
    const effect = await executeLazy({
      sources: [{ kind: "location", location: "http://127.0.0.1:9/disk.img" }],
      to,
      tmp: join(dir, "restore", ".disk.img.thaw-R.part"),
      retries: 0,
      size: SIZE,
      lazy: { writable: false },
    }, { signal: new AbortController().signal, env: {}, log: () => {} });
    assert.equal(effect.ok, false);
    assert.match(
      (effect as { reason: string }).reason,
      /^lazy fetches need nbdkit: apt-get install nbdkit$/,
    );
    await assert.rejects(Deno.stat(join(dir, "restore")), "nothing was started or created");
  } finally {
    Deno.env.set("PATH", path);
    await Deno.remove(dir, { recursive: true });
  }
});

/** The lazy fetches' socket directories (`thaw-lazy-ID` under XDG_RUNTIME_DIR or /tmp). */
async function runDirs(): Promise<Set<string>> {
  const base = Deno.env.get("XDG_RUNTIME_DIR") || "/tmp";
  const found = new Set<string>();
  for await (const e of Deno.readDir(base)) {
    if (e.name.startsWith("thaw-lazy-")) found.add(join(base, e.name));
  }
  return found;
}

async function which(name: string, path: string): Promise<string | undefined> {
  for (const d of path.split(":")) {
    if (await Deno.stat(join(d, name)).then((i) => i.isFile, () => false)) return join(d, name);
  }
  return undefined;
}

Deno.test("thaw run leaves a lazy volume served at to, listed by thaw status, until its group is stopped", async () => {
  await withBackup(async (dir, data, backup) => {
    const rb = runbook(backup.url, { bandwidth: "16MiB/s", sha: sha(data), service: "true" });
    await Deno.writeTextFile(join(dir, "rb.yaml"), rb);
    const r = await thaw(dir, ["run", "rb.yaml", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const run = (JSON.parse(r.stdout) as Report).run;
    const to = join(dir, "restore", "disk.img");
    assert.equal(sha(await Deno.readFile(to)), sha(data), "served at to after the run");
    const status = await thaw(dir, ["status", run]);
    const listed = /volume: pid (\d+) \(running, stop with: kill -TERM -(\d+)\)/.exec(
      status.stdout,
    );
    assert.ok(listed, status.stdout);
    Deno.kill(-Number(listed[2]), "SIGTERM");
    for (let k = 0; k < 100 && (await mountsIn(dir)).length > 0; k++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(await mountsIn(dir), []);
    for (let k = 0; k < 100 && (await daemonsIn(dir, backup.url)).length > 0; k++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(await daemonsIn(dir, backup.url), []);
  });
});
