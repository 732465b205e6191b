import assert from "node:assert/strict";
import { join } from "node:path";
import { probe } from "../steps/run/probe.ts";
import { groupAlive, killGroup } from "../steps/process/process.ts";
import { runStep } from "../steps/run/run.ts";
import { freePort } from "./live_helpers.ts";
import {
  type Clock,
  type ProbeSpec,
  realClock,
  type RunContext,
  type RunSpec,
  type Spawned,
} from "../steps/types.ts";

const PATH = Deno.env.get("PATH") ?? "/usr/bin:/bin";

/** Alive, read from /proc: a zombie waiting for its reaper is not. */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !"ZXx".includes(stat.slice(stat.lastIndexOf(")") + 2)[0] ?? "Z");
  } catch {
    return false;
  }
}

function spec(command: string, more: Partial<RunSpec> = {}): RunSpec {
  return { command, shell: "bash", retries: 0, background: false, ...more };
}

/** A context in a fresh temporary directory; `text()` is what the command wrote so far. */
async function context(more: Partial<RunContext> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "thaw_run_" });
  const decoder = new TextDecoder();
  let out = "";
  const spawned: Spawned[] = [];
  const logs: string[] = [];
  const ctx: RunContext = {
    signal: new AbortController().signal,
    clock: realClock,
    env: { PATH },
    cwd: dir,
    log: (line) => logs.push(line),
    onSpawn: (p) => spawned.push(p),
    output: (chunk) => out += decoder.decode(chunk, { stream: true }),
    ...more,
  };
  return {
    ctx,
    dir,
    spawned,
    logs,
    text: () => out,
    /** The numbers the command printed, one a line. */
    pids: () => out.split("\n").filter((l) => /^\d+$/.test(l)).map(Number),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > 1000) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The reason of a failed effect or probe (fails the test if it passed). */
function reason(r: { ok: true } | { ok: false; reason: string }): string {
  assert(!r.ok, "expected a failure");
  return r.reason;
}

/** A probe polled every 20 ms. */
const poll = (kind: ProbeSpec["kind"], target: string, timeoutMs: number): ProbeSpec => ({
  kind,
  target,
  timeoutMs,
  intervalMs: 20,
});

/** An HTTP server on a free port of 127.0.0.1. */
const serve = (handler: (req: Request) => Response) =>
  Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);

/** A clock whose sleeps pass at once, recording how long they were asked to be. */
function instantClock(): Clock & { slept: number[] } {
  const slept: number[] = [];
  return {
    slept,
    now: () => performance.now(),
    sleep: (ms, signal) => {
      slept.push(ms);
      return signal?.aborted ? Promise.reject(signal.reason) : Promise.resolve();
    },
  };
}

Deno.test("runStep() succeeds when the command exits 0, and reports its process group", async () => {
  await using t = await context();
  const effect = await runStep(spec("echo $$"), t.ctx);
  assert.deepEqual(effect, { ok: true, attempts: 1 });
  assert.equal(t.spawned.length, 1);
  assert.equal(t.spawned[0]!.pid, t.pids()[0]);
  assert.equal(t.spawned[0]!.pgid, t.spawned[0]!.pid);
});

Deno.test("runStep() fails with the exit code and the last stderr line", async () => {
  await using t = await context();
  const effect = await runStep(spec("echo first >&2; echo 'disk full' >&2; exit 3"), t.ctx);
  assert.deepEqual(effect, {
    ok: false,
    attempts: 1,
    reason: "exit code 3: disk full",
    exitCode: 3,
  });
  // Without an output sink too.
  const { output: _, ...ctx } = t.ctx;
  const quiet = await runStep(spec("echo out; echo 'no such table' >&2; exit 1"), ctx);
  assert.equal(reason(quiet), "exit code 1: no such table");
});

Deno.test("runStep() runs in ctx.cwd with exactly ctx.env", async () => {
  await using t = await context({ env: { PATH, THAW_STEP: "db" } });
  Deno.env.set("THAW_TEST_LEAK", "leaked");
  try {
    const effect = await runStep(
      spec(
        'pwd; echo "step=$THAW_STEP"; echo "leak=${THAW_TEST_LEAK-absent}"; echo "home=${HOME-absent}"',
      ),
      t.ctx,
    );
    assert(effect.ok);
  } finally {
    Deno.env.delete("THAW_TEST_LEAK");
  }
  assert.deepEqual(t.text().trim().split("\n"), [
    await Deno.realPath(t.dir),
    "step=db",
    "leak=absent",
    "home=absent",
  ]);
});

Deno.test("runStep() runs the command with the shell it is given", async () => {
  await using t = await context();
  const effect = await runStep(spec("echo ${0##*/}", { shell: "sh" }), t.ctx);
  assert(effect.ok);
  assert.equal(t.text().trim(), "sh");
});

Deno.test("runStep() fails when the shell cannot be started", async () => {
  await using t = await context();
  const effect = await runStep(spec("true", { shell: "no-such-shell-thaw" }), t.ctx);
  assert.match(reason(effect), /^cannot start no-such-shell-thaw: /);
});

Deno.test("runStep() kills the whole process group, when the timeout passes", async () => {
  await using t = await context();
  const effect = await runStep(
    spec("echo $$; sleep 100 & echo $!; sleep 100 & echo $!; wait", { timeoutMs: 300 }),
    t.ctx,
  );
  const pids = t.pids();
  assert.equal(pids.length, 3);
  assert.deepEqual(pids.filter(alive), []);
  assert.equal(reason(effect), `timed out after 300ms; process group ${pids[0]} killed`);
  assert(!groupAlive(pids[0]!));
});

Deno.test("runStep() stops what the command left running, when it exits", async () => {
  await using t = await context();
  const effect = await runStep(spec("sleep 100 & echo $!"), t.ctx);
  assert(effect.ok);
  assert.deepEqual(t.pids().filter(alive), []);
});

Deno.test("runStep() retries with exponential backoff on the context's clock", async () => {
  const clock = instantClock();
  await using t = await context({ clock });
  const command = "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; " +
    '[ "$n" -ge 3 ] || { echo "try $n failed" >&2; exit 1; }';
  const effect = await runStep(spec(command, { retries: 5, backoffMs: 10 }), t.ctx);
  assert.deepEqual(effect, { ok: true, attempts: 3 });
  assert.deepEqual(clock.slept, [10, 20]);
  assert.equal(t.spawned.length, 3);
  assert.equal(t.logs.length, 2);
  assert.match(t.logs[0]!, /^attempt 1 failed: exit code 1: try 1 failed; retrying in 10ms$/);
});

Deno.test("runStep() gives the last failure once the retries are spent", async () => {
  await using t = await context();
  const effect = await runStep(spec("echo nope >&2; exit 2", { retries: 2, backoffMs: 5 }), t.ctx);
  assert.deepEqual(effect, { ok: false, attempts: 3, reason: "exit code 2: nope", exitCode: 2 });
});

Deno.test("runStep() kills the whole process group, when the signal aborts", async () => {
  const ac = new AbortController();
  await using t = await context({ signal: ac.signal });
  const running = runStep(spec("echo $$; sleep 100 & echo $!; wait", { retries: 3 }), t.ctx);
  await until(() => t.pids().length === 2);
  ac.abort();
  const effect = await running;
  assert.deepEqual(effect, { ok: false, attempts: 1, reason: "cancelled" });
  assert.deepEqual(t.pids().filter(alive), []);
  // Nothing starts once it has aborted.
  assert.deepEqual(await runStep(spec("echo $$"), t.ctx), {
    ok: false,
    attempts: 0,
    reason: "cancelled",
  });
  assert.equal(t.spawned.length, 1);
});

Deno.test("runStep() checks the ready probe after a command exits 0", async () => {
  await using t = await context();
  assert(
    (await runStep(spec("touch marker", { ready: poll("run", "test -f marker", 2000) }), t.ctx)).ok,
  );
  const effect = await runStep(spec("true", { ready: poll("run", "test -f missing", 200) }), t.ctx);
  assert.match(reason(effect), /^ready probe failed: run test -f missing: exit 1 for /);
});

const SERVER = `
const port = Number(Deno.args[0]);
Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, () => new Response("up"));
`;

Deno.test("runStep() leaves a background service running once it is ready, and stop() ends it", async () => {
  await using t = await context();
  await Deno.writeTextFile(join(t.dir, "server.ts"), SERVER);
  const port = freePort();
  const home = Object.fromEntries(["HOME", "DENO_DIR"].flatMap((n) => {
    const value = Deno.env.get(n);
    return value === undefined ? [] : [[n, value]];
  }));
  const ctx = { ...t.ctx, env: { PATH, DENO_NO_UPDATE_CHECK: "1", ...home } };
  const effect = await runStep(
    spec(`echo $$; '${Deno.execPath()}' run -A server.ts ${port} & echo $!; wait`, {
      background: true,
      ready: poll("http", `http://127.0.0.1:${port}/healthz`, 20_000),
    }),
    ctx,
  );
  assert(effect.ok && effect.service, JSON.stringify(effect));
  const service = effect.service;
  const res = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(await res.text(), "up");
  const pids = t.pids();
  assert.equal(pids.length, 2);
  assert.equal(service.pid, pids[0]);
  assert.deepEqual(pids.filter(alive), pids);
  await service.stop(1000);
  assert.deepEqual(pids.filter(alive), []);
  assert(!groupAlive(service.pgid));
  assert.equal(typeof await service.exited, "number");
});

Deno.test("runStep() fails a background process that exits before it is ready", async () => {
  await using t = await context();
  const effect = await runStep(
    spec("echo 'bad config' >&2; exit 4", {
      background: true,
      ready: poll("tcp", `127.0.0.1:${freePort()}`, 10_000),
    }),
    t.ctx,
  );
  assert.deepEqual(effect, {
    ok: false,
    attempts: 1,
    reason: "exit code 4 before it was ready: bad config",
    exitCode: 4,
  });
});

Deno.test("runStep() kills a background service whose ready probe fails, and retries it", async () => {
  await using server = serve(() => new Response("starting", { status: 503 }));
  await using t = await context();
  const url = `http://127.0.0.1:${server.addr.port}/healthz`;
  const effect = await runStep(
    spec("echo $$; sleep 100 & echo $!; wait", {
      background: true,
      retries: 1,
      backoffMs: 10,
      ready: poll("http", url, 200),
    }),
    t.ctx,
  );
  assert.equal(effect.attempts, 2);
  assert.match(reason(effect), new RegExp(`^ready probe failed: ${url}: 503 for `));
  assert.equal(t.pids().length, 4);
  assert.deepEqual(t.pids().filter(alive), []);
});

Deno.test("runStep() returns a background service without a probe at once", async () => {
  await using t = await context();
  const effect = await runStep(spec("sleep 100", { background: true }), t.ctx);
  assert(effect.ok && effect.service);
  assert(alive(effect.service.pid));
  await effect.service.stop(0);
  assert(!alive(effect.service.pid));
});

const ctl = () => ({
  signal: new AbortController().signal,
  clock: realClock,
  env: { PATH },
  cwd: Deno.cwd(),
});

Deno.test("probe() passes on 2xx and fails on 503 over http", async () => {
  await using server = serve((req) =>
    new Response("x", { status: new URL(req.url).pathname === "/ok" ? 200 : 503 })
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  assert((await probe(poll("http", `${base}/ok`, 1000), ctl())).ok);
  const bad = await probe(poll("http", `${base}/bad`, 200), ctl());
  assert.match(reason(bad), new RegExp(`^${base}/bad: 503 for \\S+$`));
});

Deno.test("probe() over http says when nothing listens or nothing answers", async () => {
  const refused = await probe(poll("http", `http://127.0.0.1:${freePort()}/`, 150), ctl());
  assert.match(reason(refused), /: connection refused for /);
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })().catch(() => {});
  const silent = await probe(poll("http", `http://127.0.0.1:${listener.addr.port}/`, 200), ctl());
  assert.match(reason(silent), /: no answer within \d+ms for /);
  listener.close();
  await accepting;
  for (const c of held) c.close();
});

Deno.test("probe() over tcp passes on a listening port and fails on a closed one", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  assert((await probe(poll("tcp", `127.0.0.1:${listener.addr.port}`, 1000), ctl())).ok);
  const port = freePort();
  const bad = await probe(poll("tcp", `127.0.0.1:${port}`, 150), ctl());
  assert.match(reason(bad), new RegExp(`^127\\.0\\.0\\.1:${port}: connection refused for `));
});

Deno.test("probe() runs a command: exit 0 passes, exit 1 fails", async () => {
  assert((await probe(poll("run", "exit 0", 1000), ctl())).ok);
  const bad = await probe(poll("run", "echo 'not yet' >&2; exit 1", 150), ctl());
  assert.match(reason(bad), /: exit 1: not yet for /);
});

Deno.test("probe() kills a run command that outlives the probe's time", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw_probe_" });
  try {
    const result = await probe(poll("run", "echo $$ > pid; sleep 100", 200), {
      ...ctl(),
      cwd: dir,
    });
    assert.match(reason(result), /: still running after \d+ms \(killed\) for /);
    const pid = Number(await Deno.readTextFile(join(dir, "pid")));
    assert(!alive(pid) && !groupAlive(pid));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("probe() stops when the signal aborts", async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  const result = await probe(poll("tcp", `127.0.0.1:${freePort()}`, 60_000), {
    ...ctl(),
    signal: ac.signal,
  });
  assert.deepEqual(result, { ok: false, reason: "cancelled" });
});

Deno.test("killGroup() stops a group it did not start, and refuses pgids 0 and 1", async () => {
  const child = new Deno.Command("bash", {
    args: ["-c", "trap '' TERM; echo $$; sleep 100 & echo $!; wait"],
    detached: true,
    stdin: "null",
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (text.split("\n").length < 3) text += (await reader.read()).value ?? "";
  await reader.cancel();
  const [leader, sleeper] = text.trim().split("\n").map(Number) as [number, number];
  assert(groupAlive(leader));
  // The shell ignores SIGTERM: SIGKILL is needed after the grace.
  assert.equal(await killGroup(leader, 100), "killed");
  await child.status;
  assert(!alive(leader) && !alive(sleeper));
  assert.equal(await killGroup(leader, 100), "gone");
  await assert.rejects(() => killGroup(1), RangeError);
  await assert.rejects(() => killGroup(0), RangeError);
});

Deno.test("runStep() has a background service append its output to its log file itself", async () => {
  await using t = await context();
  const log = join(t.dir, "svc.log");
  await Deno.writeTextFile(log, "earlier\n");
  const effect = await runStep(
    spec("echo hello; echo oops >&2; exec sleep 100", {
      background: true,
      ready: poll("run", `grep -q oops '${log}'`, 10_000),
    }),
    { ...t.ctx, logFile: log },
  );
  assert(effect.ok && effect.service, JSON.stringify(effect));
  assert.equal(await Deno.readTextFile(log), "earlier\nhello\noops\n");
  assert.equal(t.text(), "", "nothing went through the engine's pipes");
  assert.equal((await Deno.stat(log)).mode! & 0o777, 0o644, "an existing log keeps its mode");
  await effect.service.stop(0);
});

Deno.test("runStep() reads why a logged background process died from its log file", async () => {
  await using t = await context();
  const log = join(t.dir, "svc.log");
  await Deno.writeTextFile(log, "a line of an earlier attempt\n");
  const effect = await runStep(
    spec("echo 'bad config' >&2; echo; exit 4", {
      background: true,
      ready: poll("tcp", `127.0.0.1:${freePort()}`, 10_000),
    }),
    { ...t.ctx, logFile: log },
  );
  assert.equal(reason(effect), "exit code 4 before it was ready: bad config");
  const fresh = join(t.dir, "fresh.log");
  const quiet = await runStep(
    spec("exit 5", { background: true, ready: poll("tcp", `127.0.0.1:${freePort()}`, 10_000) }),
    { ...t.ctx, logFile: fresh },
  );
  assert.equal(reason(quiet), "exit code 5 before it was ready");
  assert.equal((await Deno.stat(fresh)).mode! & 0o777, 0o600);
});

Deno.test("runStep() service's lost settles with why it exited after it was ready, never after stop()", async () => {
  await using t = await context();
  const effect = await runStep(
    spec("sleep 0.2; echo 'fatal: disk gone' >&2; exit 3", {
      background: true,
      ready: poll("run", "true", 10_000),
    }),
    t.ctx,
  );
  assert(effect.ok && effect.service);
  assert.equal(await effect.service.lost, "exit code 3 after it was ready: fatal: disk gone");
  const stopped = await runStep(spec("exec sleep 100", { background: true }), t.ctx);
  assert(stopped.ok && stopped.service);
  let settled = false;
  void stopped.service.lost.then(() => settled = true);
  await stopped.service.stop(0);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(settled, false);
});

Deno.test("runStep() in a drill fails without starting, when its ready probe already passes", async () => {
  await using t = await context();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const target = `127.0.0.1:${listener.addr.port}`;
  const s = spec("touch started; exec sleep 100", {
    background: true,
    retries: 2,
    ready: poll("tcp", target, 5_000),
  });
  const effect = await runStep(s, { ...t.ctx, drill: true });
  assert.equal(effect.attempts, 1);
  assert.match(reason(effect), new RegExp(`^something else already answers on ${target} `));
  assert.equal(t.spawned.length, 0);
  await assert.rejects(Deno.stat(join(t.dir, "started")));
  // Not a drill: the probe passing is the service being ready.
  const real = await runStep(s, t.ctx);
  assert(real.ok && real.service);
  await real.service.stop(0);
});

Deno.test({
  name: "runStep() runs the command and its run: probe as spec.user, with its HOME and USER",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    await using t = await context();
    const effect = await runStep(
      spec('id -un; echo "$USER $LOGNAME $HOME"', {
        user: "nobody",
        ready: poll("run", 'test "$(id -un)" = nobody', 5_000),
      }),
      t.ctx,
    );
    assert.deepEqual(effect, { ok: true, attempts: 1 });
    assert.equal(t.text(), "nobody\nnobody nobody /nonexistent\n");
    const fails = await runStep(
      spec("true", { user: "root", ready: poll("run", 'test "$(id -un)" = nobody', 100) }),
      t.ctx,
    );
    assert.match(reason(fails), /^ready probe failed: run test/);
  },
});
