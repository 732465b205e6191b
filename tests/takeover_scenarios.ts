/**
 * The two takeover scenarios of contract revision 3, played for real on one PostgreSQL database
 * with the rig of `takeover_rig.ts`: an engine on "machine" engine-a, a standby on standby-b,
 * each in network namespaces of its own where the rig can make them (the backup server the kill
 * scenario fetches from then listens on the standby's link's host end, which engine-a reaches
 * through its own link).
 * Each returns what it saw; `problems` lists what was not clean (empty: a clean takeover).
 *
 * - {@link killTrial}: engine-a dies (`kill -9` of it and its processes) mid-run: a done step,
 *   a fetch half-way (its server stalls it), an idempotent and a non-idempotent step running.
 * - {@link stopTrial}: engine-a is paused (SIGSTOP) past its lease, the standby takes over, then
 *   it wakes up (SIGCONT): it must write nothing and stop its step.
 *
 * @module
 */
import { join } from "node:path";
import { startBackupServer } from "./http_backup_server.ts";
import { thawCommand } from "./paths.ts";
import {
  alive,
  count,
  killMachine,
  look,
  type Machine,
  machine,
  poll,
  tookOverAt,
  workDir,
} from "./takeover_rig.ts";

/** What one trial saw. */
export interface Trial {
  readonly kind: "kill -9" | "SIGSTOP";
  /** From the engine's death (or pause) to the standby's first write (it took the lease), ms. */
  readonly takeoverMs: number;
  /** What was not clean; empty when all was. */
  readonly problems: string[];
}

const SIZE = 4 << 20;
const STALL = 1536 << 10;

/** `want` as a problem when `ok` is false. */
function expect(problems: string[], ok: boolean, want: string): void {
  if (!ok) problems.push(want);
}

/** `e` with what the two machines said. */
function told(e: unknown, engine: Machine, standby: Machine): Error {
  return new Error(
    `${(e as Error)?.message ?? e}\n--- engine-a said:\n${engine.out()}\n--- standby-b said:\n` +
      standby.out(),
  );
}

/** Starts the standby and waits until it stands by. */
async function startStandby(dir: string, url: string): Promise<Machine> {
  const standby = machine("standby-b", dir, url, ["standby"]);
  try {
    await poll(() => standby.out().includes("standing by on") || undefined, "the standby");
  } catch (e) {
    killMachine(standby);
    await standby.done;
    throw new Error(`${(e as Error).message}\n--- standby-b said:\n${standby.out()}`);
  }
  return standby;
}

/** Stops `m` with SIGTERM (and SIGKILL if it lingers); its end. */
async function stopMachine(m: Machine) {
  try {
    m.child.kill("SIGTERM");
  } catch { /* ended */ }
  const timer = setTimeout(() => {
    try {
      m.child.kill("SIGKILL");
    } catch { /* ended */ }
  }, 15000);
  try {
    return await m.done;
  } finally {
    clearTimeout(timer);
  }
}

/** `thaw done RUN STEP` from a third process. */
async function thawDone(dir: string, url: string, run: string, step: string): Promise<void> {
  const out = await thawCommand(["done", run, step, "--store", url], { cwd: dir }).output();
  if (!out.success) throw new Error(`thaw done: ${new TextDecoder().decode(out.stderr)}`);
}

/** `kill -9` of the active engine mid-run; the standby finishes the run. */
export async function killTrial(url: string): Promise<Trial> {
  const data = new Uint8Array(SIZE);
  for (let at = 0; at < SIZE; at += 65536) crypto.getRandomValues(data.subarray(at, at + 65536));
  const srv = await workDir({ "data.bin": data });
  const w = await workDir({});
  const standby = await startStandby(w.dir, url).catch(async (e) => {
    await srv.remove();
    await w.remove();
    throw e;
  });
  // Listening where both machines reach this host: the standby's link's host end.
  const server = startBackupServer(srv.dir, { stallAfter: STALL }, {
    hostname: standby.hostAddress,
  });
  await Deno.writeTextFile(
    join(w.dir, "rb.yaml"),
    `runbook: 1
name: takeover-kill
steps:
  - { id: first, idempotent: true, run: "echo first >> steps.log" }
  - id: fetch-data
    fetch: { from: "${server.url}data.bin", to: data.bin, size: ${SIZE}B }
  - { id: slow, needs: [first], idempotent: true, run: "echo slow >> steps.log; until [ -e go ]; do sleep 0.1; done" }
  - { id: restore, needs: [first], run: "echo restore >> steps.log; until [ -e go ]; do sleep 0.1; done" }
  - { id: last, needs: [fetch-data, slow, restore], run: "echo last >> steps.log" }
`,
  );
  const log = join(w.dir, "steps.log");
  const store = await look(url);
  const engine = machine("engine-a", w.dir, url, ["run", "rb.yaml"]);
  const problems: string[] = [];
  let seen = "";
  try {
    const run = await poll(async () => (await store.listRuns(1))[0]?.id, "the run");
    // Mid-run: first done, slow and restore running, part of the fetch on disk (the stored
    // progress lags the disk by a write: the file tells).
    const partSize = () => {
      const part = [...Deno.readDirSync(w.dir)].find((e) => e.name.endsWith(".part"))?.name;
      return part ? Deno.statSync(join(w.dir, part)).size : 0;
    };
    await poll(async () => {
      const steps = new Map((await store.steps(run)).map((s) => [s.step, s.state]));
      seen = JSON.stringify({ steps: [...steps], bytes: partSize() });
      const ready = steps.get("first") === "done" && steps.get("slow") === "running" &&
        steps.get("restore") === "running" && partSize() > 0 &&
        await count(log, "restore") === 1 && await count(log, "slow") === 1;
      return ready || undefined;
    }, "the engine to be mid-run").catch((e) => {
      throw new Error(`${e.message} ${seen}`);
    });
    await new Promise((r) => setTimeout(r, 1500)); // the fetch's server stalled by now
    const died = Date.now();
    killMachine(engine);
    await engine.done;
    // What engine-a had on disk: the bytes the standby continues after.
    const kept = partSize();
    expect(problems, kept > 0, "engine-a had written part of the fetch");
    await Deno.writeTextFile(join(w.dir, "go"), "");
    const took = await poll(() => tookOverAt(standby, run), "the standby to take over");
    const waits = await poll(async () => {
      const s = (await store.steps(run)).find((x) => x.step === "restore");
      return /was running when the engine stopped/.test(s?.detail ?? "") ? s : undefined;
    }, "restore to wait for a person");
    expect(problems, waits.state === "running", "restore waits (running, for a person)");
    expect(problems, await count(log, "restore") === 1, "restore did not run again unasked");
    await thawDone(w.dir, url, run, "restore"); // a person finished it by hand
    const ended = await poll(async () => {
      const r = await store.getRun(run);
      return r && r.state !== "running" ? r : undefined;
    }, "the run to end");
    expect(problems, ended.outcome === "met", `the run ends met (was ${ended.outcome})`);
    expect(problems, await count(log, "first") === 1, "first (done) ran once");
    expect(problems, await count(log, "slow") === 2, "slow (idempotent) ran again once");
    expect(problems, await count(log, "last") === 1, "last ran once");
    const ranges = server.requests.filter((r) => r.range !== null);
    expect(problems, ranges.some((r) => r.range === `bytes=${kept}-`), `continued at ${kept}`);
    // Only what was sent to engine-a but never reached its disk crossed twice.
    const again = server.bytesSent - STALL - (SIZE - kept);
    expect(problems, again === 0, `no byte on disk fetched again (${again} more)`);
    const got = await Deno.readFile(join(w.dir, "data.bin")).catch(() => new Uint8Array());
    expect(problems, got.length === SIZE && got.every((b, i) => b === data[i]), "data intact");
    return { kind: "kill -9", takeoverMs: took - died, problems };
  } catch (e) {
    throw told(e, engine, standby);
  } finally {
    killMachine(engine);
    await stopMachine(standby);
    await store.close();
    await server.close();
    await srv.remove();
    await w.remove();
  }
}

/** SIGSTOP of the active engine past its lease, takeover, SIGCONT: the old engine stops. */
export async function stopTrial(url: string): Promise<Trial> {
  const w = await workDir({
    "rb.yaml": `runbook: 1
name: takeover-stop
steps:
  - { id: first, idempotent: true, run: "echo first >> steps.log" }
  - { id: long, needs: [first], idempotent: true, run: "echo $$ >> long.pids; echo long >> steps.log; until [ -e go ]; do sleep 0.1; done" }
  - { id: last, needs: [long], run: "echo last >> steps.log" }
`,
  });
  const log = join(w.dir, "steps.log");
  const pids = async () =>
    (await Deno.readTextFile(join(w.dir, "long.pids")).catch(() => "")).split("\n")
      .filter(Boolean).map(Number);
  const store = await look(url);
  const standby = await startStandby(w.dir, url);
  const engine = machine("engine-a", w.dir, url, ["run", "rb.yaml"]);
  const problems: string[] = [];
  try {
    const run = await poll(async () => (await store.listRuns(1))[0]?.id, "the run");
    await poll(async () => (await pids()).length === 1 || undefined, "long to run");
    const paused = Date.now();
    Deno.kill(engine.child.pid, "SIGSTOP");
    const took = await poll(() => tookOverAt(standby, run), "the standby to take over");
    // The standby runs long again (idempotent); engine-a's long still runs, on "its machine".
    await poll(async () => (await pids()).length === 2 || undefined, "long to run again");
    const [old] = await pids();
    const events = await store.stepEvents(run);
    const seq = events.at(-1)?.seq ?? 0;
    expect(problems, alive(old!), "engine-a's long was left to engine-a");
    Deno.kill(engine.child.pid, "SIGCONT");
    const end = await engine.done;
    expect(problems, end.code === 4, `engine-a exits 4 (was ${end.code})`);
    expect(
      problems,
      new RegExp(`lost the lease on run ${run} to standby-b:\\d+; stopped its steps`).test(
        end.text,
      ),
      `engine-a says it lost the lease (said: ${end.text.trim().split("\n").at(-1)})`,
    );
    const after = await store.stepEvents(run, seq);
    expect(problems, after.length === 0, `engine-a wrote nothing (${JSON.stringify(after)})`);
    expect(problems, !alive(old!), "engine-a stopped its step");
    await Deno.writeTextFile(join(w.dir, "go"), "");
    const ended = await poll(async () => {
      const r = await store.getRun(run);
      return r && r.state !== "running" ? r : undefined;
    }, "the run to end");
    expect(problems, ended.outcome === "met", `the run ends met (was ${ended.outcome})`);
    expect(problems, await count(log, "first") === 1, "first (done) ran once");
    expect(problems, await count(log, "last") === 1, "last ran once");
    return { kind: "SIGSTOP", takeoverMs: took - paused, problems };
  } catch (e) {
    throw told(e, engine, standby);
  } finally {
    try {
      Deno.kill(engine.child.pid, "SIGCONT");
    } catch { /* ended */ }
    killMachine(engine);
    await stopMachine(standby);
    for (const pid of await pids()) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* ended */ }
    }
    await store.close();
    await w.remove();
  }
}
