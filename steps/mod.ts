/**
 * The step kinds of thaw: run steps (commands in their own process group, readiness probes,
 * background services) and fetch steps (data sets brought home), behind the interface in
 * `types.ts`.
 *
 * @module
 */
export * from "./types.ts";
export { runStep } from "./run/run.ts";
export { formatMs, probe } from "./run/probe.ts";
export type { ProbeContext, ProbeResult } from "./run/probe.ts";
export { groupAlive, killGroup, processAlive, spawnGroup } from "./process/process.ts";
export type { ExitStatus, Group, KillOutcome, SpawnOptions } from "./process/process.ts";
export { fetchData } from "./fetch/fetch.ts";
