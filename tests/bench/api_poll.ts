/**
 * The status API under polling: while a live drill goes on, 64 concurrent pollers of
 * `GET /runs/ID` (wrk) should get at least half the requests per second of a bare Hono hello-world
 * ({@link ./hello_server.ts}) on the same machine in the same session, with the p99 latency
 * stated, and the run's BTN should be no more than 5% slower than without pollers.
 *
 * ```sh
 * deno run -A tests/bench/api_poll.ts [--rounds 3] [--duration 10] [--threads 1|2] [--no-etag]
 * ```
 *
 * The drill lasts about 21 s (an 800 MiB local file over a 40 MB/s link; a small fetch that a
 * milestone step freezes on; a `sleep 1`). Interleaved each round: hello (wrk against the
 * hello-world), alone (the drill, nobody polling), serve (`thaw serve` in its own process over the
 * drill's store), listen (`drill --listen`: the API in the engine's process), etag (serve, each
 * poller sending `If-None-Match` with the last ETag it got, via a wrk Lua script, which costs wrk
 * time itself: reported apart). wrk starts once the run shows `running`, lasts `--duration` s, and
 * the run is checked to be still running when it ends. Every wrk has the same flags: `-c64
 * --latency` and the thread count that gave the hello-world its best rate in a calibration first.
 * Medians are reported. Needs wrk. Exits 1 if a target is missed. Listens on 127.0.0.1 only.
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { childEnv, fromFileUrl } from "../paths.ts";

const ROOT = fromFileUrl(new URL("../../", import.meta.url));
const MAIN = join(ROOT, "engine/main.ts");
const HELLO = join(ROOT, "tests/bench/hello_server.ts");
const MiB = 1 << 20;
const LOCAL_URL = /http:\/\/127\.0\.0\.1:\d+/;

const RUNBOOK = `runbook: 1
name: api-poll
bandwidth: 40MB/s
parallelism: 4
steps:
  - { id: warm, run: sleep 1, estimate: 1s }
  - id: fetch-small
    needs: [warm]
    fetch: { from: ./backup/small.bin, to: ./restore/small.bin, size: 8MiB }
  - id: fetch-data
    fetch: { from: ./backup/data.bin, to: ./restore/data.bin, size: 800MiB }
  - { id: up, needs: [warm, fetch-small], run: "true", estimate: 0.1s, milestone: service }
  - { id: verify, needs: [up, fetch-data], run: test -s restore/data.bin, estimate: 0.1s }
`;

/** A well-behaved poller: sends the last ETag it got; counts the 304s. */
const ETAG_LUA = `local threads = {}
function setup(t) table.insert(threads, t) end
function init() n304 = 0; n = 0 end
function request() return wrk.format(nil, nil, etag and { ["If-None-Match"] = etag } or nil) end
function response(status, headers)
  n = n + 1; if status == 304 then n304 = n304 + 1 end
  etag = headers["ETag"] or headers["etag"] or etag
end
function done()
  local a, b = 0, 0
  for _, t in ipairs(threads) do a = a + t:get("n304"); b = b + t:get("n") end
  io.write(string.format("not modified: %d of %d\\n", a, b))
end
`;

/** Every child still running, killed on the way out whatever happens. */
const live = new Set<Deno.ChildProcess>();
let tempDir: string | undefined;

function kill(child: Deno.ChildProcess) {
  try {
    child.kill("SIGTERM");
  } catch { /* already gone */ }
}

/**
 * Starts a child and drains its output (a full pipe would stall it); `url` is the first
 * 127.0.0.1 URL printed on the watched stream.
 */
function start(cmd: string, args: string[], cwd: string, urlOn?: "stdout" | "stderr") {
  const io = { stdin: "null", stdout: "piped", stderr: "piped" } as const;
  const child = new Deno.Command(cmd, { args, cwd, env: childEnv(), ...io }).spawn();
  live.add(child);
  child.status.then(() => live.delete(child));
  let found = (_: string) => {}, lost = (_: Error) => {};
  const url = new Promise<string>((res, rej) => [found, lost] = [res, rej]);
  url.catch(() => {});
  const drain = async (stream: ReadableStream<Uint8Array>, watch: boolean) => {
    let text = "";
    for await (const part of stream.pipeThrough(new TextDecoderStream())) {
      text += part;
      const m = watch ? LOCAL_URL.exec(text) : null;
      if (m) found(m[0]);
    }
    if (watch) lost(new Error(`${cmd} ${args.join(" ")} printed no URL:\n${text}`));
    return text;
  };
  const out = drain(child.stdout, urlOn === "stdout"),
    err = drain(child.stderr, urlOn === "stderr");
  return { child, url, out, err };
}

async function stop(p: ReturnType<typeof start>) {
  kill(p.child);
  await p.child.status;
}

/** What wrk measured: requests per second, the 99th percentile latency, anything amiss. */
type Wrk = { rps: number; p99Ms: number; notes: string[] };

async function wrk(flags: string[], url: string, extra: string[] = []): Promise<Wrk> {
  const p = start("wrk", [...flags, ...extra, url], "/");
  const [status, out, err] = await Promise.all([p.child.status, p.out, p.err]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const m = /\n\s*99%\s+([\d.]+)(us|ms|s|m)\s/.exec(out);
  if (!status.success || !m || !(rps > 0)) throw new Error(`wrk ${url}:\n${out}${err}`);
  const unit = { us: 1e-3, ms: 1, s: 1e3, m: 6e4 }[m[2] as "us" | "ms" | "s" | "m"];
  const notes = [/Non-2xx or 3xx responses: \d+/, /Socket errors: [^\n]+/, /not modified: [^\n]+/]
    .map((r) => r.exec(out)?.[0]).filter((s): s is string => !!s);
  return { rps, p99Ms: Number(m[1]) * unit, notes };
}

/** The hello-world; with `bytes`, its `/json` route answering that many bytes. */
async function hello(flags: string[], bytes?: number): Promise<Wrk> {
  const h = start(Deno.execPath(), ["run", "-A", HELLO, String(bytes ?? 1200)], ROOT, "stdout");
  try {
    return await wrk(flags, (await h.url) + (bytes ? "/json" : "/"));
  } finally {
    await stop(h);
  }
}

/** The id of the run `api` shows running (the store is fresh: the only one). */
async function runningRun(api: string): Promise<string> {
  for (const until = Date.now() + 30_000; Date.now() < until;) {
    const runs = await (await fetch(`${api}/runs`)).json() as { run: string; state: string }[];
    const r = runs.find((r) => r.state === "running");
    if (r) return r.run;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`no run shows running at ${api}/runs after 30 s`);
}

type Kind = "alone" | "serve" | "listen" | "etag";
type Result = Partial<Wrk> & { btn: number; stillRunning?: boolean; bytes?: number };

/**
 * One drill. Each has a fresh store and an empty restore/: with one store, the history of earlier
 * rounds would change the plan's estimates (so the prefetch order) from round to round; fresh,
 * every drill plans and runs alike. `thaw serve` starts first, on the drill's (new) store.
 */
async function scenario(dir: string, kind: Kind, tag: string, flags: string[]): Promise<Result> {
  await Deno.remove(join(dir, "restore"), { recursive: true }).catch(() => {});
  const thaw = (...args: string[]) => ["run", "-A", MAIN, ...args, "--store", join(dir, tag)];
  const local = ["--listen", "127.0.0.1:0"];
  const serve = kind === "serve" || kind === "etag"
    ? start(Deno.execPath(), thaw("serve", ...local), dir, "stdout")
    : undefined;
  try {
    await serve?.url;
    const listen = kind === "listen";
    const args = thaw("drill", "rb.yaml", "--json", ...listen ? local : []);
    const d = start(Deno.execPath(), args, dir, listen ? "stderr" : undefined);
    let poll: Wrk | undefined, stillRunning: boolean | undefined, bytes: number | undefined;
    if (kind !== "alone") {
      const api = await (serve ?? d).url;
      const target = `${api}/runs/${await runningRun(api)}`;
      poll = await wrk(flags, target, kind === "etag" ? ["-s", join(dir, "etag.lua")] : []);
      const last = await fetch(target).then((r) => r.text()).catch(() => "");
      stillRunning = last.includes('"state":"running"');
      bytes = new TextEncoder().encode(last).length;
    }
    const [status, out, err] = await Promise.all([d.child.status, d.out, d.err]);
    if (!status.success) throw new Error(`drill (${tag}) exited ${status.code}:\n${err}`);
    return { btn: JSON.parse(out.trim().split("\n").pop()!).btn_s, stillRunning, bytes, ...poll };
  } finally {
    if (serve) await stop(serve);
  }
}

async function setUp(dir: string) {
  const block = new Uint8Array(MiB);
  for (let k = 0; k < MiB; k += 65536) crypto.getRandomValues(block.subarray(k, k + 65536));
  await Deno.mkdir(join(dir, "backup"));
  using data = await Deno.open(join(dir, "backup/data.bin"), { write: true, create: true });
  for (let k = 0, at = 0; k < 800; k++, at = 0) {
    while (at < MiB) at += await data.write(block.subarray(at));
  }
  await Deno.writeFile(join(dir, "backup/small.bin"), new Uint8Array(8 * MiB).fill(7));
  await Deno.writeTextFile(join(dir, "rb.yaml"), RUNBOOK);
  await Deno.writeTextFile(join(dir, "etag.lua"), ETAG_LUA);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const signed = (pc: number) => `${pc >= 0 ? "+" : ""}${pc.toFixed(1)}%`;
const row = (cells: string[]) => cells.map((c, k) => c.padEnd([9, 9, 9, 11, 9][k] ?? 0)).join("");
/** The table's cells after the scenario: rps, x hello, p99, BTN, BTN vs alone. */
const cell = (v: number, i: number) =>
  Number.isNaN(v) ? "-" : i === 4 ? signed(v) : v.toFixed(i ? 2 : 0) + ["", "x", " ms", " s"][i];
const brief = (k: string, x: Result) =>
  k + (Number.isNaN(x.btn) ? "" : ` BTN ${x.btn.toFixed(2)} s`) +
  (x.rps ? ` ${x.rps.toFixed(0)} rps p99 ${x.p99Ms!.toFixed(2)} ms` : "") +
  (x.stillRunning === false ? " (RUN HAD ENDED when wrk did)" : "") +
  (x.notes?.length ? ` [${x.notes.join("; ")}]` : "");

/** The thread count that gives the hello-world its best rate (best of 2 x 5 s each). */
async function calibrate(): Promise<string> {
  const best = [0, 0], probe = (t: number) => hello([`-t${t}`, "-c64", "-d5s", "--latency"]);
  for (let k = 0; k < 4; k++) best[k % 2] = Math.max(best[k % 2]!, (await probe(1 + k % 2)).rps);
  const [t1, t2] = best.map((v) => v.toFixed(0)), t = best[1]! > best[0]! ? "2" : "1";
  console.log(`calibration, hello-world best of 2 x 5 s: -t1 ${t1}, -t2 ${t2} rps: -t${t}`);
  return t;
}

async function main(): Promise<boolean> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "3" },
      duration: { type: "string", default: "10" },
      threads: { type: "string" },
      "no-etag": { type: "boolean", default: false },
    },
  });
  const rounds = Number(values.rounds), t = values.threads ?? await calibrate();
  const flags = [`-t${t}`, "-c64", `-d${values.duration}s`, "--latency"];
  const kinds: Kind[] = ["alone", "serve", "listen", ...values["no-etag"] ? [] : ["etag" as const]];
  const res = new Map<string, Result[]>(["hello", ...kinds, "hello-json"].map((k) => [k, []]));
  const dir = tempDir = await Deno.makeTempDir({ prefix: "thaw-api-poll-" });
  try {
    await setUp(dir);
    for (let r = 1; r <= rounds; r++) {
      res.get("hello")!.push({ btn: NaN, ...await hello(flags) });
      for (const k of kinds) res.get(k)!.push(await scenario(dir, k, `${k}-${r}.db`, flags));
      // The reference: hello-world answering as many bytes as GET /runs/ID did.
      const bytes = res.get("serve")!.at(-1)!.bytes!;
      res.get("hello-json")!.push({ btn: NaN, bytes, ...await hello(flags, bytes) });
      console.log(`round ${r}: ${[...res].map(([k, xs]) => brief(k, xs.at(-1)!)).join("; ")}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }

  const med = (k: string, f: (x: Result) => number) => median(res.get(k)!.map(f));
  const helloRps = med("hello", (x) => x.rps!), alone = med("alone", (x) => x.btn);
  console.log(
    `\nmachine: ${navigator.hardwareConcurrency} CPUs (nproc); Deno ${Deno.version.deno}`,
  );
  console.log(`wrk flags (every scenario): ${flags.join(" ")}; medians of ${rounds} rounds`);
  console.log(row(["scenario", "rps", "x hello", "p99", "BTN", "BTN vs alone"]));
  const ok: boolean[] = [], verdicts: string[] = [];
  for (const k of res.keys()) {
    const rps = k === "alone" ? NaN : med(k, (x) => x.rps!) / helloRps;
    const btn = k.startsWith("hello") ? NaN : med(k, (x) => x.btn);
    const slow = k === "alone" ? NaN : (btn / alone - 1) * 100;
    const cells = [rps * helloRps, rps, med(k, (x) => x.p99Ms ?? NaN), btn, slow];
    console.log(row([k, ...cells.map(cell)]));
    if (Number.isNaN(rps + slow)) continue;
    if (k !== "etag") ok.push(rps >= 0.5, slow <= 5);
    verdicts.push(
      `${k}: rps ${rps.toFixed(2)}x hello (target >= 0.5x) ${rps >= 0.5 ? "MET" : "MISSED"}` +
        `; BTN ${signed(slow)} (target <= +5%) ${slow <= 5 ? "MET" : "MISSED"}` +
        (k === "etag" ? " (informational: a Lua-scripted wrk, slower itself)" : ""),
    );
  }
  verdicts.forEach((v) => console.log(v));
  const json = med("hello-json", (x) => x.rps!), size = med("hello-json", (x) => x.bytes!);
  console.log(
    `reference: the hello-world answering ${size} bytes of JSON (the size of GET /runs/ID) ` +
      `gets ${(json / helloRps).toFixed(2)}x its own rate; serve gets ` +
      `${(med("serve", (x) => x.rps!) / json).toFixed(2)}x of that, listen ` +
      `${(med("listen", (x) => x.rps!) / json).toFixed(2)}x`,
  );
  const ended = kinds.filter((k) => res.get(k)!.some((x) => x.stillRunning === false));
  if (ended.length) console.log(`note: the run had ended before wrk did in: ${ended.join(", ")}`);
  return ok.every(Boolean);
}

if (import.meta.main) {
  const killAll = () => live.forEach(kill);
  Deno.addSignalListener("SIGINT", () => {
    killAll();
    if (tempDir) Deno.removeSync(tempDir, { recursive: true });
    Deno.exit(130);
  });
  let passed = false;
  try {
    passed = await main();
  } finally {
    killAll();
    await Promise.all([...live].map((c) => c.status));
  }
  Deno.exit(passed ? 0 : 1);
}
