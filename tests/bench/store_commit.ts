/**
 * The CPU the store's hot writes cost the engine thread, per write, on a real SQLite file and on
 * PostgreSQL (a throwaway cluster, `tests/pg_cluster.ts`; skipped with the reason where it is not
 * installed). The writes have the shapes the live engine makes (`engine/live/bookkeeping.ts`,
 * `loop.ts`):
 *
 * - `turn`: the loop's one commit per turn: `recordSteps` with one step `done` and the next
 *   `running`, one process recorded and one forgotten;
 * - `turn+lease`: the same with the run's lease held (every write fenced);
 * - `change`: `recordSteps` with one change and no process;
 * - `progress`: `saveProgress` of one fetch; `heartbeat`: `updateRun` with the heartbeat and a
 *   report (about once a second each);
 * - `poll`: `takeCommands` with nothing waiting (every 50 ms at most).
 *
 * For each: the median over `--rounds` of the process's CPU per write (`process.cpuUsage()`: the
 * engine thread and the threads it keeps busy) and of the wall time per write.
 *
 * ```sh
 * deno run -A tests/bench/store_commit.ts [--n 2000] [--rounds 3] [--dialect sqlite|postgres|both]
 *   [--module engine/store/mod.ts]
 * ```
 *
 * `--module` names another copy of the store's `mod.ts` (say, an older one in a worktree), to
 * compare; a copy outside this project needs `deno run -A --config deno.json …` (its imports).
 * The run's row is as large as the engine makes it (the runbook's text, the step list), since
 * a write that copies the row costs in proportion.
 *
 * @module
 */
import { join, resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import type { LeaseStore, StepChange } from "../../engine/store/mod.ts";
import { noPostgres, startCluster } from "../pg_cluster.ts";
import { loadAverage } from "./profile_live.ts";

type Open = (pathOrUrl: string) => Promise<LeaseStore & { close(): Promise<void> }>;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const REPORT = JSON.stringify({ outcome: null, steps: Array(40).fill({ id: "s", state: "done" }) });

/** One shape of write: `op(i)` makes the i-th write of it. */
interface Shape {
  readonly name: string;
  readonly lease?: boolean;
  readonly op: (store: LeaseStore, run: string, i: number) => Promise<unknown>;
}

const SHAPES: readonly Shape[] = [
  {
    name: "turn",
    op: (s, run, i) => s.recordSteps(run, turnChanges(i), turnProcs(i)),
  },
  {
    name: "turn+lease",
    lease: true,
    op: (s, run, i) => s.recordSteps(run, turnChanges(i), turnProcs(i)),
  },
  {
    name: "change",
    op: (s, run, i) => s.recordSteps(run, [{ step: `s${i}`, state: "running", at: i / 100 }]),
  },
  {
    name: "progress",
    op: (s, run, i) =>
      s.saveProgress(run, [{
        step: "fetch",
        bytes: i * 4096,
        total: 1 << 30,
        prefetched: 0,
        demanded: false,
        source: 0,
        at: Date.now(),
      }]),
  },
  {
    name: "heartbeat",
    op: (s, run) => s.updateRun(run, { heartbeatAt: Date.now(), report: REPORT }),
  },
  { name: "poll", op: (s, run) => s.takeCommands(run) },
];

function turnChanges(i: number): StepChange[] {
  return [
    { step: `s${i}`, state: "done", at: i / 100, detail: "" },
    { step: `s${i + 2}`, state: "running", at: i / 100 },
  ];
}

function turnProcs(i: number) {
  return { add: [{ step: `s${i + 1}`, pid: 1000 + i, pgid: 1000 + i }], remove: [`s${i}`] };
}

/** [CPU µs per write, wall µs per write] of `n` writes of `shape` on a new run. */
async function measure(
  store: LeaseStore,
  shape: Shape,
  n: number,
  round: number,
): Promise<[number, number]> {
  const run = `${shape.name}-${round}-${crypto.randomUUID().slice(0, 8)}`;
  await store.createRun({
    id: run,
    runbook: "bench",
    file: "/bench.yaml",
    fileSha256: "00",
    mode: "live",
    drill: false,
    strategy: "aggressive",
    vars: {},
    // As large as the runbook of as many steps, as the engine stores it.
    runbookText: Array.from({ length: n + 203 }, (_, i) => `  - { id: s${i}, run: "true" }\n`)
      .join(""),
    steps: Array.from({ length: n + 203 }, (_, i) => `s${i}`),
    startedAt: Date.now(),
    pid: Deno.pid,
    host: "bench",
  });
  if (shape.lease) await store.acquireLease(run, "bench", 60_000);
  // Warm up (compiles, prepares, JIT), then measure.
  for (let i = 0; i < Math.min(200, n); i++) await shape.op(store, run, i);
  const c0 = process.cpuUsage(), t0 = performance.now();
  for (let i = 200; i < n + 200; i++) await shape.op(store, run, i);
  const wall = (performance.now() - t0) * 1000;
  const c = process.cpuUsage(c0);
  return [(c.user + c.system) / n, wall / n];
}

async function bench(
  label: string,
  open: Open,
  where: () => Promise<string>,
  n: number,
  rounds: number,
) {
  console.log(`\n${label} (${n} writes per shape, median of ${rounds} rounds)`);
  console.log(`${"shape".padEnd(12)}${"CPU µs/write".padStart(14)}${"wall µs/write".padStart(15)}`);
  const results = new Map<string, [number[], number[]]>(SHAPES.map((s) => [s.name, [[], []]]));
  for (let r = 0; r < rounds; r++) {
    const store = await open(await where());
    try {
      for (const shape of SHAPES) {
        const [cpu, wall] = await measure(store, shape, n, r);
        results.get(shape.name)![0].push(cpu);
        results.get(shape.name)![1].push(wall);
      }
    } finally {
      await store.close();
    }
  }
  for (const [name, [cpu, wall]] of results) {
    console.log(
      `${name.padEnd(12)}${median(cpu).toFixed(0).padStart(14)}${
        median(wall).toFixed(0).padStart(15)
      }`,
    );
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      n: { type: "string", default: "2000" },
      rounds: { type: "string", default: "3" },
      dialect: { type: "string", default: "both" },
      module: { type: "string" },
    },
  });
  const n = Number(values.n), rounds = Number(values.rounds);
  const mod = values.module === undefined
    ? new URL("../../engine/store/mod.ts", import.meta.url).href
    : pathToFileURL(resolve(values.module)).href;
  const { openStore } = await import(mod) as { openStore: Open };
  console.log(`store module ${mod}; load ${loadAverage()}`);
  const dir = await Deno.makeTempDir({ prefix: "thaw-store-commit-" });
  try {
    if (values.dialect !== "postgres") {
      let k = 0;
      await bench(
        "SQLite file",
        openStore,
        () => Promise.resolve(join(dir, `s${k++}.db`)),
        n,
        rounds,
      );
    }
    if (values.dialect !== "sqlite") {
      if (noPostgres) console.log(`\nPostgreSQL skipped: ${noPostgres}`);
      else {
        const pg = await startCluster();
        try {
          await bench("PostgreSQL", openStore, () => pg.createDatabase(), n, rounds);
        } finally {
          await pg.stop();
        }
      }
    }
    console.log(`\nload ${loadAverage()}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
