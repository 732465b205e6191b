/**
 * Background services of live runs: recorded in the store with their log file once ready (so
 * `thaw status RUN_ID` can list them and a person can stop them after a real run), watched until
 * the run ends (a service that exits fails its step), and listed for `thaw status`.
 *
 * @module
 */
import type { ProcessRecord, Store } from "../store/types.ts";
import { groupAlive } from "../../steps/process/process.ts";
import type { Service } from "../../steps/types.ts";

/**
 * Records the ready `service` of `step` (pid, group, log file) and calls `onLost` with why if it
 * exits on its own (not when it is stopped).
 */
export function watchService(
  store: Store,
  run: string,
  step: string,
  service: Service,
  log: string | undefined,
  onLost: (reason: string) => void,
): void {
  const record: ProcessRecord = {
    step,
    pid: service.pid,
    pgid: service.pgid,
    ...(log !== undefined ? { log } : {}),
  };
  void store.addProcess(run, record).catch(() => {});
  void service.lost.then(onLost);
}

/** A service of a run as `thaw status` lists it. */
export interface ServiceRow {
  readonly step: string;
  readonly pid: number;
  readonly pgid: number;
  /** The log file its output is appended to, when the run had one. */
  readonly log: string | null;
  /** Whether anything of its process group still runs. */
  readonly alive: boolean;
}

/**
 * The services of run `run`: the processes the store keeps for steps that are done (a failed,
 * cancelled or unfinished step's processes are stopped by the engine, or on resume or cancel).
 */
export async function runServices(store: Store, run: string): Promise<ServiceRow[]> {
  const done = new Set(
    (await store.steps(run)).filter((s) => s.state === "done").map((s) => s.step),
  );
  return (await store.processes(run)).filter((p) => done.has(p.step)).map((p) => ({
    step: p.step,
    pid: p.pid,
    pgid: p.pgid,
    log: p.log ?? null,
    alive: groupAlive(p.pgid),
  }));
}

/** `thaw status` lines for the services of a run, with how to stop them; "" when none. */
export function renderServices(rows: readonly ServiceRow[]): string {
  if (!rows.length) return "";
  const lines = ["services:"];
  for (const r of rows) {
    const state = r.alive ? `running, stop with: kill -TERM -${r.pgid}` : "gone";
    lines.push(`  ${r.step}: pid ${r.pid} (${state})${r.log ? `; log ${r.log}` : ""}`);
  }
  return lines.join("\n") + "\n";
}

/** How often services found again on resume are looked at. */
const POLL_MS = 1000;

/**
 * Watches, on resume, the services a killed engine of run `run` had started (the processes the
 * store keeps for steps `isDone` says are done): `onLost(step, reason)` when one's process group
 * is gone while the store still names it. Returns the function that stops watching.
 */
export function watchRecorded(
  store: Store,
  run: string,
  isDone: (step: string) => boolean,
  onLost: (step: string, reason: string) => void,
): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  void (async () => {
    const watched = new Map(
      (await store.processes(run)).filter((p) => isDone(p.step)).map((p) => [p.step, p]),
    );
    while (!stopped && watched.size) {
      await new Promise((r) => timer = setTimeout(r, POLL_MS));
      if (stopped) return;
      const now = new Map((await store.processes(run)).map((p) => [p.step, p.pgid]));
      for (const [step, p] of watched) {
        if (now.get(step) !== p.pgid) watched.delete(step); // replaced or forgotten
        else if (!groupAlive(p.pgid)) {
          watched.delete(step);
          onLost(step, `its service (pid ${p.pid}, started before the resume) is gone`);
        }
      }
    }
  })().catch(() => {});
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
