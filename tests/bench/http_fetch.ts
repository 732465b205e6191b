/**
 * An http fetch over loopback, thaw against curl, like for like: both write the file to disk
 * and hash it, both whole commands (start-up included).
 *
 * Writes a 1 GiB file (a random 1 MiB block, each copy stamped with its index, hashed for real)
 * in a temporary directory, serves it with the test server in its own process on 127.0.0.1, then
 * measures, alternating, 3 runs each of:
 * (a) `sh -c 'curl -s -o FILE URL && sha256sum FILE'` (download to disk, then read it back to hash);
 * (b) `thaw run fetch.yaml`: one fetch step (`from: URL`, `to: ./out/big.bin`, `size`, `sha256`)
 *     in a runbook without `bandwidth:`, so it goes through the link shaper (`engine/live/link.ts`) at
 *     the share the scheduler gives it, as real runs do; thaw hashes while it writes, flushes the
 *     file, renames it into place and records the run in its SQLite store;
 * (c) the same with `bandwidth: 10Gbit/s` in the runbook: a share of 1.25 GB/s, more than loopback
 *     moves here, so the shaper's pacing runs for every chunk without holding the fetch back.
 * Each output is deleted before the next run. Prints the median MB/s of each and the ratios to
 * curl; exits 1 if (b) is below 0.8x curl.
 *
 * Run: `deno run -A tests/bench/http_fetch.ts [GiB]`
 *
 * @module
 */

import { BLOCK, makeFile, serve } from "./fetch_data.ts";
import { fromFileUrl } from "../paths.ts";

const MAIN = fromFileUrl(new URL("../../engine/main.ts", import.meta.url));
const size = Math.round(Number(Deno.args[0] ?? "1") * 1024) * BLOCK;
const RUNS = 3;
const MIN_RATIO = 0.8;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
const mbps = (ms: number) => size / 1e6 / (ms / 1000);

async function curl(url: string, expected: string, dir: string): Promise<number> {
  const file = `${dir}/out/curl.bin`;
  await Deno.mkdir(`${dir}/out`, { recursive: true });
  const start = performance.now();
  const output = await new Deno.Command("sh", {
    args: ["-c", 'curl -s -o "$1" "$2" && sha256sum "$1"', "sh", file, url],
    stdout: "piped",
  }).output();
  const ms = performance.now() - start;
  const got = new TextDecoder().decode(output.stdout).split(" ")[0];
  if (!output.success || got !== expected) throw new Error(`curl -o && sha256sum gave ${got}`);
  await Deno.remove(file);
  return ms;
}

async function thaw(
  url: string,
  expected: string,
  dir: string,
  bandwidth?: string,
): Promise<number> {
  const to = `${dir}/out/big.bin`;
  await Deno.writeTextFile(
    `${dir}/fetch.yaml`,
    `runbook: 1\nname: http-fetch\n${bandwidth ? `bandwidth: ${bandwidth}\n` : ""}` +
      `steps:\n  - id: big\n    fetch:\n      from: ${url}\n` +
      `      to: ./out/big.bin\n      size: ${size}B\n      sha256: ${expected}\n`,
  );
  await Deno.remove(`${dir}/s.db`).catch(() => {});
  const start = performance.now();
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "run", "fetch.yaml", "--store", "s.db"],
    cwd: dir,
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - start;
  if (!output.success || (await Deno.stat(to)).size !== size) {
    throw new Error(`thaw run failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  await Deno.remove(to);
  return ms;
}

const dir = await Deno.makeTempDir({ prefix: "thaw-bench-" });
let stop = () => Promise.resolve();
try {
  await Deno.mkdir(`${dir}/srv`);
  const sha256 = await makeFile(`${dir}/srv/big.bin`, size);
  const server = await serve(`${dir}/srv`);
  stop = server.stop;
  const url = `${server.url}big.bin`;
  await curl(url, sha256, dir); // warm-up: page cache, server
  await thaw(url, sha256, dir);
  const curlMs: number[] = [];
  const thawMs: number[] = [];
  const cappedMs: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    curlMs.push(await curl(url, sha256, dir));
    thawMs.push(await thaw(url, sha256, dir));
    cappedMs.push(await thaw(url, sha256, dir, "10Gbit/s"));
  }
  const a = mbps(median(curlMs));
  const b = mbps(median(thawMs));
  const ratio = b / a;
  const c = mbps(median(cappedMs));
  const list = (xs: number[]) => xs.map((ms) => ms.toFixed(0)).join(", ");
  console.log(`file: ${size / BLOCK} MiB over http://127.0.0.1 to disk, median of ${RUNS}`);
  console.log(`(a) curl -o FILE && sha256sum FILE: ${a.toFixed(0)} MB/s  (${list(curlMs)} ms)`);
  console.log(`(b) thaw run (fetch, sha256, link): ${b.toFixed(0)} MB/s  (${list(thawMs)} ms)`);
  console.log(`(c) the same, bandwidth 10Gbit/s:  ${c.toFixed(0)} MB/s  (${list(cappedMs)} ms)`);
  console.log(`ratio (b)/(a): ${ratio.toFixed(2)} (at least ${MIN_RATIO} required)`);
  console.log(`ratio (c)/(a): ${(c / a).toFixed(2)}`);
  if (ratio < MIN_RATIO) Deno.exitCode = 1;
} finally {
  await stop();
  await Deno.remove(dir, { recursive: true });
}
