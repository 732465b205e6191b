/**
 * A fetch step landing on a host over ssh against the shell pipelines it stands for, on this
 * machine: a real sshd on 127.0.0.1 (tests/sshd.ts) is the "remote" host, the test backup server
 * (tests/http_backup_server.ts, in its own process) the source. The host's sshd, the server and
 * the ssh clients share this machine's cores, so the transfer is CPU-bound: every hop shows.
 *
 * 1. A 1 GiB fetch landing on the host, alternating rounds, 5 each (medians and ranges):
 *    (a) `curl -s URL | ssh HOST 'cat > F'` (a connection of its own): the issue's yardstick; it
 *        leaves the data in the host's page cache, unflushed, under its final name at once.
 *    (s) `curl -s URL | ssh HOST '… cat >&9 && sync T && [ size ] && mv -T T F && sync DIR'`: the
 *        same work as thaw's landing, in one shell on the host: no directory at F, the temporary
 *        name locked (`flock`) and emptied, filled, flushed to disk, its size checked, renamed,
 *        the directory flushed.
 *    (b) thaw: `fetchKind.execute()` with a fresh `SshTarget` (its own shared connection, logged
 *        in each round like ssh in (a)), reading with Deno's fetch() as the engine's http source
 *        does, no sha256: checks of `to` (no directory thaw did not write), the temporary name
 *        under an exclusive `flock`, the bytes streamed through a `cat` over the connection,
 *        `sync` of the file once at the end, its size checked on the host, `mv -T`, `sync` of
 *        the directory.
 *    (c) (b) with `sha256`: hashed here while the bytes stream (no read-back), against
 *    (d) (s) with `sha256sum T` on the host before the rename (a read-back, from the page cache).
 *    Target: (b) at least 0.8x (s), the like-for-like figure (exits 1 below it); (b) against (a)
 *    is printed too.
 * 2. Per-command overhead: 1,000 `true` commands at parallelism 2 over one shared connection
 *    (spawn, exit status, output drained) against local `spawnGroup` (steps/process/process.ts).
 *
 * Beside each rate: the sending side's CPU seconds a GiB (this process and the children it waited
 * for: curl, the ssh clients, thaw's ssh master), less sensitive to other load than the rate; the
 * host's side (sshd, `cat`, `sha256sum` in (d)) and the server are not in it. The load average
 * (another job on a 2-core machine shows in every rate) is printed at the start and the end.
 *
 * Run: `deno run -A tests/bench/ssh_fetch.ts [GiB] [--no-commands]`
 *
 * @module
 */

import { BLOCK, makeFile, serve } from "./fetch_data.ts";
import { dirname } from "node:path";
import { startSshd } from "../sshd.ts";
import { SshTarget } from "../../steps/targets/ssh.ts";
import { fetchKind } from "../../steps/fetch/kind.ts";
import { realClock } from "../../steps/types.ts";
import { spawnGroup } from "../../steps/process/process.ts";

const size = Math.round(Number(Deno.args.find((a) => !a.startsWith("-")) ?? "1") * 1024) * BLOCK;
const RUNS = 5;
const MIN_RATIO = 0.8;
const COMMANDS = 1000;
const PARALLEL = 2;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
const mbps = (ms: number) => size / 1e6 / (ms / 1000);
const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

/**
 * CPU milliseconds of this process and of the children it waited for (the ssh clients and masters,
 * curl): what the sending side spent. The host's sshd and the server are not in it.
 */
function clientCpuMs(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  return (f[11]! + f[12]! + f[13]! + f[14]!) * 10; // utime, stime, cutime, cstime (100 Hz)
}

/**
 * `curl | ssh HOST REMOTE` (a connection of its own); milliseconds. `mode`: `plain` is
 * `cat > F`; `durable` lands as thaw does (no directory at F, temporary name under `flock`,
 * emptied, sync, size checked, rename, sync of the directory);
 * `hash` is `durable` with `sha256sum` on the host before the rename, checked against `hash`.
 */
async function pipeline(
  url: string,
  cfg: string,
  host: string,
  to: string,
  mode: "plain" | "durable" | { hash: string },
) {
  const [f, t, d] = [to, `${to}.part`, dirname(to)];
  // `durable` does on the host what thaw's landing does there, in one shell: no directory at F,
  // T locked and emptied, filled, flushed, its size checked, (hashed,) renamed, D flushed.
  const remote = mode === "plain"
    ? `cat > ${f}`
    : `[ ! -d ${f} ] && exec 9>>${t} && flock 9 && truncate -s 0 ${t} && cat >&9 && ` +
      `sync ${t} && [ "$(stat -c %s ${t})" = ${size} ] && ` +
      `${mode === "durable" ? "" : `sha256sum ${t} && `}mv -T ${t} ${f} && sync ${d}`;
  const start = performance.now();
  const out = await new Deno.Command("sh", {
    args: ["-c", 'curl -s "$1" | ssh -F "$2" "$3" "$4"', "sh", url, cfg, host, remote],
    stdout: "piped",
  }).output();
  const ms = performance.now() - start;
  const got = new TextDecoder().decode(out.stdout).split(" ")[0];
  const hash = typeof mode === "object" ? mode.hash : undefined;
  if (!out.success || (hash && got !== hash)) throw new Error(`curl | ssh failed (${got})`);
  if ((await Deno.stat(to)).size !== size) throw new Error("curl | ssh: short file");
  await Deno.remove(to);
  return ms;
}

/** One fetch step through the fetch kind on a fresh ssh target; milliseconds. */
async function step(url: string, cfg: string, host: string, to: string, hash?: string) {
  const start = performance.now();
  const target = new SshTarget("bench", { ssh: host }, { sshConfig: cfg });
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
      target,
    });
    if (!effect.ok) throw new Error(`fetch failed: ${effect.reason}`);
  } finally {
    await target.close();
  }
  const ms = performance.now() - start;
  if ((await Deno.stat(to)).size !== size) throw new Error("fetch: short file");
  await Deno.remove(to);
  return ms;
}

/** `count` commands, `parallel` at a time, each awaited to its end; milliseconds. */
async function commands(start: () => Promise<void>, count: number, parallel: number) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) {
      next++;
      await start();
    }
  }));
  return performance.now() - t0;
}

const dir = await Deno.makeTempDir({ prefix: "thaw-bench-ssh-" });
const sshd = await startSshd("bench");
let stop = () => Promise.resolve();
try {
  console.log(`load average at the start: ${load()}`);
  await Deno.mkdir(`${dir}/srv`);
  const sha256 = await makeFile(`${dir}/srv/big.bin`, size);
  const server = await serve(`${dir}/srv`);
  stop = server.stop;
  const url = `${server.url}big.bin`;
  const to = `${dir}/landed.bin`;
  const cfg = sshd.config, host = sshd.alias;
  await pipeline(url, cfg, host, to, "plain"); // warm-up: page cache, server
  await step(url, cfg, host, to);
  type Key = "a" | "s" | "b" | "c" | "d";
  const times: Record<Key, number[]> = { a: [], s: [], b: [], c: [], d: [] };
  const cpu: Record<Key, number[]> = { a: [], s: [], b: [], c: [], d: [] };
  const measure = async (key: Key, run: () => Promise<number>) => {
    const before = clientCpuMs();
    times[key].push(await run());
    cpu[key].push(clientCpuMs() - before);
  };
  for (let run = 0; run < RUNS; run++) {
    await measure("a", () => pipeline(url, cfg, host, to, "plain"));
    await measure("b", () => step(url, cfg, host, to));
    await measure("s", () => pipeline(url, cfg, host, to, "durable"));
    await measure("c", () => step(url, cfg, host, to, sha256));
    await measure("d", () => pipeline(url, cfg, host, to, { hash: sha256 }));
  }
  const [a, s, d] = [times.a, times.s, times.d].map((t) => mbps(median(t)));
  /** Median MB/s, the range over the runs, and the ratio to `base`. */
  const line = (label: string, key: Key, base?: number) => {
    const t = times[key];
    const rate = mbps(median(t));
    const seconds = median(cpu[key]) / 1000 / (size / (1 << 30));
    const range = `${mbps(Math.max(...t)).toFixed(0)}-${mbps(Math.min(...t)).toFixed(0)}`;
    const ratio = base === undefined ? "" : `  ${(rate / base).toFixed(2)}x`;
    const spent = `${seconds.toFixed(2)} s`;
    console.log(
      `  ${label.padEnd(58)} ${rate.toFixed(0).padStart(5)} (${range}) ${
        spent.padStart(7)
      }${ratio}`,
    );
  };
  const gib = (size / (1 << 30)).toFixed(2);
  console.log(
    `${gib} GiB landing on a loopback sshd, MB/s, median of ${RUNS} (range), sending side's ` +
      `CPU seconds a GiB (median):`,
  );
  line("(a) curl | ssh 'cat > f'", "a");
  line("(s) curl | ssh 'lock, cat, sync, size, mv -T t f, sync d'", "s");
  line("(b) thaw fetch step on the host, vs (s)", "b", s);
  line("    the same, vs (a)", "b", a);
  line("(d) (s) with sha256sum t on the host", "d");
  line("(c) thaw fetch step with sha256, vs (d)", "c", d);
  console.log(`load average at the end of the landings: ${load()}`);
  if (!Deno.args.includes("--no-commands")) await overhead(cfg, host);
  if (mbps(median(times.b)) / s! < MIN_RATIO) {
    console.log(`below the target of ${MIN_RATIO}x (s)`);
    Deno.exitCode = 1;
  }
} finally {
  await stop();
  await sshd.stop();
  await Deno.remove(dir, { recursive: true });
}

/** Prints the per-command overhead over the shared connection against local process groups. */
async function overhead(cfg: string, host: string): Promise<void> {
  const target = new SshTarget("bench", { ssh: host }, { sshConfig: cfg });
  try {
    await target.connect();
    const remote = () =>
      target.spawn({ shell: "sh", command: "true", cwd: "/", env: {} }).then(async (p) => {
        if ((await p.status).code !== 0) throw new Error("true failed on the host");
        await p.drained;
      });
    const env = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
    const local = async () => {
      const g = spawnGroup("sh", "true", { cwd: "/", env });
      if ((await g.status).code !== 0) throw new Error("true failed");
      await g.closeOutput();
    };
    await commands(remote, 20, PARALLEL);
    await commands(local, 20, PARALLEL);
    const r = await commands(remote, COMMANDS, PARALLEL);
    const l = await commands(local, COMMANDS, PARALLEL);
    console.log(`${COMMANDS} \`true\` at parallelism ${PARALLEL}:`);
    console.log(
      `  over the shared connection  ${(r / 1000).toFixed(2)} s (${
        (r / COMMANDS).toFixed(2)
      } ms each)`,
    );
    console.log(
      `  local spawnGroup            ${(l / 1000).toFixed(2)} s (${
        (l / COMMANDS).toFixed(2)
      } ms each)`,
    );
    console.log(`  ratio                       ${(r / l).toFixed(1)}x`);
  } finally {
    await target.close();
  }
}
