/**
 * Where the live engine's time goes on the ninja DAG (`ninja_dag.ts`): runs `thaw run` on it once
 * under `--cpu-prof` and prints the engine thread's self time by function and by file; with
 * `--strace`, runs it again under `strace -c -f` and prints the system calls of the engine and its
 * steps (needs strace).
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
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
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
    const out = await new Deno.Command(Deno.execPath(), {
      args: [...args, "--store", "s.db"],
      cwd: dir,
      stdout: "null",
    }).output();
    console.log(`thaw run: ${(performance.now() - t0).toFixed(0)} ms, exit ${out.code}`);
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
