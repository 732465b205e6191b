/**
 * What a step's cgroup costs: `sh -c true` started as a step's process group and waited for,
 * N times in a row, with cgroups (the default where they work) and with `THAW_CGROUPS=off`, each
 * in its own process, interleaved over rounds. Prints the median time per step of each, and the
 * difference.
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
  const env = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", THAW_RUN_ID: "R", THAW_STEP: "s" };
  for (let i = 0; i < 20; i++) await spawnGroup("sh", "true", { cwd: "/", env }).status; // warm
  const t = performance.now();
  for (let i = 0; i < STEPS; i++) {
    const g = spawnGroup("sh", "true", { cwd: "/", env });
    await g.status;
    await g.closeOutput();
  }
  console.log(JSON.stringify({ ms: (performance.now() - t) / STEPS, cgroups: cgroupsAvailable() }));
  Deno.exit(0);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const runs: Record<string, number[]> = { on: [], off: [] };
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
  }
}
const on = median(runs.on!), off = median(runs.off!);
console.log(
  `per step (median of ${values.rounds} rounds of ${STEPS}): ` +
    `cgroups ${available ? "on" : "UNAVAILABLE"} ${on.toFixed(3)} ms, off ${off.toFixed(3)} ms, ` +
    `difference ${(on - off).toFixed(3)} ms`,
);
