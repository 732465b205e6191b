/**
 * The floor under `ninja_dag.ts`: how fast thaw's native spawner alone starts `sh -c true` and
 * sees it exit (`posix_spawn` through FFI, a new session, `SIGCHLD` and `waitpid`; no engine, no
 * store, no cgroup), one at a time and two at a time, against `ninja -j1` and `ninja -j2` running
 * the same number of `true` edges with no dependencies. Prints ms per command, medians of 5.
 *
 * ```sh
 * deno run -A tests/bench/spawn_floor.ts [--count 1000]
 * ```
 *
 * Needs `ninja` (Debian: ninja-build).
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { nativeSpawner } from "../../steps/process/spawn_native.ts";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** ms per command for `count` commands through the native spawner, `jobs` at a time. */
async function spawner(count: number, jobs: number): Promise<number> {
  const native = nativeSpawner();
  if (!native) throw new Error("no native spawner here (Linux, glibc, --allow-ffi)");
  const env = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
  let next = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (next < count) {
      next++;
      await native.spawn(["sh", "-c", "true"], { cwd: "/", env }).status;
    }
  };
  await Promise.all(Array.from({ length: jobs }, lane));
  return (performance.now() - t0) / count;
}

/** ms per edge for `count` independent `true` edges run by `ninja -jJOBS`. */
async function ninja(count: number, jobs: number): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-spawn-floor-" });
  try {
    const lines = ["rule t", "  command = true"];
    for (let i = 0; i < count; i++) lines.push(`build s${i}: t`);
    await Deno.writeTextFile(join(dir, "build.ninja"), lines.join("\n") + "\n");
    const t0 = performance.now();
    const out = await new Deno.Command("ninja", { args: [`-j${jobs}`, "-C", dir], stdout: "null" })
      .output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    return (performance.now() - t0) / count;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { count: { type: "string", default: "1000" } },
  });
  const count = Number(values.count);
  await spawner(100, 2); // warm-up
  for (const jobs of [1, 2]) {
    const s: number[] = [], n: number[] = [];
    for (let r = 0; r < 5; r++) {
      s.push(await spawner(count, jobs));
      n.push(await ninja(count, jobs));
    }
    console.log(
      `${jobs} at a time: thaw's spawner ${median(s).toFixed(3)} ms, ` +
        `ninja -j${jobs} ${median(n).toFixed(3)} ms a command`,
    );
  }
  console.log(`load average: ${Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3)}`);
}
