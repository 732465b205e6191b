// A service on a lazy volume (contract revision 5), live with the real daemons: another user
// (`user: nobody`) reads it, and while a service reads hard the stream yields and the runbook's
// `bandwidth` holds for the stream and the reads together (measured at the backup).
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Report } from "../engine/schedule/report.ts";
import { engine, thaw } from "./live_helpers.ts";
import { daemonsIn, MiB, mountsIn, runbook, sha, SIZE, withBackup } from "./lazy_live_kit.ts";

Deno.test({
  name: "a service with user: nobody reads a lazy volume before it is home",
  ignore: Deno.uid() !== 0,
  async fn() {
    await withBackup(async (dir, data, backup) => {
      await Deno.chmod(dir, 0o755); // nobody must reach restore/ and out/
      await Deno.mkdir(join(dir, "out"), { mode: 0o777 });
      await Deno.chmod(join(dir, "out"), 0o777);
      const service = "dd if=restore/disk.img bs=1M skip=20 count=1 status=none > out/tail.bin";
      const rb = runbook(backup.url, { bandwidth: "8MiB/s", service, user: "nobody" });
      await Deno.writeTextFile(join(dir, "rb.yaml"), rb);
      const r = await thaw(dir, ["drill", "rb.yaml", "--json"]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const report = JSON.parse(r.stdout) as Report;
      const vol = report.steps.find((s) => s.id === "volume")!;
      const svc = report.steps.find((s) => s.id === "service")!;
      assert.ok(svc.end_s! < vol.end_s!, `service done ${svc.end_s} before home ${vol.end_s}`);
      const tail = join(dir, "out", "tail.bin");
      assert.equal((await Deno.stat(tail)).uid, 65534, "written by nobody");
      assert.equal(sha(await Deno.readFile(tail)), sha(data.subarray(20 * MiB, 21 * MiB)));
      assert.deepEqual(await daemonsIn(dir, backup.url), []);
      assert.deepEqual(await mountsIn(dir), []);
    });
  },
});

/**
 * Reads 64 KiB blocks of `file` at random in [from, to) (each once, checked against `data`), one
 * after the other for `ms`; their latencies (ms) and offsets.
 */
async function randomReads(file: string, data: Uint8Array, from: number, to: number, ms: number) {
  const blocks = Array.from({ length: (to - from) / 65536 }, (_, k) => from + k * 65536);
  for (let k = blocks.length - 1; k > 0; k--) {
    const j = Math.floor(Math.random() * (k + 1));
    [blocks[k], blocks[j]] = [blocks[j]!, blocks[k]!];
  }
  const latencies: number[] = [], offsets: number[] = [];
  using f = await Deno.open(file);
  const buf = new Uint8Array(65536);
  const end = performance.now() + ms;
  for (const at of blocks) {
    if (performance.now() >= end) break;
    const t = performance.now();
    await f.seek(at, Deno.SeekMode.Start);
    let got = 0;
    for (let n; got < buf.length && (n = await f.read(buf.subarray(got))) !== null;) got += n;
    latencies.push(performance.now() - t);
    offsets.push(at);
    assert.deepEqual(buf, data.subarray(at, at + 65536), `the block at ${at}`);
  }
  return { latencies, offsets };
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

/** The stream speeds a lazy fetch logged (MiB/s; 0 when paused), from the step's log in `dir`. */
async function loggedSpeeds(dir: string, step: string): Promise<number[]> {
  for await (const run of Deno.readDir(join(dir, "logs"))) {
    const text = await Deno.readTextFile(join(dir, "logs", run.name, `${step}.log`));
    return [...text.matchAll(/stream speed (\S+)/g)].map((m) => Number(m[1]));
  }
  return [];
}

Deno.test("the lazy stream yields to a service's reads, and bandwidth caps both together", async () => {
  await withBackup(async (dir, data, backup) => {
    const rb = runbook(backup.url, { bandwidth: "4MiB/s", sha: sha(data), service: "true" });
    await Deno.writeTextFile(join(dir, "rb.yaml"), rb);
    const drill = engine(dir, ["drill", "rb.yaml", "--json"]);
    const to = join(dir, "restore", "disk.img");
    for (let k = 0; k < 400 && (await Deno.stat(to).catch(() => undefined))?.size !== SIZE; k++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    await new Promise((r) => setTimeout(r, 1000)); // the stream alone, a second
    // The service: random 64 KiB reads, back to back for 2 s, in the half the stream has not
    // reached (at 4 MiB/s it is 4-5 MiB in).
    const t0 = performance.now();
    const reads = await randomReads(to, data, 12 * MiB, SIZE, 2000);
    const t1 = performance.now();
    const out = await drill.output;
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));

    const demanded = new Set(reads.offsets);
    type Range = [number, number, number];
    const during = (a: number, b: number) =>
      backup.state.ranges.filter(([, , t]) => t >= a && t < b);
    const mib = (rs: Range[], s: number) => rs.reduce((n, [x, y]) => n + y - x, 0) / s / MiB;
    const window = during(t0, t1), s = (t1 - t0) / 1000;
    const demand = mib(window.filter(([x]) => demanded.has(x)), s);
    const stream = mib(window.filter(([x]) => !demanded.has(x)), s);
    const before = mib(during(t0 - 1000, t0), 1);
    const around = mib(during(t0 - 1000, t1 + 1000), s + 2);
    const speeds = await loggedSpeeds(dir, "volume");
    console.log(
      `${reads.latencies.length} reads in ${s.toFixed(2)} s: p50 ${
        pct(reads.latencies, 0.5).toFixed(1)
      } ms, p90 ${pct(reads.latencies, 0.9).toFixed(1)} ms, max ${
        Math.max(...reads.latencies).toFixed(1)
      } ms; the backup sent ${before.toFixed(2)} MiB/s before, during: demand ${
        demand.toFixed(2)
      } + stream ${stream.toFixed(2)} = ${(demand + stream).toFixed(2)} MiB/s; ` +
        `${around.toFixed(2)} MiB/s from 1 s before to 1 s after; speeds set: ${speeds.join(" ")}`,
    );
    assert.ok(reads.latencies.length >= 10, `only ${reads.latencies.length} reads in 2 s`);
    assert.ok(Math.max(...reads.latencies) < 2000, "no read waits behind the stream for long");
    // The scheduler gave the stream the link, then paused it (or slowed it) for the reads.
    const full = speeds.indexOf(4);
    assert.ok(full >= 0, `the stream had the whole link: ${speeds}`);
    assert.ok(speeds.slice(full + 1).some((v) => v < 1), `the stream yielded: ${speeds}`);
    assert.ok(stream < before, `the stream slowed down: ${stream} MiB/s, before ${before}`);
    // bandwidth: 4MiB/s holds for the stream and the reads together (nbdkit's rate filter).
    assert.ok(demand + stream < 4 * 1.15, `stream + demand: ${demand + stream} MiB/s`);
    assert.ok(around < 4 * 1.15, `stream + demand around the reads: ${around} MiB/s`);
  });
});
