/**
 * thaw: a runbook engine for disaster recovery that brings services back (TTR) long before all
 * data is restored (BTN).
 *
 * Load a runbook, plan it, and rehearse it in virtual time:
 *
 * @example
 * ```ts
 * import { parseRunbook, simulate } from "./mod.ts";
 * import assert from "node:assert/strict";
 * const rb = parseRunbook(`runbook: 1
 * name: demo
 * bandwidth: 100MB/s
 * steps:
 *   - { id: f1, fetch: { from: /backup/f1, to: ./f1, size: 200MB } }
 *   - { id: s1, needs: [f1], run: ./restore.sh, estimate: 10s, milestone: service }
 *   - { id: f2, fetch: { from: /backup/f2, to: ./f2, size: 600MB } }
 *   - { id: s2, needs: [f2, s1], run: ./reindex.sh, estimate: 20s }
 * `, "demo.yaml");
 * const report = simulate(rb, { strategy: "aggressive" });
 * assert.equal(report.ttr_s, 12);
 * assert.equal(report.btn_s, 32);
 * ```
 *
 * @module
 */
export { parseRunbook, readRunbook } from "./engine/runbook/load.ts";
export type { LoadOptions } from "./engine/runbook/load.ts";
export type * from "./engine/runbook/model.ts";
export {
  RunbookError,
  RunbookErrors,
  SimulationError,
  UsageError,
} from "./engine/runbook/errors.ts";
export { analyse, buildGraph, FETCH, RUN } from "./engine/plan/graph.ts";
export type { Analysis, Estimates, Graph } from "./engine/plan/graph.ts";
export { Scheduler, STATES } from "./engine/schedule/scheduler.ts";
export type { Decision, SchedulerOptions, StepState } from "./engine/schedule/scheduler.ts";
export { planGraph, simulate, simulatedReport, simulateGraph } from "./engine/simulate/simulate.ts";
export type { SimulateOptions, Simulation } from "./engine/simulate/simulate.ts";
export { Recorder } from "./engine/schedule/recorder.ts";
export { buildReport, exitCode, newRunId } from "./engine/schedule/report.ts";
export type { Outcome, Report, StepReport } from "./engine/schedule/report.ts";
export { plan } from "./engine/simulate/plan.ts";
export type { Plan } from "./engine/simulate/plan.ts";
export { jsonSchema, RunbookSchema, runbookSchema, STRATEGIES } from "./engine/runbook/schema.ts";
// Plug-ins: step kinds, sources, targets, and their registries (steps/kind.ts).
export {
  localTarget,
  registerSource,
  registerStepKind,
  registerTarget,
  RegistryError,
  SourceFailure,
  sourceFor,
  sources,
  stepKind,
  stepKinds,
  streamedSource,
  target,
  targets,
} from "./steps/mod.ts";
export type {
  Attempt,
  CheckContext,
  Command,
  ExecuteContext,
  Figures,
  FileStat,
  FileWriter,
  ModelContext,
  Opened,
  OpenRequest,
  Process,
  Registration,
  Source,
  SourceOutcome,
  SpecContext,
  StepEffect,
  StepKind,
  StreamedSource,
  Target,
} from "./steps/mod.ts";
export {
  formatBytes,
  formatDuration,
  parseBandwidth,
  parseDuration,
  parseSize,
} from "./engine/runbook/units.ts";
export { predictRest } from "./engine/simulate/predict.ts";
export type { Prediction, Standing, StepStanding } from "./engine/simulate/predict.ts";
export {
  DEFAULT_STORE,
  defaultStore,
  KyselyStore,
  LeaseLost,
  openStore,
  StoreError,
} from "./engine/store/mod.ts";
export type { Lease, Leases, LeaseState, RunRecord, RunState, Store } from "./engine/store/mod.ts";
export { runLive } from "./engine/live/loop.ts";
export type { LiveOptions } from "./engine/live/loop.ts";
export { ApiError, createApp, DEFAULT_LISTEN, parseListen, serveApi } from "./engine/api/mod.ts";
export type { ApiOptions, ApiServer } from "./engine/api/mod.ts";
