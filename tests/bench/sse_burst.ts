/**
 * A burst of event streams against `thaw serve`: 500 clients open `GET /runs/ID/events` on a
 * running run, hold them, and go. The server (its own process) must give back what it took:
 * every stream slot (500 open again afterwards, the 501st refused with 503) and its memory (RSS
 * back within 20 % + 16 MiB of where it was before the burst, after a few seconds).
 *
 * ```sh
 * deno run -A tests/bench/sse_burst.ts [--streams 500] [--rounds 2]
 * ```
 *
 * Prints the server's RSS before, during and after each burst. Exits 1 if a target is missed.
 * Listens on 127.0.0.1 only.
 *
 * @module
 */
import { hostname } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { newRunId } from "../../engine/schedule/report.ts";
import { openStore } from "../../engine/store/mod.ts";
import { thawCommand } from "../paths.ts";

const { values } = parseArgs({
  options: {
    streams: { type: "string", default: "500" },
    rounds: { type: "string", default: "2" },
  },
});
const STREAMS = Number(values.streams), ROUNDS = Number(values.rounds);
const MiB = 1 << 20;

function rss(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Opens `n` event streams; resolves once each has its first bytes. */
async function burst(url: string, n: number) {
  const clients = Array.from({ length: n }, () => new AbortController());
  const statuses = await Promise.all(clients.map(async (c) => {
    const res = await fetch(url, { signal: c.signal });
    if (res.status === 200) await res.body!.getReader().read();
    else await res.body?.cancel();
    return res.status;
  }));
  return { clients, statuses };
}

const dir = await Deno.makeTempDir({ prefix: "thaw-sse-burst-" });
const store = await openStore(join(dir, "state.db"));
const run = newRunId();
await store.createRun({
  id: run,
  runbook: "burst",
  file: join(dir, "rb.yaml"),
  fileSha256: "0".repeat(64),
  mode: "live",
  drill: true,
  strategy: "aggressive",
  vars: {},
  steps: ["a"],
  startedAt: Date.now(),
  pid: Deno.pid, // this process is the run's "engine": the run stays running
  host: hostname(),
});
await store.recordSteps(run, [{ step: "a", state: "running", at: 0 }]);

const server = thawCommand(["serve", "--store", join(dir, "state.db"), "--listen", "127.0.0.1:0"], {
  stdout: "piped",
  stderr: "inherit",
  env: { THAW_MAX_STREAMS: String(STREAMS) },
}).spawn();
let failed = false;
try {
  const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!/http:\/\/127\.0\.0\.1:\d+/.test(out)) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`thaw serve ended: ${out}`);
    out += value;
  }
  const base = /http:\/\/127\.0\.0\.1:\d+/.exec(out)![0];
  const url = `${base}/runs/${run}/events`;
  // Warm up: the first requests load code and caches.
  for (let i = 0; i < 20; i++) await (await fetch(`${base}/runs/${run}`)).body?.cancel();
  await burst(url, 10).then(({ clients }) => clients.forEach((c) => c.abort()));
  await sleep(2000);
  const before = rss(server.pid);
  console.log(`server RSS before: ${(before / MiB).toFixed(1)} MiB`);
  for (let round = 1; round <= ROUNDS; round++) {
    const { clients, statuses } = await burst(url, STREAMS);
    const ok = statuses.filter((s) => s === 200).length;
    const extra = await fetch(url);
    await extra.body?.cancel();
    const during = rss(server.pid);
    for (const c of clients) c.abort();
    await sleep(5000);
    const after = rss(server.pid);
    const line = `round ${round}: ${ok}/${STREAMS} streams open, the next one ${extra.status}; ` +
      `RSS during ${(during / MiB).toFixed(1)} MiB, 5 s after ${(after / MiB).toFixed(1)} MiB`;
    console.log(line);
    if (ok !== STREAMS || extra.status !== 503) {
      console.log("  MISSED: every slot up to the cap, and 503 beyond it");
      failed = true;
    }
    if (after > before * 1.2 + 16 * MiB) {
      console.log("  MISSED: memory not given back");
      failed = true;
    }
  }
} finally {
  server.kill("SIGTERM");
  await server.status;
  await server.stdout.cancel().catch(() => {});
  await store.close();
  await Deno.remove(dir, { recursive: true });
}
if (failed) Deno.exit(1);
