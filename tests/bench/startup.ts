/**
 * The start-up of a few `thaw` commands, whole processes (`deno run -A engine/main.ts …`): what a
 * person waits for before anything happens. Prints the median wall time of each command over
 * `--rounds` runs and the load average before and after; with `--against DIR`, the
 * `engine/main.ts` of another checkout too (a `git worktree` of an older commit), the runs of both
 * interleaved so that both see the same load.
 *
 * ```sh
 * deno run -A tests/bench/startup.ts [--rounds 15] [--against /tmp/old]
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fromFileUrl } from "../paths.ts";

const ROOT = fromFileUrl(new URL("../..", import.meta.url));

/**
 * The commands timed (arguments after `engine/main.ts`; `STORE` is an SQLite file in a temporary
 * directory, made by the first `run`; `NONE` a store that does not exist; `ONE` a runbook there of
 * one step running `true`).
 */
const COMMANDS: string[][] = [
  ["help"],
  ["run", "ONE", "--store", "STORE"],
  ["drill", "--simulate", "runbooks/vod.yaml", "--store", "STORE"],
  ["drill", "--simulate", "runbooks/vod.yaml", "--store", "NONE"],
  ["plan", "runbooks/vod.yaml", "--store", "STORE"],
  ["status", "--store", "STORE"],
];

async function once(root: string, args: string[], dir: string): Promise<number> {
  const names: Record<string, string> = {
    STORE: join(dir, "state.db"),
    ONE: join(dir, "one.yaml"),
  };
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(root, "engine/main.ts"),
      ...args.map((a) => names[a] ?? a),
    ],
    cwd: root,
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t0;
  if (!out.success) {
    throw new Error(
      `thaw ${args.join(" ")} exited ${out.code}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const load = () => Deno.loadavg().map((x) => x.toFixed(2)).join(" ");

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { rounds: { type: "string", default: "15" }, against: { type: "string" } },
  });
  const roots: [string, string][] = [["this checkout", ROOT]];
  if (values.against) roots.unshift([values.against, values.against]);
  const dir = await Deno.makeTempDir({ prefix: "thaw-startup-" });
  try {
    await Deno.writeTextFile(
      join(dir, "one.yaml"),
      'runbook: 1\nname: one\nsteps:\n  - { id: s0, run: "true", shell: sh }\n',
    );
    const before = load();
    const times = roots.map(() => COMMANDS.map(() => [] as number[]));
    for (const [, root] of roots) for (const c of COMMANDS) await once(root, c, dir); // warm-up
    for (let r = 0; r < Number(values.rounds); r++) {
      for (const [k, c] of COMMANDS.entries()) {
        for (const [i, [, root]] of roots.entries()) times[i]![k]!.push(await once(root, c, dir));
      }
    }
    console.log(`start-up, median wall time of ${values.rounds} runs (load before ${before}):`);
    for (const [k, c] of COMMANDS.entries()) {
      const cells = roots.map(([name], i) => `${name} ${median(times[i]![k]!).toFixed(0)} ms`);
      console.log(
        `  thaw ${
          c.join(" ").replace("STORE", "S.db").replace("NONE", "none.db").replace("ONE", "one.yaml")
        }: ${cells.join(", ")}`,
      );
    }
    console.log(`load after: ${load()}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
