/**
 * The step kinds of thaw: run steps (commands in their own process group, readiness probes,
 * background services) and fetch steps (data sets brought home), behind the interface in
 * `types.ts`; the plug-in interfaces (step kinds, sources, targets) and their registries in
 * `kind.ts`.
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
export * from "./kind.ts";
import "./builtin.ts";
export { runKind } from "./run/kind.ts";
export { fetchKind } from "./fetch/kind.ts";
export { fileSource, httpSource, runSource } from "./fetch/sources/builtin.ts";
export { streamedSource } from "./fetch/sources/stream.ts";
export type { Opened, OpenRequest, StreamedSource } from "./fetch/sources/stream.ts";
export { localTarget } from "./targets/local.ts";
export { SourceFailure } from "./fetch/attempt.ts";
export type { Attempt, Outcome as SourceOutcome } from "./fetch/attempt.ts";
