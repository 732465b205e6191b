/**
 * The ssh target against the tools it stands for, on this machine: a real sshd on 127.0.0.1
 * (tests/sshd.ts) is the "remote" host, the test backup server (tests/http_backup_server.ts, in
 * its own process) the source.
 *
 * 1. A 1 GiB fetch landing on the host, alternating, 5 runs each (medians and ranges):
 *    (a) `sh -c 'curl -s URL | ssh -F CFG HOST "cat > F"'` (a connection of its own);
 *    (b) thaw's landing (steps/targets/ssh_land.ts) fed by `curl -s URL`'s stdout: the bytes
 *        streamed through a fresh SshTarget's shared connection into a temporary file on the
 *        host, flushed there (`sync`), size checked, renamed into place; no sha256;
 *    (e) the same read by Deno's fetch() instead of curl (as the engine's http source reads);
 *    (c) (b) with `sha256` (checked on the host with `sha256sum` before the rename), against
 *    (d) `curl -s URL | ssh HOST 'cat > F && sha256sum F'`.
 *    Target: (b), the target's writer, at least 0.8x (a). Exits 1 below it.
 * 2. Per-command overhead: 1,000 `true` commands at parallelism 2 over one shared connection
 *    (spawn, exit status, output drained) against local `spawnGroup` (steps/process/process.ts).
 *
 * Run: `deno run -A tests/bench/ssh_fetch.ts [GiB]`
 *
 * @module
 */

import { createHash } from "node:crypto";
import { startSshd } from "../sshd.ts";
import { SshTarget } from "../../steps/targets/ssh.ts";
import { openLanding } from "../../steps/targets/ssh_land.ts";
import { spawnGroup } from "../../steps/process/process.ts";

const BLOCK = 1 << 20;
const size = Math.round(Number(Deno.args[0] ?? "1") * 1024) * BLOCK;
const RUNS = 5;
const MIN_RATIO = 0.8;
const COMMANDS = 1000;
const PARALLEL = 2;

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

/** The bytes of `url`: read by Deno's fetch(), or from `curl -s URL`'s stdout. */
async function* body(url: string, reader: "fetch" | "curl"): AsyncGenerator<Uint8Array> {
  if (reader === "fetch") {
    const response = await fetch(url);
    if (!response.ok || !response.body) throw new Error(`GET ${url}: ${response.status}`);
    yield* response.body;
    return;
  }
  const curl = new Deno.Command("curl", { args: ["-s", url], stdout: "piped" }).spawn();
  yield* curl.stdout;
  if (!(await curl.status).success) throw new Error("curl failed");
}

/** thaw's landing through a fresh target's shared connection; milliseconds. */
async function landing(
  url: string,
  cfg: string,
  host: string,
  to: string,
  options: { hash?: string; reader?: "fetch" | "curl" } = {},
) {
  const start = performance.now();
  const target = new SshTarget("bench", { ssh: host }, { sshConfig: cfg });
  try {
    const spec = { to, tmp: `${to}.part`, size, sha256: options.hash };
    const l = await openLanding(target, spec, { resume: false });
    for await (const chunk of body(url, options.reader ?? "fetch")) await l.write(chunk);
    await l.finish();
  } finally {
    await target.close();
  }
  const ms = performance.now() - start;
  if ((await Deno.stat(to)).size !== size) throw new Error("landing: short file");
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
  await Deno.mkdir(`${dir}/srv`);
  const sha256 = await makeFile(`${dir}/srv/big.bin`);
  const server = await serve(`${dir}/srv`);
  stop = server.stop;
  const url = `${server.url}big.bin`;
  const to = `${dir}/landed.bin`;
  const cfg = sshd.config, host = sshd.alias;
  await pipeline(url, cfg, host, to); // warm-up: page cache, server
  await landing(url, cfg, host, to);
  const times = {
    a: [] as number[],
    b: [] as number[],
    e: [] as number[],
    c: [] as number[],
    d: [] as number[],
  };
  for (let run = 0; run < RUNS; run++) {
    times.a.push(await pipeline(url, cfg, host, to));
    times.b.push(await landing(url, cfg, host, to, { reader: "curl" }));
    times.e.push(await landing(url, cfg, host, to));
    times.c.push(await landing(url, cfg, host, to, { hash: sha256, reader: "curl" }));
    times.d.push(await pipeline(url, cfg, host, to, sha256));
  }
  const [a, b, d] = [times.a, times.b, times.d].map((t) => mbps(median(t)));
  /** Median MB/s, the range over the runs, and the ratio to `base`. */
  const line = (label: string, t: number[], base?: number) => {
    const rate = mbps(median(t));
    const range = `${mbps(Math.max(...t)).toFixed(0)}-${mbps(Math.min(...t)).toFixed(0)}`;
    const ratio = base === undefined ? "" : `  ${(rate / base).toFixed(2)}x`;
    console.log(`  ${label.padEnd(44)} ${rate.toFixed(0).padStart(5)} (${range})${ratio}`);
  };
  const gib = (size / (1 << 30)).toFixed(2);
  console.log(`${gib} GiB landing on a loopback sshd, MB/s, median of ${RUNS} (range):`);
  line("(a) curl | ssh 'cat > f'", times.a);
  line("(b) curl -s URL | thaw landing, vs (a)", times.b, a);
  line("(e) Deno fetch() | thaw landing, vs (a)", times.e, a);
  line("(d) curl | ssh 'cat > f && sha256sum f'", times.d);
  line("(c) curl | thaw landing + sha256sum, vs (d)", times.c, d);

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
  if (b! / a! < MIN_RATIO) {
    console.log(`below the target of ${MIN_RATIO}x`);
    Deno.exitCode = 1;
  }
} finally {
  await stop();
  await sshd.stop();
  await Deno.remove(dir, { recursive: true });
}
