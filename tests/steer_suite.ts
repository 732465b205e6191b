/**
 * The steering suite: `thaw status`, `approve`, `cancel`, `done`, `resume` and `thaw serve` as real
 * CLI processes (`deno run -A engine/main.ts …`) beside a live run in another process, against one
 * store under test. `steer_sqlite_test.ts` runs it on an SQLite file and `steer_pg_test.ts` on a
 * throwaway PostgreSQL cluster: one suite, a matrix of stores (issue 10, point 3).
 *
 * Every case writes a small runbook to a temporary directory (the working directory of every
 * command), passes `--store` explicitly, bounds every wait, and kills whatever it started, also
 * when it fails.
 *
 * @module
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../engine/store/mod.ts";
import type { Store } from "../engine/store/types.ts";
import { thawCommand } from "./paths.ts";
import { collectEvents } from "./sse.ts";

/** A store for one case: what `--store` names, and how to dispose of it. */
export interface StoreUnderTest {
  /** An SQLite file path or a `postgres://` URL, given to every command as `--store`. */
  readonly store: string;
  /** Where the README says step logs go, for commands run in `cwd`. */
  logs(cwd: string): string;
  /** A secret the store's URL holds, which no output may show (a password). */
  readonly secret?: string;
  cleanup(): Promise<void>;
}

/** The text a child writes on one stream, as it comes. */
class Lines {
  #text = "";
  #ended = false;
  #wake: (() => void)[] = [];
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        this.#text += chunk;
        for (const w of this.#wake.splice(0)) w();
      }
    })().finally(() => {
      this.#ended = true;
      for (const w of this.#wake.splice(0)) w();
    });
  }

  get text(): string {
    return this.#text;
  }

  /** The first match of `re`, waiting up to `ms` for it. */
  async match(re: RegExp, ms = 20000): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    for (let m = re.exec(this.#text); !m; m = re.exec(this.#text)) {
      if (this.#ended || Date.now() > deadline) {
        throw new Error(
          `no ${re} ${this.#ended ? "before the end" : `within ${ms} ms`} in:\n${this.#text}`,
        );
      }
      await Promise.race([
        new Promise<void>((r) => this.#wake.push(r)),
        new Promise((r) => setTimeout(r, 100)),
      ]);
    }
    return re.exec(this.#text)!;
  }
}

/** A `thaw` process a case started, in its own process group. */
interface Child {
  readonly process: Deno.ChildProcess;
  /** Set once the process has exited (its pid may then be another's). */
  ended: boolean;
  readonly stdout: Lines;
  readonly stderr: Lines;
}

/** What a finished command said. */
interface Output {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** What a case gets: its directory, its store, and ways to run `thaw` there. */
interface Ctx {
  readonly dir: string;
  readonly sut: StoreUnderTest;
  /** The store, opened by the test itself to wait on (never to steer). */
  watch(): Promise<Store>;
  /** `thaw ARGS --store STORE` to its end. */
  thaw(args: string[]): Promise<Output>;
  /** `thaw ARGS --store STORE` started (killed at the end of the case if still running). */
  spawn(args: string[], env?: Record<string, string>): Child;
  /** Fires at the end of the case (for event streams). */
  readonly signal: AbortSignal;
}

/** Whether process `pid` exists and is not a zombie (read from /proc). */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !"ZX".includes(stat[stat.lastIndexOf(")") + 2]!);
  } catch {
    return false;
  }
}

/** Polls `probe` every 50 ms until it gives a value, or throws after `ms` naming `what`. */
async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 20000,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`, { cause: last });
}

/** `promise`, or an error naming `what` (a text, or made when the time is up) after `ms`. */
async function within<T>(what: string | (() => string), promise: Promise<T>, ms = 20000) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const text = typeof what === "string" ? what : what();
      reject(new Error(`timed out after ${ms} ms waiting for ${text}`));
    }, ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The exit status of `child`, within `ms`. */
function exited(child: Child, ms = 20000): Promise<Deno.CommandStatus> {
  const what = () => `thaw to exit; it said:\n${child.stdout.text}${child.stderr.text}`;
  return within(what, child.process.status, ms);
}

/** The pids written (one a line) to `file` in `dir`. */
async function pidsIn(dir: string, file: string): Promise<number[]> {
  const text = await Deno.readTextFile(join(dir, file)).catch(() => "");
  return text.split("\n").filter(Boolean).map(Number);
}

/** Kills what a case left: its `thaw` process groups, and the groups its steps wrote as *.pid. */
async function killAll(dir: string, children: Child[]): Promise<void> {
  for (const c of children) {
    try {
      if (!c.ended) Deno.kill(-c.process.pid, "SIGKILL");
    } catch { /* ended meanwhile */ }
    await c.process.status;
    await Promise.all([c.stdout.done, c.stderr.done]).catch(() => {});
  }
  for await (const e of Deno.readDir(dir)) {
    if (!/\.pids?$/.test(e.name)) continue;
    for (const pid of (await pidsIn(dir, e.name)).filter(alive)) {
      for (const target of [-pid, pid]) {
        try {
          Deno.kill(target, "SIGKILL");
        } catch { /* gone, or not a group */ }
      }
    }
  }
}

async function runCase(sut: StoreUnderTest, fn: (t: Ctx) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-steer-" });
  const children: Child[] = [];
  const stores: Store[] = [];
  const ac = new AbortController();
  const t: Ctx = {
    dir,
    sut,
    signal: ac.signal,
    async watch() {
      stores.push(await openStore(sut.store));
      return stores.at(-1)!;
    },
    async thaw(args) {
      const child = t.spawn(args);
      const { code } = await exited(child, 30000);
      await Promise.all([child.stdout.done, child.stderr.done]);
      return { code, stdout: child.stdout.text, stderr: child.stderr.text };
    },
    spawn(args, env = {}) {
      const process = thawCommand([...args, "--store", sut.store], {
        cwd: dir,
        env,
        stdout: "piped",
        stderr: "piped",
        detached: true,
      }).spawn();
      const child = {
        process,
        ended: false,
        stdout: new Lines(process.stdout),
        stderr: new Lines(process.stderr),
      };
      process.status.then(() => child.ended = true);
      children.push(child);
      return child;
    },
  };
  try {
    await fn(t);
    const said = children.map((c) => `${c.stdout.text}${c.stderr.text}`);
    const leak = sut.secret && said.find((o) => o.includes(sut.secret!));
    ok(!leak, `a thaw process shows the password of the store's URL:\n${leak}`);
  } finally {
    ac.abort();
    await killAll(dir, children);
    for (const s of stores) await s.close().catch(() => {});
    await Deno.remove(dir, { recursive: true });
    await sut.cleanup();
  }
}

/** Registers every steering case for the stores `open` makes (a new store per case). */
export function steerSuite(
  name: string,
  open: () => Promise<StoreUnderTest>,
  options: { readonly ignore?: boolean } = {},
): void {
  for (const [title, fn] of CASES) {
    Deno.test({
      name: `${name}: ${title}`,
      ignore: options.ignore ?? false,
      async fn() {
        await runCase(await open(), fn);
      },
    });
  }
}

// The cases ----------------------------------------------------------------------------------

const GATE = `runbook: 1
name: steer-gate
steps:
  - { id: prep, run: "echo preparing" }
  - { id: gate, needs: [prep], run: "touch gated", approval: "Switch traffic?" }
  - { id: after, needs: [gate], run: "touch after", milestone: up }
`;

/** A step that runs until stopped: its shell (the group's leader) and a child write their pid. */
const LONG = `runbook: 1
name: steer-cancel
steps:
  - { id: quick, run: "true" }
  - { id: long, run: 'sleep 30 & echo $! > sleep.pid; echo $$ > long.pid; wait' }
`;

const RESUME = `runbook: 1
name: steer-resume
steps:
  - { id: restore, run: 'echo $$ >> restore.pids; [ -e fail ] && exit 1; sleep 30' }
  - { id: start, needs: [restore], run: "touch started", milestone: up }
`;

const TOKEN = "steer-t0ken";

/** Writes `text` as `rb.yaml`, starts `thaw run rb.yaml`; the engine, its run id, the store. */
async function start(t: Ctx, text: string) {
  await Deno.writeTextFile(join(t.dir, "rb.yaml"), text);
  const engine = t.spawn(["run", "rb.yaml"]);
  const started = await engine.stdout.match(/: starting run (\S+);/).catch((e) => {
    throw new Error(`${e.message}\nstderr:\n${engine.stderr.text}`);
  });
  const id = started[1]!;
  return { engine, id, store: await t.watch() };
}

/** Waits until `step` of run `id` has a stored detail matching `re` (while `engine` runs). */
function stepDetail(store: Store, id: string, step: string, re: RegExp, engine: Child) {
  return until(`${step} of ${id} to match ${re}`, async () => {
    const s = (await store.steps(id)).find((x) => x.step === step);
    if (s?.detail && re.test(s.detail)) return s;
    const said = `${engine.stdout.text}${engine.stderr.text}`;
    return engine.ended ? new Error(`its engine exited:\n${said}`) : undefined;
  }).then((s) => {
    if (s instanceof Error) throw new Error(`${step} of ${id} never matched ${re}: ${s.message}`);
    return s;
  });
}

/** Waits until `step` of LONG or RESUME runs: the pids it wrote, once the store lists it. */
async function running(t: Ctx, store: Store, id: string, step: string, files: string[]) {
  return await until(`${step} to run`, async () => {
    const pids = (await Promise.all(files.map((f) => pidsIn(t.dir, f)))).map((p) => p[0]);
    const recorded = (await store.processes(id)).some((p) => p.step === step);
    return recorded && pids.every((p) => p && alive(p)) ? pids as number[] : undefined;
  });
}

const gone = (pids: number[]) =>
  until(`pids ${pids} to end`, () => pids.every((p) => !alive(p)) || undefined, 5000);

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/** The state and outcome of run `id` in `thaw status --json`. */
async function listed(t: Ctx, id: string) {
  const r = await t.thaw(["status", "--json"]);
  equal(r.code, 0, r.stderr);
  const run = (JSON.parse(r.stdout) as { run: string; state: string; outcome: string | null }[])
    .find((x) => x.run === id);
  return [run?.state, run?.outcome];
}

/** A `thaw serve` with the token, and its address. */
async function serve(t: Ctx) {
  const server = t.spawn(["serve", "--listen", "127.0.0.1:0"], { THAW_TOKEN: TOKEN });
  const url = (await server.stdout.match(/status API on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
  return { server, url };
}

/** Stops a `thaw serve` with SIGTERM: it says so and exits 0. */
async function stopServe(server: Child): Promise<void> {
  server.process.kill("SIGTERM");
  equal((await exited(server)).code, 0, server.stderr.text);
  await server.stdout.done;
  match(server.stdout.text, /thaw serve: stopped/);
}

/** POSTs with `token` (none: no Authorization header): the status and the JSON body. */
async function post(url: string, token?: string) {
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  const res = await fetch(url, { method: "POST", headers, signal: AbortSignal.timeout(15000) });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(15000) });
  const text = await res.text();
  return {
    status: res.status,
    etag: res.headers.get("etag"),
    body: text ? JSON.parse(text) : null,
  };
}

async function statusAndApprove(t: Ctx): Promise<void> {
  const { engine, id, store } = await start(t, GATE);
  await stepDetail(store, id, "gate", /^waiting for approval: Switch traffic\?/, engine);
  const [list, table, one, oneJson] = await Promise.all([
    listed(t, id),
    t.thaw(["status"]),
    t.thaw(["status", id]),
    t.thaw(["status", id, "--json"]),
  ]);
  deepEqual(list, ["running", null]);
  match(table.stdout, new RegExp(`${id}\\s+steer-gate\\s+run\\s+running`));
  match(one.stdout, new RegExp(`^run ${id} of steer-gate: running`));
  match(one.stdout, new RegExp(`gate waits: waiting for approval: .*thaw approve ${id} gate`));
  deepEqual([JSON.parse(oneJson.stdout).run, JSON.parse(oneJson.stdout).state], [id, "running"]);

  const [notWaiting, typo, noRun] = await Promise.all([
    t.thaw(["approve", id, "after"]),
    t.thaw(["approve", id, "gat"]),
    t.thaw(["approve", "01NOSUCHRUN", "gate"]),
  ]);
  deepEqual([notWaiting.code, typo.code, noRun.code], [2, 2, 2]);
  match(notWaiting.stderr, /step after of run \S+ has no approval gate and does not wait/);
  match(typo.stderr, /has no step "gat" \(did you mean "gate"\?\)/);
  match(noRun.stderr, /no run 01NOSUCHRUN in this store/);
  ok(!/\n\s+at /.test(notWaiting.stderr + typo.stderr + noRun.stderr), "a stack trace");
  equal(await exists(join(t.dir, "gated")), false, "the gate ran before its approval");

  const approved = await t.thaw(["approve", id, "gate"]);
  equal(approved.code, 0, approved.stderr);
  equal(approved.stdout, `approved gate in run ${id}\n`);
  equal((await exited(engine)).code, 0, engine.stderr.text);
  ok(await exists(join(t.dir, "gated")) && await exists(join(t.dir, "after")));
  const [after, late] = await Promise.all([listed(t, id), t.thaw(["approve", id, "gate"])]);
  deepEqual(after, ["done", "met"]);
  equal(late.code, 2);
  match(late.stderr, /is done; there is nothing to approve/);
  // The step's output went where the README says, and nowhere else.
  equal(await Deno.readTextFile(join(t.sut.logs(t.dir), id, "prep.log")), "preparing\n");
}

async function serveAndApprove(t: Ctx): Promise<void> {
  const { server, url } = await serve(t);
  deepEqual((await get(`${url}/runs`)).body, [], "a new store lists no run");
  const { engine, id } = await start(t, GATE);
  const events = fetch(`${url}/runs/${id}/events`, { signal: t.signal })
    .then((r) => collectEvents(r.body!, (e) => e.event === "end"));
  const waiting = await until("the gate to wait in GET /runs/ID", async () => {
    const res = await get(`${url}/runs/${id}`);
    const gate = res.body.steps?.find((s: { id: string }) => s.id === "gate");
    return /^waiting for approval/.test(gate?.detail ?? "") ? res : undefined;
  });
  equal(waiting.body.state, "running");
  ok(waiting.etag, "GET /runs/ID has an ETag");
  const runs = (await get(`${url}/runs`)).body;
  deepEqual([runs.length, runs[0].run, runs[0].state], [1, id, "running"]);

  const gate = `${url}/runs/${id}/steps/gate/approve`;
  const none = await post(gate);
  equal(none.status, 401);
  match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
  equal((await post(gate, "wrong")).status, 401);
  const after = await post(`${url}/runs/${id}/steps/after/approve`, TOKEN);
  equal(after.status, 409);
  match(after.body.error, /has no approval gate and does not wait for a person/);
  equal((await post(`${url}/runs/01NOSUCHRUN/steps/gate/approve`, TOKEN)).status, 404);
  equal(await exists(join(t.dir, "gated")), false, "a refused request let the gate go");
  const queued = await post(gate, TOKEN);
  equal(queued.status, 202, JSON.stringify(queued.body));
  equal((await exited(engine)).code, 0, engine.stderr.text);

  const got = await within("the event stream to end", events);
  const steps = got.filter((e) => e.event === "step");
  deepEqual(steps.map((e) => e.lastId), steps.map((_, k) => String(k + 1)));
  const gates = steps.map((e) => JSON.parse(e.data)).filter((e) => e.step === "gate");
  ok(gates.some((e) => /^waiting for approval/.test(e.detail ?? "")), JSON.stringify(gates));
  equal(gates.at(-1).state, "done");
  const end = got.at(-1)!;
  deepEqual([end.event, JSON.parse(end.data).state, JSON.parse(end.data).outcome], [
    "end",
    "done",
    "met",
  ]);

  // An answer is served for up to 100 ms (longer when it took long to compute).
  const ended = await until("GET /runs/ID to show the end", async () => {
    const res = await get(`${url}/runs/${id}`);
    return res.body.state === "running" ? undefined : res;
  }, 5000);
  deepEqual([ended.status, ended.body.state, ended.body.outcome], [200, "done", "met"]);
  ok(ended.etag && ended.etag !== waiting.etag, "the ETag changed with the run");
  deepEqual(await get(`${url}/runs/${id}`, { "If-None-Match": ended.etag! }), {
    status: 304,
    etag: ended.etag,
    body: null,
  });
  equal((await post(gate, TOKEN)).status, 409, "approving a done run");
  const after204 = await fetch(`${url}/runs/${id}/events`, { headers: { "Last-Event-ID": "end" } });
  equal(after204.status, 204);
  await after204.body?.cancel();
  await stopServe(server);
}

async function cliCancel(t: Ctx): Promise<void> {
  const { engine, id, store } = await start(t, LONG);
  const pids = await running(t, store, id, "long", ["long.pid", "sleep.pid"]);
  const r = await t.thaw(["cancel", id]);
  equal(r.code, 0, r.stderr);
  equal(r.stdout, `run ${id} cancelled\n`);
  equal((await exited(engine)).code, 1, engine.stderr.text);
  await gone(pids);
  deepEqual(await store.processes(id), [], "the store still lists the step's processes");
  deepEqual(await listed(t, id), ["cancelled", "cancelled"]);
  const steps = Object.fromEntries((await store.steps(id)).map((s) => [s.step, s.state]));
  deepEqual(steps, { quick: "done", long: "cancelled" });
  const again = await t.thaw(["cancel", id]);
  equal(again.code, 2);
  match(again.stderr, /has already ended: cancelled/);
}

async function httpCancel(t: Ctx): Promise<void> {
  const { server, url } = await serve(t);
  const { engine, id, store } = await start(t, LONG);
  const pids = await running(t, store, id, "long", ["long.pid", "sleep.pid"]);
  const cancel = `${url}/runs/${id}/cancel`;
  equal((await post(cancel)).status, 401);
  equal((await post(cancel, `${TOKEN}x`)).status, 401);
  ok(pids.every(alive), "a refused cancel stopped the step");
  // 200 once the engine confirms within 5 s; 202 (not confirmed yet) only on a crawling machine.
  const res = await post(cancel, TOKEN);
  ok(
    res.status === 200 && res.body.state === "cancelled" || res.status === 202,
    JSON.stringify(res.body),
  );
  equal((await exited(engine)).code, 1, engine.stderr.text);
  await gone(pids);
  equal((await get(`${url}/runs/${id}`)).body.state, "cancelled");
  const again = await post(cancel, TOKEN);
  equal(again.status, 409);
  match(again.body.error, /has already ended: cancelled/);
  const approve = await post(`${url}/runs/${id}/steps/long/approve`, TOKEN);
  equal(approve.status, 409);
  match(approve.body.error, /is cancelled; there is nothing to approve/);
  await stopServe(server);
}

/** Starts RESUME, and kills its engine with SIGKILL while `restore` runs: the run id, the pid. */
async function killed(t: Ctx) {
  const { engine, id, store } = await start(t, RESUME);
  const [pid] = await running(t, store, id, "restore", ["restore.pids"]);
  Deno.kill(engine.process.pid, "SIGKILL");
  equal((await exited(engine)).signal, "SIGKILL");
  ok(alive(pid!), "the step outlives its engine (a session of its own)");
  deepEqual(await listed(t, id), ["interrupted", null]);
  return { id, store, pid: pid! };
}

async function killResumeDone(t: Ctx): Promise<void> {
  const { id, store, pid } = await killed(t);
  const [status, approve] = await Promise.all([
    t.thaw(["status", id]),
    t.thaw(["approve", id, "restore"]),
  ]);
  match(status.stdout, /restore was running when the engine stopped/);
  equal(approve.code, 2);
  match(approve.stderr, new RegExp(`run ${id} is interrupted .*thaw resume ${id} first`));

  const resumed = t.spawn(["resume", id]);
  await stepDetail(store, id, "restore", /restore was running when the engine stopped/, resumed);
  await gone([pid]); // the dead engine's step, stopped by the resumed one
  const early = await t.thaw(["done", id, "start"]);
  equal(early.code, 2);
  match(early.stderr, /step start of run \S+ is pending and does not wait for a person/);
  const done = await t.thaw(["done", id, "restore"]);
  equal(done.code, 0, done.stderr);
  equal(done.stdout, `marked restore done in run ${id}; its dependents may start\n`);
  equal((await exited(resumed)).code, 0, resumed.stderr.text);
  ok(await exists(join(t.dir, "started")));
  equal((await pidsIn(t.dir, "restore.pids")).length, 1, "restore ran again");
  const events = await store.stepEvents(id);
  ok(events.some((e) => e.step === "restore" && e.state === "done" && /by hand/.test(e.detail!)));
  deepEqual(await listed(t, id), ["done", "met"]);
}

async function cancelInterrupted(t: Ctx): Promise<void> {
  const { id, store, pid } = await killed(t);
  const r = await t.thaw(["cancel", id]);
  equal(r.code, 0, r.stderr);
  equal(r.stdout, `run ${id} was interrupted; marked cancelled\n`);
  await gone([pid]); // no engine: thaw cancel stopped the group the store recorded
  deepEqual(await listed(t, id), ["cancelled", "cancelled"]);
  deepEqual(await store.processes(id), [], "the store still lists the stopped processes");
  const again = await t.thaw(["cancel", id]);
  equal(again.code, 2);
  match(again.stderr, /has already ended: cancelled/);
}

async function doneRecorded(t: Ctx): Promise<void> {
  await Deno.writeTextFile(join(t.dir, "rb.yaml"), RESUME);
  await Deno.writeTextFile(join(t.dir, "fail"), "");
  const failed = await t.thaw(["run", "rb.yaml", "--json"]);
  equal(failed.code, 1, failed.stderr);
  const id = JSON.parse(failed.stdout).run;
  const done = await t.thaw(["done", id, "restore"]);
  equal(done.code, 0, done.stderr);
  equal(
    done.stdout,
    `marked restore done in run ${id} (failed); thaw resume ${id} carries on after it\n`,
  );
  const [shown, twice] = await Promise.all([
    t.thaw(["status", id, "--json"]),
    t.thaw(["done", id, "restore"]),
  ]);
  const restore = JSON.parse(shown.stdout).steps.find((s: { id: string }) => s.id === "restore");
  deepEqual([restore.state, restore.detail], ["done", "marked done by hand (thaw done)"]);
  equal(twice.code, 2);
  match(twice.stderr, /step restore of run \S+ is done already/);
  const resumed = await t.thaw(["resume", id, "--json"]);
  equal(resumed.code, 0, resumed.stderr);
  const report = JSON.parse(resumed.stdout);
  deepEqual([report.outcome, report.steps.map((s: { state: string }) => s.state)], [
    "met",
    ["done", "done"],
  ]);
  equal((await pidsIn(t.dir, "restore.pids")).length, 1, "restore ran again");
  deepEqual(await listed(t, id), ["done", "met"]);
}

async function exitCodes(t: Ctx): Promise<void> {
  const book = (name: string, extra: string, step: string) =>
    `runbook: 1\nname: ${name}\n${extra}steps:\n  - { id: s, ${step}, milestone: up }\n`;
  const books = {
    met: book("exit-met", "objectives: { rto: 1m }\n", 'run: "true"'),
    missed: book("exit-missed", "objectives: { rto: 0.1s }\n", 'run: "sleep 0.4"'),
    failed: book("exit-failed", "", 'run: "exit 4"'),
    bad: book("exit-bad", "", 'run: "true", estimat: 1s'),
  };
  for (const [k, text] of Object.entries(books)) {
    await Deno.writeTextFile(join(t.dir, `${k}.yaml`), text);
  }
  // Three runs at once on one store, and one refused before it starts.
  const [met, missed, failed, bad] = await Promise.all(
    Object.keys(books).map((k) => t.thaw(["run", `${k}.yaml`, "--json"])),
  );
  deepEqual([met!.code, missed!.code, failed!.code, bad!.code], [0, 3, 1, 2], bad!.stderr);
  match(bad!.stderr, /^bad\.yaml:\d+:\d+: unknown key "estimat"/);
  const outcomes = [met!, missed!, failed!].map((r) => JSON.parse(r.stdout).outcome);
  deepEqual(outcomes, ["met", "missed", "failed"]);
  const r = await t.thaw(["status", "--json"]);
  type Row = { runbook: string; state: string; outcome: string };
  const rows = (JSON.parse(r.stdout) as Row[]).map((x) => [x.runbook, x.state, x.outcome]);
  deepEqual(rows.sort(), [
    ["exit-failed", "failed", "failed"],
    ["exit-met", "done", "met"],
    ["exit-missed", "done", "missed"],
  ]);
}

const CASES: readonly [string, (t: Ctx) => Promise<void>][] = [
  [
    "thaw status and thaw approve steer a run at its approval gate, from other processes",
    statusAndApprove,
  ],
  ["thaw serve shows and approves a run of another process, with its token only", serveAndApprove],
  ["thaw cancel stops a running step's processes, from another process", cliCancel],
  ["POST /runs/ID/cancel stops a run of another process, with its token only", httpCancel],
  [
    "thaw done lets a resumed run go on, when a step was running at kill -9 of the engine",
    killResumeDone,
  ],
  [
    "thaw cancel stops the processes a killed engine left, when the run is interrupted",
    cancelInterrupted,
  ],
  ["thaw done records a step of a failed run, and thaw resume carries on after it", doneRecorded],
  ["thaw run exits 0, 3, 1 or 2 as the README says, when runs share the store", exitCodes],
];
