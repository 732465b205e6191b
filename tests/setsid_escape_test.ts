/**
 * A process that leaves its step's process group and session with `setsid` is still stopped
 * when the step times out, is cancelled, or is cleaned up by a resumed engine after a killed one:
 * each step's group lives in a cgroup of its own (steps/process/cgroup.ts). Real processes; needs a
 * writable cgroup2 hierarchy (root), else these tests are ignored (see the README).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cgroupsAvailable } from "../steps/process/cgroup.ts";
import { killGroup, processAlive, spawnGroup } from "../steps/process/process.ts";
import { runStep } from "../steps/run/run.ts";
import { realClock, type RunContext } from "../steps/types.ts";

const PATH = Deno.env.get("PATH") ?? "/usr/bin:/bin";
const ignore = !cgroupsAvailable();

/** Waits (at most `ms`) for `path` to hold a pid; returns it. */
async function pidFrom(path: string, ms = 10000): Promise<number> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const text = await Deno.readTextFile(path).catch(() => "");
    if (/^\d+\n/.test(text)) return Number(text.trim());
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no pid in ${path}`);
}

/** Waits (at most `ms`) for `pid` to be gone; true if it went. */
async function gone(pid: number, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (processAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** The escaped process: a `sleep 1000` in a session of its own, its pid in `escaped.pid`. */
const ESCAPE = "setsid sleep 1000 & echo $! > escaped.pid; sleep 100";

async function withDir(body: (dir: string, ctx: RunContext) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "thaw-setsid-" });
  const ctx: RunContext = {
    signal: new AbortController().signal,
    clock: realClock,
    env: { PATH, THAW_RUN_ID: "01TESTSETSIDESCAPE0000000", THAW_STEP: "escape" },
    cwd: dir,
    log: () => {},
  };
  let escaped: number | undefined;
  try {
    await body(dir, ctx);
  } finally {
    escaped = Number(await Deno.readTextFile(join(dir, "escaped.pid")).catch(() => "0"));
    if (escaped > 1 && processAlive(escaped)) Deno.kill(escaped, "SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "runStep() stops a process that left its group with setsid, when the step times out",
  ignore,
  fn: () =>
    withDir(async (dir, ctx) => {
      const effect = await runStep({
        command: ESCAPE,
        shell: "bash",
        retries: 0,
        background: false,
        timeoutMs: 500,
      }, ctx);
      assert.equal(effect.ok, false);
      const escaped = await pidFrom(join(dir, "escaped.pid"));
      assert.ok(await gone(escaped), `the escaped sleep ${escaped} still runs after the timeout`);
    }),
});

Deno.test({
  name: "runStep() stops a process that left its group with setsid, when the step is cancelled",
  ignore,
  fn: () =>
    withDir(async (dir, base) => {
      const ac = new AbortController();
      const running = runStep({ command: ESCAPE, shell: "bash", retries: 0, background: false }, {
        ...base,
        signal: ac.signal,
      });
      const escaped = await pidFrom(join(dir, "escaped.pid"));
      assert.ok(processAlive(escaped));
      ac.abort();
      const effect = await running;
      assert.equal(effect.ok, false);
      assert.equal(!effect.ok && effect.reason, "cancelled");
      assert.ok(await gone(escaped), `the escaped sleep ${escaped} still runs after the cancel`);
    }),
});

Deno.test({
  name:
    "killGroup() stops what a killed engine's step left with setsid, when a resumed engine cleans up",
  ignore,
  fn: () =>
    withDir(async (dir, ctx) => {
      // Another engine starts the step and is killed: only the pgid in the store remains.
      const engine = new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          `import { spawnGroup } from ${
            JSON.stringify(new URL("../steps/process/process.ts", import.meta.url).href)
          };
           const g = spawnGroup("bash", ${JSON.stringify(ESCAPE)}, ${
            JSON.stringify({ cwd: dir, env: ctx.env })
          });
           console.log(g.pgid);
           Deno.kill(Deno.pid, "SIGKILL");`,
        ],
        stdout: "piped",
        stderr: "inherit",
      });
      const out = await engine.output();
      const pgid = Number(new TextDecoder().decode(out.stdout).trim());
      assert.ok(pgid > 1, "the other engine printed no pgid");
      const escaped = await pidFrom(join(dir, "escaped.pid"));
      assert.ok(processAlive(escaped) && processAlive(pgid));
      await killGroup(pgid, 1000);
      assert.ok(await gone(escaped), `the escaped sleep ${escaped} still runs after the cleanup`);
    }),
});

Deno.test({
  name: "killGroup() leaves a daemon started with setsid alone, when its command exited on its own",
  ignore,
  fn: () =>
    withDir(async (dir, ctx) => {
      // It exits once the daemon leads its own session (field 6 of /proc/PID/stat).
      const command = "setsid sleep 1000 & echo $! > escaped.pid; " +
        'for i in $(seq 500); do [ "$(cut -d" " -f6 /proc/$!/stat)" = $! ] && break; sleep 0.01; done';
      const g = spawnGroup("bash", command, {
        cwd: dir,
        env: ctx.env,
      });
      await g.status;
      const daemon = await pidFrom(join(dir, "escaped.pid"));
      await killGroup(g.pgid, 1000);
      assert.ok(processAlive(daemon), "a daemon the command left on purpose was stopped");
      await g.closeOutput();
    }),
});
