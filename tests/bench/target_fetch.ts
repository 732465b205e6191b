/**
 * A fetch step landing on a host (`on:`), through the fetch kind itself (steps/fetch/kind.ts: the
 * http source, the link, the temporary file on the target, the sha256 while streaming, the sync
 * and the rename), against `curl | ssh`, on this machine: a real sshd on 127.0.0.1
 * (tests/sshd.ts) is the host, the test backup server (tests/http_backup_server.ts, in its own
 * process) the source. And the same fetch landing here (no target), for the local path.
 *
 * Alternating, 3 runs each of a 1 GiB file (medians):
 *   (a) `sh -c 'curl -s URL | ssh -F CFG HOST "cat > F"'` (a connection of its own);
 *   (b) `fetchKind.execute()` with an SshTarget (a fresh shared connection each run), no sha256;
 *   (c) (b) with `sha256` (hashed by thaw as the bytes stream), against
 *   (d) `curl -s URL | ssh HOST 'cat > F && sha256sum F'`;
 *   (e) `fetchKind.execute()` landing on this machine, with `sha256`.
 * Target: (b) at least 0.8x (a). Exits 1 below it.
 *
 * Run: `deno run -A tests/bench/target_fetch.ts [GiB]`
 *
 * @module
 */

import { createHash } from "node:crypto";
import { startSshd } from "../sshd.ts";
import { SshTarget } from "../../steps/targets/ssh.ts";
import { fetchKind } from "../../steps/fetch/kind.ts";
import { realClock } from "../../steps/types.ts";
import type { Target } from "../../steps/kind.ts";

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

/** `curl | ssh 'cat > F'` (and `&& sha256sum F` with `hash`); milliseconds. */
async function pipeline(url: string, cfg: string, host: string, to: string, hash?: string) {
  const remote = hash ? `cat > ${to} && sha256sum ${to}` : `cat > ${to}`;
  const start = performance.now();
  const out = await new Deno.Command("sh", {
    args: ["-c", 'curl -s "$1" | ssh -F "$2" "$3" "$4"', "sh", url, cfg, host, remote],
    stdout: "piped",
  }).output();
  const ms = performance.now() - start;
  const got = new TextDecoder().decode(out.stdout).split(" ")[0];
  if (!out.success || (hash && got !== hash)) throw new Error(`curl | ssh failed (${got})`);
  if ((await Deno.stat(to)).size !== size) throw new Error("curl | ssh: short file");
  await Deno.remove(to);
  return ms;
}

/** One fetch step through the fetch kind, on `target` (a fresh ssh one) or here; milliseconds. */
async function step(url: string, to: string, ssh?: { cfg: string; host: string }, hash?: string) {
  const start = performance.now();
  const target: (Target & { close(): Promise<void> }) | undefined = ssh === undefined
    ? undefined
    : new SshTarget("bench", { ssh: ssh.host }, { sshConfig: ssh.cfg });
  try {
    const effect = await fetchKind.execute({
      sources: [{ kind: "location", location: url }],
      to,
      tmp: `${to}.thaw-bench.part`,
      size,
      retries: 0,
      ...(hash ? { sha256: hash } : {}),
    }, {
      signal: new AbortController().signal,
      clock: realClock,
      env: {},
      log: () => {},
      ...(target ? { target } : {}),
    });
    if (!effect.ok) throw new Error(`fetch failed: ${effect.reason}`);
  } finally {
    await target?.close();
  }
  const ms = performance.now() - start;
  if ((await Deno.stat(to)).size !== size) throw new Error("fetch: short file");
  await Deno.remove(to);
  return ms;
}

const dir = await Deno.makeTempDir({ prefix: "thaw-bench-target-" });
const sshd = await startSshd("bench");
let stop = () => Promise.resolve();
try {
  await Deno.mkdir(`${dir}/srv`);
  const sha256 = await makeFile(`${dir}/srv/big.bin`);
  const server = await serve(`${dir}/srv`);
  stop = server.stop;
  const url = `${server.url}big.bin`;
  const to = `${dir}/landed.bin`;
  const cfg = sshd.config, host = sshd.alias;
  await pipeline(url, cfg, host, to); // warm-up: page cache, server
  await step(url, to, { cfg, host });
  const times = { a: [] as number[], b: [], c: [], d: [], e: [] } as Record<string, number[]>;
  for (let run = 0; run < RUNS; run++) {
    times.a!.push(await pipeline(url, cfg, host, to));
    times.b!.push(await step(url, to, { cfg, host }));
    times.c!.push(await step(url, to, { cfg, host }, sha256));
    times.d!.push(await pipeline(url, cfg, host, to, sha256));
    times.e!.push(await step(url, to, undefined, sha256));
  }
  const [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map((k) => mbps(median(times[k]!)));
  const gib = (size / (1 << 30)).toFixed(2);
  console.log(`${gib} GiB fetch step, median of ${RUNS} (MB/s):`);
  console.log(`  (a) curl | ssh 'cat > f'                 ${a!.toFixed(0)}`);
  console.log(
    `  (b) fetch on the host (no sha256)        ${b!.toFixed(0)}  ${(b! / a!).toFixed(2)}x (a)`,
  );
  console.log(
    `  (c) fetch on the host, sha256            ${c!.toFixed(0)}  ${(c! / d!).toFixed(2)}x (d)`,
  );
  console.log(`  (d) curl | ssh 'cat > f && sha256sum f'  ${d!.toFixed(0)}`);
  console.log(`  (e) fetch here, sha256                   ${e!.toFixed(0)}`);
  if (b! / a! < MIN_RATIO) {
    console.log(`below the target of ${MIN_RATIO}x`);
    Deno.exitCode = 1;
  }
} finally {
  await stop();
  await sshd.stop();
  await Deno.remove(dir, { recursive: true });
}
