/**
 * The PostgreSQL store against the SQLite store, on a throwaway cluster (`tests/pg_cluster.ts`):
 *
 * 1. The 1,000-step DAG of `ninja_dag.ts` (`run: "true"`, parallelism 2), run by
 *    `thaw run dag.yaml --store s.db` and by `thaw run dag.yaml --store postgres://…` (a fresh
 *    database each round): median wall times (the whole command, start-up included) and their
 *    ratio (target: PostgreSQL at most 1.5x SQLite).
 * 2. 64 pollers (`wrk -c64`) of `GET /runs/ID` from `thaw serve` while a run goes on (the same
 *    DAG with `sleep 0.03` steps, about 20 s), over each store: requests per second, p99, and
 *    the run's wall time against the same run with nobody polling.
 *
 * ```sh
 * deno run -A tests/bench/store_pg.ts [--steps 1000] [--rounds 3] [--duration 10] [--threads 2]
 * ```
 *
 * Needs PostgreSQL (Debian's package) and wrk. Listens on 127.0.0.1 only. Exits 1 if the DAG
 * target is missed.
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { redactUrl } from "../../engine/store/mod.ts";
import { childEnv, fromFileUrl } from "../paths.ts";
import { noPostgres, type PgCluster, startCluster } from "../pg_cluster.ts";
import { dag, runbook } from "./ninja_dag.ts";

const MAIN = fromFileUrl(new URL("../../engine/main.ts", import.meta.url));
const MAX_RATIO = 1.5;
const LOCAL_URL = /http:\/\/127\.0\.0\.1:\d+/;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");

/** `thaw ARGS` in `cwd` to its end; its wall time in ms. */
async function thaw(args: string[], cwd: string): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    cwd,
    env: childEnv(),
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t0;
  if (!out.success) {
    const shown = args.map(redactUrl).join(" ");
    throw new Error(`thaw ${shown}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return ms;
}

/** Part 1: [SQLite ms, PostgreSQL ms] of one round, each on a fresh store. */
async function dagRound(pg: PgCluster, text: string): Promise<[number, number]> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-store-pg-" });
  try {
    await Deno.writeTextFile(join(dir, "dag.yaml"), text);
    const s = await thaw(["run", "dag.yaml", "--store", "s.db"], dir);
    const url = await pg.createDatabase();
    const p = await thaw(["run", "dag.yaml", "--store", url], dir);
    return [s, p];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A child whose output is drained; `url` is the first 127.0.0.1 URL on its stdout. */
function start(cmd: string, args: string[], cwd: string) {
  const child = new Deno.Command(cmd, {
    args,
    cwd,
    env: childEnv(),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let found = (_: string) => {};
  const url = new Promise<string>((res) => found = res);
  const drain = async (stream: ReadableStream<Uint8Array>, watch: boolean) => {
    let text = "";
    for await (const part of stream.pipeThrough(new TextDecoderStream())) {
      text += part;
      const m = watch ? LOCAL_URL.exec(text) : null;
      if (m) found(m[0]);
    }
    return text;
  };
  return { child, url, out: drain(child.stdout, true), err: drain(child.stderr, false) };
}

type Poll = { rps: number; p99Ms: number; runMs: number; stillRunning: boolean; notes: string };

async function wrk(flags: string[], url: string) {
  const p = start("wrk", [...flags, url], "/");
  const [status, out] = await Promise.all([p.child.status, p.out]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const m = /\n\s*99%\s+([\d.]+)(us|ms|s|m)\s/.exec(out);
  if (!status.success || !m || !(rps > 0)) throw new Error(`wrk ${url}:\n${out}`);
  const unit = { us: 1e-3, ms: 1, s: 1e3, m: 6e4 }[m[2] as "us" | "ms" | "s" | "m"];
  const notes = [/Non-2xx or 3xx responses: \d+/, /Socket errors: [^\n]+/]
    .map((r) => r.exec(out)?.[0]).filter((s) => !!s).join("; ");
  return { rps, p99Ms: Number(m[1]) * unit, notes };
}

/** Part 2: one run of the slow DAG over `store`, polled by 64 clients unless `alone`. */
async function pollRun(store: string, dir: string, flags: string[], alone: boolean) {
  const serve = alone ? undefined : start(
    Deno.execPath(),
    ["run", "-A", MAIN, "serve", "--store", store, "--listen", "127.0.0.1:0"],
    dir,
  );
  try {
    const api = await serve?.url;
    const t0 = performance.now();
    const run = start(Deno.execPath(), [
      "run",
      "-A",
      MAIN,
      "run",
      "slow.yaml",
      "--store",
      store,
      "--json",
    ], dir);
    let poll: Omit<Poll, "runMs"> | undefined;
    if (api) {
      let id: string | undefined;
      for (const until = Date.now() + 30_000; !id && Date.now() < until;) {
        const runs = await (await fetch(`${api}/runs`)).json() as { run: string; state: string }[];
        id = runs.find((r) => r.state === "running")?.run;
        if (!id) await new Promise((r) => setTimeout(r, 50));
      }
      if (!id) throw new Error(`no run shows running at ${api}/runs`);
      const w = await wrk(flags, `${api}/runs/${id}`);
      const last = await fetch(`${api}/runs/${id}`).then((r) => r.text());
      poll = { ...w, stillRunning: last.includes('"state":"running"') };
    }
    const [status, , err] = await Promise.all([run.child.status, run.out, run.err]);
    if (!status.success) throw new Error(`thaw run over ${redactUrl(store)}: ${err}`);
    return { runMs: performance.now() - t0, ...poll };
  } finally {
    if (serve) {
      serve.child.kill("SIGTERM");
      await serve.child.status;
    }
  }
}

async function main(): Promise<boolean> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      steps: { type: "string", default: "1000" },
      rounds: { type: "string", default: "3" },
      duration: { type: "string", default: "10" },
      threads: { type: "string", default: "2" },
    },
  });
  if (noPostgres) throw new Error(noPostgres);
  const rounds = Number(values.rounds);
  const d = dag(Number(values.steps));
  const pg = await startCluster();
  const dir = await Deno.makeTempDir({ prefix: "thaw-store-pg-poll-" });
  try {
    const text = runbook(d);
    await dagRound(pg, text); // warm-up: deno's module cache, the page cache, the cluster
    const sq: number[] = [], pq: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const [s, p] = await dagRound(pg, text);
      sq.push(s);
      pq.push(p);
    }
    const s = median(sq), p = median(pq);
    console.log(
      `${values.steps}-step DAG of \`true\` through sh, parallelism 2, median of ${rounds}`,
    );
    console.log(`  thaw run --store s.db           ${s.toFixed(0)} ms  (${list(sq)})`);
    console.log(`  thaw run --store postgres://…   ${p.toFixed(0)} ms  (${list(pq)})`);
    console.log(`  PostgreSQL / SQLite: ${(p / s).toFixed(2)} (target <= ${MAX_RATIO})`);

    await Deno.writeTextFile(
      join(dir, "slow.yaml"),
      text.replaceAll('run: "true"', 'run: "sleep 0.03"'),
    );
    const flags = [`-t${values.threads}`, "-c64", `-d${values.duration}s`, "--latency"];
    console.log(
      `\n64 pollers of GET /runs/ID (wrk ${
        flags.join(" ")
      }) during a run of the DAG with sleep 0.03 steps`,
    );
    for (const kind of ["SQLite", "PostgreSQL"]) {
      const store = () =>
        kind === "SQLite" ? join(dir, `${crypto.randomUUID()}.db`) : pg.createDatabase();
      const alone = await pollRun(await store(), dir, flags, true);
      const polled = await pollRun(await store(), dir, flags, false);
      console.log(
        `  ${kind.padEnd(10)} ${polled.rps!.toFixed(0)} rps, p99 ${polled.p99Ms!.toFixed(2)} ms; ` +
          `run ${(polled.runMs / 1000).toFixed(1)} s polled, ${
            (alone.runMs / 1000).toFixed(1)
          } s alone` +
          `${polled.stillRunning ? "" : " (RUN HAD ENDED before wrk did)"}` +
          `${polled.notes ? ` [${polled.notes}]` : ""}`,
      );
    }
    console.log(`\nmachine: ${navigator.hardwareConcurrency} CPUs; Deno ${Deno.version.deno}`);
    return p / s <= MAX_RATIO;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await pg.stop();
  }
}

if (import.meta.main) Deno.exit(await main() ? 0 : 1);
