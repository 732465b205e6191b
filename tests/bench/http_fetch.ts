/**
 * Throughput of an http fetch over loopback against `curl -s URL | sha256sum`.
 *
 * Writes a 1 GiB file (a random 1 MiB block, each copy stamped with its index, hashed for real)
 * in a temporary directory, serves it with the test server in its own process on 127.0.0.1, then
 * measures, alternating, 3 runs each of:
 * (a) `bash -c "curl -s URL | sha256sum"`, and
 * (b) `fetchData` with `sha256` set and the unlimited link (into a file, flushed and renamed).
 * Prints the median MB/s of both and their ratio; exits 1 if fetchData is below 0.8x curl.
 *
 * Run: `deno run -A tests/bench/http_fetch.ts [GiB]`
 *
 * @module
 */

import { createHash } from "node:crypto";
import { fetchData } from "../../steps/fetch.ts";
import { realClock, unlimitedLink } from "../../steps/types.ts";

const BLOCK = 1 << 20;
const size = Math.round(Number(Deno.args[0] ?? "1") * 1024) * BLOCK;
const RUNS = 3;
const MIN_RATIO = 0.8;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
const mbps = (ms: number) => size / 1e6 / (ms / 1000);

async function makeFile(path: string): Promise<string> {
  const block = new Uint8Array(BLOCK);
  for (let i = 0; i < BLOCK; i += 65536) crypto.getRandomValues(block.subarray(i, i + 65536));
  const hash = createHash("sha256");
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  for (let i = 0; i < size / BLOCK; i++) {
    new DataView(block.buffer).setUint32(0, i);
    hash.update(block);
    let offset = 0;
    while (offset < block.length) offset += await file.write(block.subarray(offset));
  }
  return hash.digest("hex");
}

/** Starts the test server in another process; resolves to its base URL. */
async function serve(dir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const script = new URL("../http_backup_server.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, dir],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the server exited before listening");
    text += value;
  }
  reader.cancel().catch(() => {});
  return {
    url: text.split("\n")[0]!.trim(),
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

async function curl(url: string, expected: string): Promise<number> {
  const start = performance.now();
  const output = await new Deno.Command("bash", {
    args: ["-c", `curl -s ${url} | sha256sum`],
    stdout: "piped",
  }).output();
  const ms = performance.now() - start;
  const got = new TextDecoder().decode(output.stdout).split(" ")[0];
  if (!output.success || got !== expected) throw new Error(`curl | sha256sum gave ${got}`);
  return ms;
}

async function fetchOnce(url: string, expected: string, dir: string): Promise<number> {
  const to = `${dir}/out/big.bin`;
  await Deno.remove(to).catch(() => {});
  const start = performance.now();
  const effect = await fetchData({
    sources: [{ kind: "location", location: url }],
    to,
    tmp: `${dir}/out/.big.bin.thaw-tmp`,
    size,
    sha256: expected,
    retries: 0,
  }, {
    signal: new AbortController().signal,
    clock: realClock,
    env: {},
    cwd: dir,
    log: (line) => console.error(line),
    link: unlimitedLink,
    progress: () => {},
  });
  const ms = performance.now() - start;
  if (!effect.ok || effect.bytes !== size) {
    throw new Error(`fetchData failed: ${JSON.stringify(effect)}`);
  }
  await Deno.remove(to);
  return ms;
}

const dir = await Deno.makeTempDir({ prefix: "thaw-bench-" });
let stop = () => Promise.resolve();
try {
  await Deno.mkdir(`${dir}/srv`);
  const sha256 = await makeFile(`${dir}/srv/big.bin`);
  const server = await serve(`${dir}/srv`);
  stop = server.stop;
  const url = `${server.url}big.bin`;
  await curl(url, sha256); // warm-up: page cache, server
  const curlMs: number[] = [];
  const fetchMs: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    curlMs.push(await curl(url, sha256));
    fetchMs.push(await fetchOnce(url, sha256, dir));
  }
  const a = mbps(median(curlMs));
  const b = mbps(median(fetchMs));
  const ratio = b / a;
  console.log(`file: ${size / BLOCK} MiB over http://127.0.0.1, median of ${RUNS}`);
  console.log(
    `(a) curl -s URL | sha256sum: ${a.toFixed(0)} MB/s  (${
      curlMs.map((ms) => ms.toFixed(0)).join(", ")
    } ms)`,
  );
  console.log(
    `(b) fetchData with sha256:   ${b.toFixed(0)} MB/s  (${
      fetchMs.map((ms) => ms.toFixed(0)).join(", ")
    } ms)`,
  );
  console.log(`ratio (b)/(a): ${ratio.toFixed(2)} (at least ${MIN_RATIO} required)`);
  if (ratio < MIN_RATIO) Deno.exitCode = 1;
} finally {
  await stop();
  await Deno.remove(dir, { recursive: true });
}
