/**
 * Measures what issue 12 asks of lazy fetches, with the real tools, straight through the library
 * (no engine): the example's 278 MiB SQLite catalog (`runbooks/tools/catalog_db.ts`) served by the
 * stand-in backup server (`runbooks/tools/backup.ts`) behind a 10 MB/s site link
 * (`runbooks/tools/link.ts`), read through nbdkit (curl + retry-request) by qemu-storage-daemon
 * (qcow2 overlay, copy-on-read, read-only FUSE file), and the example's catalog service
 * (`runbooks/tools/catalog_service.ts`) answering point queries on that file.
 *
 * ```sh
 * deno run -A tests/bench/lazy_reads.ts            # about 2 minutes; needs root and /dev/fuse
 * ```
 *
 * Every answer is checked against the generator (id, sku, FNV-1a of the image). Prints a table,
 * then what each figure means.
 *
 * @module
 */
import { fileURLToPath as fromFileUrl } from "node:url";
import { startBacking } from "../../steps/fetch/lazy/nbdkit.ts";
import { LazyVolume } from "../../steps/fetch/lazy/qsd.ts";
import { describe, make } from "../../runbooks/tools/catalog_db.ts";
import {
  type Answers,
  freePort,
  percentile,
  queries,
  query,
  sleep,
  spawn,
  waitTcp,
} from "./lazy_kit.ts";

const LINK = 10e6; // bytes/s of the stand-in site link (10 MB/s, as in the issue)
const tools = fromFileUrl(new URL("../../runbooks/tools/", import.meta.url));
const backupDir = fromFileUrl(
  new URL("../../runbooks/.thaw/backup/lazy-catalog/", import.meta.url),
);
const MB = 1e6;

interface Site {
  readonly work: string;
  readonly link: number;
  readonly size: number;
  /** Starts (or starts again) the stand-in backup server. */
  startBackup(): Promise<void>;
  /** Kills it (the backup outage). */
  stopBackup(): void;
  close(): Promise<void>;
}

/** The backup site: the generated catalog, its server and the capped link in front of it. */
async function site(): Promise<Site> {
  make(`${backupDir}catalog.db`);
  const size = (await Deno.stat(`${backupDir}catalog.db`)).size;
  const work = await Deno.makeTempDir({ prefix: "lazy-bench-" });
  const origin = await freePort(), link = await freePort();
  let backup: Deno.ChildProcess | undefined;
  const linkProc = spawn(["run", "-A", `${tools}link.ts`, String(LINK / MB), `${link}:${origin}`]);
  const s: Site = {
    work,
    link,
    size,
    async startBackup() {
      backup = spawn(["run", "-A", `${tools}backup.ts`, "serve", backupDir, String(origin)]);
      await waitTcp(origin);
    },
    stopBackup() {
      backup?.kill("SIGKILL");
      backup = undefined;
    },
    async close() {
      s.stopBackup();
      linkProc.kill("SIGKILL");
      await linkProc.status;
      await Deno.remove(work, { recursive: true }).catch(() => {});
    },
  };
  await s.startBackup();
  await waitTcp(link);
  return s;
}

interface Restore {
  readonly vol: LazyVolume;
  readonly port: number;
  readonly attachMs: number;
  readonly firstAnswerMs: number;
  fetched(): Promise<number>;
  /**
   * Restarts qemu-storage-daemon on the same overlay (after a kill -9), and the service on it;
   * resolves with the milliseconds until the service answered again.
   */
  restartDaemon(): Promise<number>;
  close(): Promise<void>;
}

/** Attaches a fresh lazy volume of the catalog and starts the catalog service on it. */
async function restore(s: Site, tag: string): Promise<Restore> {
  const began = performance.now();
  const dir = `${s.work}/${tag}`;
  await Deno.mkdir(dir);
  const backing = await startBacking({
    url: `http://127.0.0.1:${s.link}/catalog.db`,
    socket: `${dir}/b.sock`,
    log: `${dir}/nbdkit.log`,
  });
  const file = `${dir}/catalog.db`;
  await Deno.writeFile(file, new Uint8Array());
  const options = {
    backing: backing.uri,
    overlay: `${dir}/catalog.qcow2`,
    size: s.size,
    export: { kind: "fuse" as const, file },
    runDir: dir,
    log: `${dir}/qsd.log`,
  };
  let vol = await LazyVolume.start(options);
  const attachMs = performance.now() - began;
  const port = await freePort();
  let svc = await service(port, file);
  const firstAnswerMs = performance.now() - began;
  return {
    get vol() {
      return vol;
    },
    port,
    attachMs,
    firstAnswerMs,
    fetched: () => backing.fetchedBytes(),
    async restartDaemon() {
      const again = performance.now();
      svc.kill("SIGKILL"); // its file went away with the daemon
      await svc.status;
      await vol.stop(); // the daemon is dead: this clears its dead mount and sockets
      vol = await LazyVolume.start(options);
      svc = await service(port, file);
      return performance.now() - again;
    },
    async close() {
      svc.kill("SIGKILL");
      await svc.status;
      await vol.stop();
      await backing.stop();
    },
  };
}

/** Starts the catalog service on `file`; resolves once it answered a query right. */
async function service(port: number, file: string): Promise<Deno.ChildProcess> {
  const svc = spawn(["run", "-A", `${tools}catalog_service.ts`, String(port), file]);
  for (let i = 0; i < 1000; i++) {
    if ((await query(port, 1).catch(() => undefined))?.ok) return svc;
    await sleep(10);
  }
  svc.kill("SIGKILL");
  throw new Error(`the catalog service on ${file} did not answer within 10 s`);
}

/** Checks that the whole file reads back as the backup (sha256), through the FUSE file. */
async function sameAsBackup(s: Site, tag: string): Promise<boolean> {
  const [a, b] = await Promise.all([
    describe(`${s.work}/${tag}/catalog.db`),
    describe(`${backupDir}catalog.db`),
  ]);
  return a.sha256 === b.sha256 && a.size === b.size;
}

/** Flushes the volume every 2 s until `stop` resolves. */
async function flushEvery2s(r: Restore, stop: Promise<unknown>): Promise<void> {
  let done = false;
  stop.then(() => done = true);
  while (!done) {
    await Promise.race([sleep(2000), stop]);
    if (!done) await r.vol.flush().catch(() => {});
  }
}

/** Bytes of the volume held by the overlay itself (qcow2 clusters allocated), as on disk. */
async function keptBytes(overlay: string): Promise<number> {
  const out = await new Deno.Command("qemu-img", {
    args: ["check", "-U", "--output=json", overlay],
    stdout: "piped",
    stderr: "null",
  }).output();
  const info = JSON.parse(new TextDecoder().decode(out.stdout));
  return Number(info["allocated-clusters"]) * Number(info["cluster-size"] ?? 65536);
}

type Row = [string, string];

async function streamAt(s: Site, share: number, rows: Row[], home: boolean): Promise<void> {
  const tag = `stream${Math.round(share * 100)}`;
  const r = await restore(s, tag);
  try {
    rows.push([`${tag}: attached (nbdkit + daemon + FUSE)`, `${r.attachMs.toFixed(0)} ms`]);
    rows.push([`${tag}: first answer after start`, `${r.firstAnswerMs.toFixed(0)} ms`]);
    await r.vol.stream(share * LINK);
    const during = await queries(r.port, 12_000, 100);
    rows.push([`${tag}: query p50 / p90 during stream`, fmt(during)]);
    if (!home) return;
    await r.vol.setSpeed(Infinity);
    const homeOk = await r.vol.waitHome(120_000);
    const after = await queries(r.port, 5_000, 20);
    rows.push([`${tag}: query p50 / p90 after home`, fmt(after)]);
    const fetched = await r.fetched();
    rows.push([
      `${tag}: bytes fetched / image size`,
      `${(fetched / s.size).toFixed(4)}x (${fetched} / ${s.size})`,
    ]);
    rows.push([`${tag}: home, sha256 as the backup`, `${homeOk}, ${await sameAsBackup(s, tag)}`]);
  } finally {
    await r.close();
  }
}

async function killAndOutage(s: Site, rows: Row[]): Promise<void> {
  const r = await restore(s, "kill9");
  try {
    await r.vol.stream(Infinity);
    let stopFlushing!: () => void;
    const flushing = flushEvery2s(r, new Promise<void>((ok) => stopFlushing = ok));
    await sleep(12_500);
    const before = await r.fetched();
    const progress = await r.vol.progress();
    Deno.kill(-r.vol.pgid, "SIGKILL");
    stopFlushing();
    await flushing;
    await sleep(200);
    const kept = await keptBytes(`${s.work}/kill9/catalog.qcow2`);
    rows.push([
      "kill -9 after 12.5 s, flushes every 2 s: kept / fetched",
      `${(kept / MB).toFixed(1)} MB / ${(before / MB).toFixed(1)} MB (stream at ${
        (progress.offset / MB).toFixed(1)
      } MB)`,
    ]);
    const backMs = await r.restartDaemon();
    rows.push(["kill -9: daemon and service restarted, answering", `${backMs.toFixed(0)} ms`]);
    await r.vol.stream(Infinity);
    const resumed = flushEvery2s(r, r.vol.waitHome(120_000));
    await outage(s, r, rows);
    await resumed;
    const homeOk = await r.vol.home();
    const total = await r.fetched();
    rows.push([
      "after restart, home: fetched again",
      `${((total - s.size) / MB).toFixed(1)} MB (total ${(total / s.size).toFixed(4)}x the image)`,
    ]);
    rows.push([
      "kill -9: home, sha256 as the backup",
      `${homeOk}, ${await sameAsBackup(s, "kill9")}`,
    ]);
  } finally {
    await r.close();
  }
}

/** A 4.5 s backup outage while queries go on (the stream still running). */
async function outage(s: Site, r: Restore, rows: Row[]): Promise<void> {
  const load = queries(r.port, 9_000, 100);
  await sleep(2_000);
  s.stopBackup();
  const down = performance.now();
  await sleep(4_500);
  await s.startBackup();
  const upAfter = performance.now() - down;
  const got = await load;
  const stream = await r.vol.progress();
  const waited = got.latencies.filter((ms) => ms > 1000).length;
  const slowest = got.latencies.length ? Math.max(...got.latencies).toFixed(0) : "-";
  rows.push([
    `backup down ${(upAfter / 1000).toFixed(1)} s during queries: answers`,
    `${got.ok}/${got.sent} right, ${got.wrong} wrong, ${got.failed} failed; ` +
    `${waited} waited > 1 s, slowest ${slowest} ms; stream ${stream.state}`,
  ]);
}

function fmt(a: Answers): string {
  const p50 = percentile(a.latencies, 0.5), p90 = percentile(a.latencies, 0.9);
  const bad = a.wrong + a.failed ? `, ${a.wrong} wrong, ${a.failed} failed` : "";
  return `${p50.toFixed(1)} / ${p90.toFixed(1)} ms (${a.ok} queries${bad})`;
}

const MEANING = `
What the figures mean:
- attached: from nothing to the file being readable: nbdkit up, the qcow2 overlay made,
  qemu-storage-daemon up with its FUSE export (what a lazy fetch's "attached" costs).
- first answer: from that same start to the catalog service (a fresh Deno process opening the
  file) answering its first point query: the time to the service.
- query p50 / p90: one point query (GET /sku/SKU, a random item through the index; a query every
  100 ms), as the catalog service answers it over HTTP, while the stream is held to that share of
  the 10 MB/s link (stream90: 9 MB/s, stream40: 4 MB/s, stream0: paused, demanded reads only),
  and after the volume is home.
- bytes fetched / image size: nbdkit's count of the bytes read from the backup, over the file's
  size: 1.0000x means nothing was fetched twice (demanded reads and the stream share the overlay).
- kill -9: qemu-storage-daemon killed mid-stream while the volume is flushed every 2 s; kept is
  what the overlay held after the kill (qcow2 clusters); the restarted daemon resumes the stream,
  and "fetched again" is what crossed the link beyond the image's size in all.
- backup down: the stand-in backup server killed for ~4.5 s while queries go on: reads wait
  (nbdkit's retry-request), then answer right; none should fail.`;

if (import.meta.main) {
  const loadBefore = (await Deno.readTextFile("/proc/loadavg")).trim();
  const s = await site();
  const rows: Row[] = [];
  try {
    await streamAt(s, 0, rows, false);
    await streamAt(s, 0.4, rows, false);
    await streamAt(s, 0.9, rows, true);
    await killAndOutage(s, rows);
  } finally {
    await s.close();
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(`lazy reads: ${(s.size / MB).toFixed(1)} MB SQLite catalog, ${LINK / MB} MB/s link`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
  console.log(`load average before: ${loadBefore}`);
  console.log(`load average after:  ${(await Deno.readTextFile("/proc/loadavg")).trim()}`);
  console.log(MEANING);
}
