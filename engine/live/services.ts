/**
 * Background services of live runs: recorded in the store with their log file (and their host, for
 * a step with `on:`) once ready (so `thaw status RUN_ID` can list them and a person can stop them
 * after a real run), watched until the run ends (a service that exits fails its step), and listed
 * for `thaw status`.
 *
 * A service on a host appends its output to a log file there ({@linkcode remoteLogFile}, in the
 * login directory of the ssh user), so that it outlives the connection and thaw.
 *
 * @module
 */
import type { ProcessRecord, Store } from "../store/types.ts";
import type { Runbook } from "../runbook/model.ts";
import { groupAlive } from "../../steps/process/process.ts";
import type { Service } from "../../steps/types.ts";
import { SshTarget } from "../../steps/targets/ssh.ts";
import { localTarget } from "../../steps/targets/local.ts";
import type { Target } from "../../steps/kind.ts";

/**
 * The log file of a service of step `step` on a host: relative, so in the login directory of the
 * host's ssh user (the runbook's directory is this machine's).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { remoteLogFile } from "./services.ts";
 * assert.equal(remoteLogFile("r1", "web"), ".thaw/logs/r1/web.log");
 * ```
 */
export function remoteLogFile(run: string, step: string): string {
  return `.thaw/logs/${run}/${step}.log`;
}

/** Where a service was started: its step, its host (`on:`; absent: here) and its log file. */
export interface ServiceOrigin {
  readonly step: string;
  readonly host?: string | undefined;
  readonly log?: string | undefined;
}

/**
 * Records the ready `service` of `origin.step` (pid, group, host, log file) and calls `onLost`
 * with why if it exits on its own (not when it is stopped).
 */
export function watchService(
  store: Store,
  run: string,
  origin: ServiceOrigin,
  service: Service,
  onLost: (reason: string) => void,
): void {
  const record: ProcessRecord = {
    step: origin.step,
    pid: service.pid,
    pgid: service.pgid,
    ...(origin.log !== undefined ? { log: origin.log } : {}),
    ...(origin.host !== undefined ? { host: origin.host } : {}),
  };
  void store.addProcess(run, record).catch(() => {});
  const where = origin.host !== undefined ? ` on ${origin.host}` : "";
  void service.lost.then((why) => onLost(where ? `${why}${where}` : why));
}

/** A service of a run as `thaw status` lists it. */
export interface ServiceRow {
  readonly step: string;
  /** The host (`on:`) it runs on; absent: the machine that ran thaw. */
  readonly host?: string;
  readonly pid: number;
  /** Its process group (on its host, for a service on a host). */
  readonly pgid: number;
  /** The log file its output is appended to, when the run had one (on its host). */
  readonly log: string | null;
  /** Whether anything of its process group still runs; null: its host could not be asked. */
  readonly alive: boolean | null;
}

/** How long `thaw status` and the API wait for a host to say whether a service runs (ms). */
const HOST_ASK_MS = 5000;
/** How long what a host said is reused (the API is polled: one ssh round per poll is too many). */
const HOST_CACHE_MS = 2000;
const asked = new Map<string, { at: number; alive: Promise<boolean | null> }>();

/** Whether group `pgid` runs on `target`; null when it cannot be told within `HOST_ASK_MS`. */
function askHost(key: string, target: () => Target, pgid: number): Promise<boolean | null> {
  const hit = asked.get(key);
  if (hit && performance.now() - hit.at < HOST_CACHE_MS) return hit.alive;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const alive = Promise.race([
    target().groupAlive(pgid).catch(() => null),
    new Promise<null>((r) => timer = setTimeout(() => r(null), HOST_ASK_MS)),
  ]).finally(() => clearTimeout(timer));
  asked.set(key, { at: performance.now(), alive });
  return alive;
}

/**
 * The services of run `run`: the processes the store keeps for steps that are done (a failed,
 * cancelled or unfinished step's processes are stopped by the engine, or on resume or cancel).
 * A service on a host is asked about there, over ssh (`runbook()` gives the run's hosts).
 */
export async function runServices(
  store: Store,
  run: string,
  runbook?: () => Promise<Runbook | undefined>,
): Promise<ServiceRow[]> {
  const done = new Set(
    (await store.steps(run)).filter((s) => s.state === "done").map((s) => s.step),
  );
  const records = (await store.processes(run)).filter((p) => done.has(p.step));
  const targets = new Map<string, SshTarget>();
  let hosts: Runbook["hosts"] | undefined;
  if (records.some((p) => p.host !== undefined)) hosts = (await runbook?.())?.hosts;
  const targetOf = (name: string) => () => {
    let t = targets.get(name);
    if (!t) targets.set(name, t = new SshTarget(name, hosts![name]!, sshOptions()));
    return t;
  };
  try {
    return await Promise.all(records.map(async (p) => ({
      step: p.step,
      ...(p.host !== undefined ? { host: p.host } : {}),
      pid: p.pid,
      pgid: p.pgid,
      log: p.log ?? null,
      alive: p.host === undefined
        ? groupAlive(p.pgid)
        : hosts?.[p.host] === undefined
        ? null
        : await askHost(`${run}\n${p.host}\n${p.pgid}`, targetOf(p.host), p.pgid),
    })));
  } finally {
    await Promise.all([...targets.values()].map((t) => t.close().catch(() => {})));
  }
}

/** The ssh options of targets made outside a run: `$THAW_SSH_CONFIG` when set. */
function sshOptions(): { sshConfig?: string } {
  const config = Deno.env.get("THAW_SSH_CONFIG");
  return config ? { sshConfig: config } : {};
}

/** `thaw status` lines for the services of a run, with how to stop them; "" when none. */
export function renderServices(rows: readonly ServiceRow[]): string {
  if (!rows.length) return "";
  const lines = ["services:"];
  for (const r of rows) {
    const on = r.host !== undefined ? ` on ${r.host}` : "";
    const stop = r.host !== undefined
      ? `ssh ${r.host} kill -TERM -- -${r.pgid}`
      : `kill -TERM -${r.pgid}`;
    const state = r.alive === null
      ? `${r.host} did not answer; stop with: ${stop}`
      : r.alive
      ? `running, stop with: ${stop}`
      : "gone";
    const log = r.log ? `; log ${r.host !== undefined ? `${r.host}:` : ""}${r.log}` : "";
    lines.push(`  ${r.step}${on}: pid ${r.pid} (${state})${log}`);
  }
  return lines.join("\n") + "\n";
}

/** How often services found again on resume are looked at. */
const POLL_MS = 1000;

/**
 * Watches, on resume, the services a killed engine of run `run` had started (the processes the
 * store keeps for steps `isDone` says are done; one on a host through `targetOf(host)`):
 * `onLost(step, reason)` when one's process group is gone while the store still names it.
 * Returns the function that stops watching.
 */
export function watchRecorded(
  store: Store,
  run: string,
  isDone: (step: string) => boolean,
  onLost: (step: string, reason: string) => void,
  targetOf: (host: string | undefined) => Target = () => localTarget,
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
        else if (!await targetOf(p.host).groupAlive(p.pgid).catch(() => true)) {
          watched.delete(step);
          const on = p.host !== undefined ? ` on ${p.host}` : "";
          onLost(step, `its service (pid ${p.pid}${on}, started before the resume) is gone`);
        }
      }
    }
  })().catch(() => {});
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
