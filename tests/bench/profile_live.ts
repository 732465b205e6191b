/**
 * Where the live engine's time goes on the ninja DAG (`ninja_dag.ts`): runs `thaw run` on it once
 * under `--cpu-prof` and prints the engine thread's self time by function and by file, then the
 * inclusive time (a sample counts once for each function or file on its stack) of the functions
 * and files on the steps' path, and the engine thread's CPU time against the wall time; with
 * `--strace`, runs it again under `strace -c -f` and prints the system calls of the engine and its
 * steps (needs strace).
 *
 * The profiler samples the thread, not the CPU: time the thread spends blocked (in `posix_spawn`
 * while the new process has not yet exec'd, waiting for a CPU) counts too. The CPU line tells the
 * two apart.
 *
 * ```sh
 * deno run -A tests/bench/profile_live.ts [--steps 1000] [--top 25] [--strace]
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { dag, runbook } from "./ninja_dag.ts";
import { fromFileUrl } from "../paths.ts";

const MAIN = fromFileUrl(new URL("../../engine/main.ts", import.meta.url));

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * Inclusive time (ms) by key, largest first: each sample counts once for every distinct key on
 * its stack.
 */
function inclusiveTime(p: Profile, key: (n: Node) => string): [string, number][] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const out = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const k = key(byId.get(at)!);
      if (seen.has(k)) continue;
      seen.add(k);
      out.set(k, (out.get(k) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
    }
  });
  return [...out].sort((a, b) => b[1] - a[1]);
}

/** Self time (ms) by key, largest first. */
function selfTime(p: Profile, key: (n: Node) => string): [string, number][] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const out = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const k = key(byId.get(id)!);
    out.set(k, (out.get(k) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  });
  return [...out].sort((a, b) => b[1] - a[1]);
}

/** CPU time (ms) of `child`'s main thread, read from /proc until it exits (to within 20 ms). */
async function threadCpu(child: Deno.ChildProcess): Promise<number> {
  let ms = 0, done = false;
  child.status.then(() => done = true);
  while (!done) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${child.pid}/task/${child.pid}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ms = (Number(f[11]) + Number(f[12])) * 1000 / 100; // utime + stime, in USER_HZ (100)
    } catch { /* exiting */ }
    await new Promise((r) => setTimeout(r, 20));
  }
  return ms;
}

/** The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them. */
export function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}

const where = (n: Node) => n.callFrame.url.split("/").slice(-2).join("/") || "(native)";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      steps: { type: "string", default: "1000" },
      top: { type: "string", default: "25" },
      strace: { type: "boolean", default: false },
    },
  });
  const top = Number(values.top);
  const dir = await Deno.makeTempDir({ prefix: "thaw-profile-" });
  try {
    await Deno.writeTextFile(join(dir, "dag.yaml"), runbook(dag(Number(values.steps))));
    const args = ["run", "-A", "--cpu-prof", "--cpu-prof-dir=prof", MAIN, "run", "dag.yaml"];
    const t0 = performance.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: [...args, "--store", "s.db"],
      cwd: dir,
      stdout: "null",
    }).spawn();
    const cpu = await threadCpu(child);
    const out = await child.status;
    const wall = performance.now() - t0;
    console.log(`thaw run: ${wall.toFixed(0)} ms, exit ${out.code}, load ${loadAverage()}`);
    console.log(
      `engine thread CPU ${cpu.toFixed(0)} ms (the rest of the wall time it waited: ` +
        `for the steps, for a CPU, in posix_spawn)`,
    );
    const [file] = [...Deno.readDirSync(join(dir, "prof"))];
    const p = JSON.parse(await Deno.readTextFile(join(dir, "prof", file!.name))) as Profile;
    const fn = (n: Node) =>
      `${n.callFrame.functionName || "(anonymous)"} ${where(n)}:${n.callFrame.lineNumber + 1}`;
    console.log(`\nself time by function (ms), top ${top}:`);
    for (const [k, ms] of selfTime(p, fn).slice(0, top)) {
      console.log(`${ms.toFixed(1).padStart(9)}  ${k}`);
    }
    console.log(`\nself time by file (ms), top ${top}:`);
    for (const [k, ms] of selfTime(p, where).slice(0, top)) {
      console.log(`${ms.toFixed(1).padStart(9)}  ${k}`);
    }
    const ours = (k: string) =>
      /(engine|steps)\//.test(k) ||
      /^(live|store|process|run|schedule)\//.test(k.split(" ").pop()!);
    console.log(`\ninclusive time by function (ms), the engine's and steps' own, top ${top}:`);
    for (const [k, ms] of inclusiveTime(p, fn).filter(([k]) => ours(k)).slice(0, top)) {
      console.log(`${ms.toFixed(1).padStart(9)}  ${k}`);
    }
    console.log(`\ninclusive time by file (ms), top ${top}:`);
    for (const [k, ms] of inclusiveTime(p, where).slice(0, top)) {
      console.log(`${ms.toFixed(1).padStart(9)}  ${k}`);
    }
    if (values.strace) {
      await Deno.remove(join(dir, "s.db")).catch(() => {});
      const s = await new Deno.Command("strace", {
        args: [
          "-f",
          "-c",
          "-o",
          "strace.txt",
          Deno.execPath(),
          "run",
          "-A",
          MAIN,
          "run",
          "dag.yaml",
          "--store",
          "s2.db",
        ],
        cwd: dir,
        stdout: "null",
      }).output();
      if (s.success) {
        console.log("\nsystem calls (strace -c -f, the engine and its steps):");
        console.log(
          (await Deno.readTextFile(join(dir, "strace.txt"))).split("\n").slice(0, 25).join("\n"),
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
