/**
 * What starting a step's process costs the engine: `sh -c true` started as a step's process group
 * (stderr piped, as run steps do), waited for, and its group then stopped (`killGroup`, as a run
 * step does after its command exits), N times in a row, with cgroups (the default where they work)
 * and with `THAW_CGROUPS=off`, each in its own process, interleaved over rounds. Prints the median
 * wall time and CPU time of the engine's thread per step of each, and the differences. The CPU
 * time is what the engine's one thread cannot spend on anything else; the wall time also holds
 * the wait in posix_spawn until the new process has exec'd, and `sh` itself.
 *
 * ```sh
 * deno run -A tests/bench/step_cgroup.ts [--steps 500] [--rounds 5]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "500" },
    rounds: { type: "string", default: "5" },
    child: { type: "boolean", default: false },
  },
});
const STEPS = Number(values.steps);

if (values.child) {
  const { spawnGroup } = await import("../../steps/process/process.ts");
  const { cgroupsAvailable } = await import("../../steps/process/cgroup.ts");
  const { killGroup } = await import("../../steps/process/process.ts");
  const env = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", THAW_RUN_ID: "R", THAW_STEP: "s" };
  const step = async () => {
    const g = spawnGroup("sh", "true", { cwd: "/", env, stderr: () => {} });
    await g.status;
    await killGroup(g.pgid, 1000);
    await g.drained;
    await g.closeOutput();
  };
  for (let i = 0; i < 20; i++) await step(); // warm
  const t = performance.now(), cpu = threadCpu();
  for (let i = 0; i < STEPS; i++) await step();
  console.log(JSON.stringify({
    ms: (performance.now() - t) / STEPS,
    cpu: (threadCpu() - cpu) / STEPS,
    cgroups: cgroupsAvailable(),
  }));
  Deno.exit(0);
}

/** CPU time (ms) of this process's main thread so far. */
function threadCpu(): number {
  const stat = Deno.readTextFileSync(`/proc/self/task/${Deno.pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in USER_HZ (100)
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const runs: Record<string, number[]> = { on: [], off: [] };
const cpus: Record<string, number[]> = { on: [], off: [] };
let available = false;
for (let r = 0; r < Number(values.rounds); r++) {
  for (const mode of ["on", "off"] as const) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname, "--child", "--steps", String(STEPS)],
      env: mode === "off" ? { THAW_CGROUPS: "off" } : {},
      stderr: "inherit",
    }).output();
    const res = JSON.parse(new TextDecoder().decode(out.stdout));
    if (mode === "on") available = res.cgroups;
    runs[mode]!.push(res.ms);
    cpus[mode]!.push(res.cpu);
  }
}
const on = median(runs.on!), off = median(runs.off!);
const cpuOn = median(cpus.on!), cpuOff = median(cpus.off!);
const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
console.log(`per step (median of ${values.rounds} rounds of ${STEPS}), load average ${load}:`);
console.log(
  `  wall:               cgroups ${available ? "on" : "UNAVAILABLE"} ${on.toFixed(3)} ms, ` +
    `off ${off.toFixed(3)} ms, difference ${(on - off).toFixed(3)} ms`,
);
console.log(
  `  engine thread CPU:  cgroups ${available ? "on" : "UNAVAILABLE"} ${cpuOn.toFixed(3)} ms, ` +
    `off ${cpuOff.toFixed(3)} ms, difference ${(cpuOn - cpuOff).toFixed(3)} ms`,
);
