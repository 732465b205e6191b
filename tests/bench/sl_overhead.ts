/**
 * What sampling the service level costs (issue 11 point 1: "probe at 100 ms does not move BTN by
 * more than 2 %").
 *
 * 1. `cpu` (works now): the sampler's CPU time per sample, for an `http` probe (against a server
 *    in another process, so only the sampler's side is counted), a `tcp` probe and a `run` probe
 *    (`echo 1`), each sampled every 100 ms; minus the process's idle CPU over the same time.
 * 2. `btn` (once the engine is wired with `service_level`): a drill whose BTN is set by a paced
 *    fetch (100 MB at 20 MB/s) beside a background service, run without and with an `http` probe
 *    of that service every 100 ms; the median ratio of the BTNs. Skipped, saying so, while the
 *    engine refuses the `service_level` key.
 *
 * ```sh
 * deno run -A tests/bench/sl_overhead.ts [--seconds 10] [--rounds 3] [--only cpu|btn]
 * ```
 *
 * Exits 1 if the BTN target is missed (with probes, BTN at most 2 % later than without).
 *
 * @module
 */
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { startSampler } from "../../engine/service_level/sampler.ts";
import {
  serviceLevelModel,
  type ServiceLevelProbeInput,
} from "../../engine/service_level/schema.ts";
import { fromFileUrl } from "../paths.ts";

const ROOT = fromFileUrl(new URL("../../", import.meta.url));
const MAIN = join(ROOT, "engine/main.ts");
const ENV = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** A free port on 127.0.0.1 (closed again at once). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

/** The command line of a tiny HTTP service on 127.0.0.1:PORT, in its own process. */
function serviceArgs(port: number): string[] {
  return [
    "eval",
    `Deno.serve({ hostname: "127.0.0.1", port: ${port}, onListen() {} }, () => new Response("ok"))`,
  ];
}

async function waitUp(port: number): Promise<void> {
  for (let k = 0; k < 200; k++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`the service on 127.0.0.1:${port} did not start within 10 s`);
}

/** CPU milliseconds this process used while `f` ran. */
async function cpuDuring(f: () => Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  await f();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

/** CPU ms per sample of `probe`, sampled every 100 ms for `seconds`, idle CPU taken off. */
async function cpuPerSample(probe: ServiceLevelProbeInput, seconds: number) {
  const idle = await cpuDuring(() => sleep(seconds * 1000));
  const t0 = performance.now();
  let samples = 0, failed = 0;
  const sampler = startSampler({
    probes: serviceLevelModel([probe]),
    now: () => (performance.now() - t0) / 1000,
    onSample: (_name, s) => {
      samples++;
      if (!s.ok) failed++;
    },
    cwd: ROOT,
    env: ENV,
  });
  const busy = await cpuDuring(async () => {
    sampler.stepDone("up");
    await sleep(seconds * 1000);
    sampler.btn();
    await sampler.done;
  });
  await sampler.stop();
  return { perSample: (busy - idle) / Math.max(1, samples), samples, failed, idle, busy };
}

async function cpu(seconds: number): Promise<void> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), { args: serviceArgs(port), stdout: "null" })
    .spawn();
  try {
    await waitUp(port);
    const probes: ServiceLevelProbeInput[] = [
      { name: "http", after: "up", http: `http://127.0.0.1:${port}/`, every: "100ms" },
      { name: "tcp", after: "up", tcp: `127.0.0.1:${port}`, every: "100ms" },
      { name: "run", after: "up", run: "echo 1", every: "100ms" },
    ];
    for (const p of probes) {
      const r = await cpuPerSample(p, seconds);
      console.log(
        `${p.name} probe every 100 ms: ${r.perSample.toFixed(3)} ms CPU per sample ` +
          `(${r.samples} samples, ${r.failed} failed; ${r.perSample.toFixed(2)}% ` +
          `of one core at 10 samples/s; idle ${r.idle.toFixed(0)} ms, sampling ${
            r.busy.toFixed(0)
          } ms of CPU over ${seconds} s)`,
      );
    }
  } finally {
    child.kill();
    await child.status;
  }
}

/** The runbook of the BTN comparison; `sl` adds the probe. */
function runbook(backup: string, port: number, sl: boolean): string {
  return `runbook: 1
name: sl-overhead
bandwidth: 20MB/s
steps:
  - id: start-svc
    run: ${
    JSON.stringify(`exec ${Deno.execPath()} ${serviceArgs(port).map((a) => `'${a}'`).join(" ")}`)
  }
    background: true
    ready: { http: "http://127.0.0.1:${port}/", timeout: 30s }
    milestone: service
  - id: fetch-data
    fetch: { from: "${backup}/data?size=100000000", to: ./data }
${
    sl
      ? `service_level:
  - name: svc
    after: start-svc
    http: http://127.0.0.1:${port}/
    every: 100ms
    normal: 1s
`
      : ""
  }`;
}

/** A server of generated bytes on 127.0.0.1. */
function backupServer() {
  const chunk = new Uint8Array(256 * 1024).fill(7);
  const s = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const size = Number(new URL(req.url).searchParams.get("size"));
    let left = size;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (left <= 0) return c.close();
        const part = chunk.subarray(0, Math.min(left, chunk.length));
        left -= part.length;
        c.enqueue(part);
      },
    });
    return new Response(body, { headers: { "content-length": String(size) } });
  });
  return { url: `http://127.0.0.1:${s.addr.port}`, close: () => s.shutdown() };
}

/** One drill's report, or the reason it was refused. */
async function drill(text: string): Promise<{ btn_s: number } | { refused: string }> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "rb.yaml"), text);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "drill", "rb.yaml", "--store", join(dir, "s.db"), "--json"],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout).trim();
    if (out.code === 2) return { refused: new TextDecoder().decode(out.stderr).trim() };
    if (!stdout) throw new Error(new TextDecoder().decode(out.stderr));
    return JSON.parse(stdout.split("\n").pop()!);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function btn(rounds: number): Promise<boolean> {
  const backup = backupServer();
  try {
    const ratios: number[] = [];
    for (let k = 0; k < rounds; k++) {
      const without = await drill(runbook(backup.url, freePort(), false));
      const withSl = await drill(runbook(backup.url, freePort(), true));
      if ("refused" in withSl && /service_level/.test(withSl.refused)) {
        console.log(`btn: skipped, the engine does not take service_level yet:\n${withSl.refused}`);
        return true;
      }
      if ("refused" in without) throw new Error(without.refused);
      if ("refused" in withSl) throw new Error(withSl.refused);
      ratios.push(withSl.btn_s / without.btn_s);
      console.log(
        `round ${k + 1}: BTN without probes ${without.btn_s}s, with a probe every 100 ms ` +
          `${withSl.btn_s}s`,
      );
    }
    const r = median(ratios);
    console.log(`median BTN with / without probes: ${r.toFixed(4)} (target <= 1.02)`);
    return r <= 1.02;
  } finally {
    await backup.close();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string", default: "10" },
      rounds: { type: "string", default: "3" },
      only: { type: "string" },
    },
  });
  if (values.only !== "btn") await cpu(Number(values.seconds));
  const ok = values.only === "cpu" ? true : await btn(Number(values.rounds));
  Deno.exit(ok ? 0 : 1);
}
