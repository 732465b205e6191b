/**
 * Background services through the real CLI: they outlive a real run (output in their log, listed
 * by `thaw status`), they are watched until the run ends, and a drill refuses a stale service
 * that already answers on the address before its step starts.
 */
import { equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { watchRecorded } from "../engine/live/services.ts";
import { openStore } from "../engine/store/mod.ts";
import { groupAlive, killGroup, spawnGroup } from "../steps/process/process.ts";
import { freePort, thaw } from "./live_helpers.ts";
import { thawCommand } from "./paths.ts";
import { newRun } from "./store_conformance.ts";

/** A free port on 127.0.0.1 (closed again at once). */
/** Runs `body` in a fresh directory holding `rb.yaml`, then removes it. */
async function inDir(runbook: string, body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "thaw_service_" });
  try {
    await Deno.writeTextFile(join(dir, "rb.yaml"), runbook);
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A server that prints a line every few milliseconds and one per request, with plain writes that
 * throw on a broken pipe, as most programs die of one.
 */
const CHATTY = `
const port = Number(Deno.args[0]);
const say = (text) => Deno.stdout.writeSync(new TextEncoder().encode(text + "\\n"));
setInterval(() => say("tick ".repeat(20)), 5);
Deno.serve({ hostname: "127.0.0.1", port, onListen() { say("listening"); } }, () => {
  say("request");
  return new Response("up");
});
`;

Deno.test("thaw run leaves a chatty service answering after it exits, its output in its log", async () => {
  const port = freePort();
  await inDir(
    `runbook: 1
name: chatty
steps:
  - id: web
    run: exec deno run -A server.ts ${port}
    background: true
    ready: { http: "http://127.0.0.1:${port}/healthz", timeout: 60s }
`,
    async (dir) => {
      await Deno.writeTextFile(join(dir, "server.ts"), CHATTY);
      let pgid = 0;
      try {
        const run = await thaw(dir, ["run", "rb.yaml", "--json"]);
        equal(run.code, 0, run.stderr);
        const id = JSON.parse(run.stdout).run as string;
        const status = JSON.parse((await thaw(dir, ["status", id, "--json"])).stdout);
        equal(status.services.length, 1, JSON.stringify(status));
        const service = status.services[0];
        pgid = service.pgid;
        equal(service.step, "web");
        equal(service.log, join(dir, "logs", id, "web.log"));
        // thaw has exited: the service must go on printing, and answering.
        const before = (await Deno.stat(service.log)).size;
        await new Promise((r) => setTimeout(r, 500));
        for (let k = 0; k < 3; k++) {
          const res = await fetch(`http://127.0.0.1:${port}/`);
          equal(await res.text(), "up");
        }
        await new Promise((r) => setTimeout(r, 200));
        ok((await Deno.stat(service.log)).size > before, "the log stopped growing");
        match(await Deno.readTextFile(service.log), /listening[\s\S]*request/);
        const plain = await thaw(dir, ["status", id]);
        match(plain.stdout, new RegExp(`web: pid ${service.pid} \\(running, stop with: kill`));
        match(plain.stdout, /; log .*web\.log/);
      } finally {
        if (pgid > 1) await killGroup(pgid, 1000);
      }
      ok(!groupAlive(pgid));
    },
  );
});

for (const command of ["drill", "run"]) {
  Deno.test(`thaw ${command} fails a service step whose service exits after it was ready, exit 1`, async () => {
    await inDir(
      `runbook: 1
name: crashing
steps:
  - id: svc
    run: "sleep 0.5; echo 'fatal: lost the disk' >&2; exit 3"
    background: true
    ready: { run: "true" }
    milestone: service
  - { id: after, needs: [svc], run: "sleep 2" }
  - { id: other, run: "sleep 2" }
  - { id: last, needs: [other], run: "touch last" }
`,
      async (dir) => {
        const out = await thaw(dir, [command, "rb.yaml", "--json"]);
        equal(out.code, 1, out.stderr);
        const report = JSON.parse(out.stdout);
        equal(report.outcome, "failed");
        const state = (id: string) => report.steps.find((s: { id: string }) => s.id === id).state;
        equal(state("svc"), "failed");
        equal(state("after"), "done"); // it was running: it finishes
        equal(state("last"), "skipped"); // on-failure: abort starts nothing new
        // The reason is on the live lines (stderr with --json).
        match(out.stderr, /svc.*failed.*exit code 3 after it was ready: fatal: lost the disk/);
      },
    );
  });
}

Deno.test("watchRecorded() reports a service a killed engine left, when its group is gone", async () => {
  const store = await openStore(":memory:");
  try {
    await store.createRun(newRun("r1"));
    const group = spawnGroup("sh", "exec sleep 100", { cwd: "/", env: {} });
    await store.addProcess("r1", { step: "svc", pid: group.pid, pgid: group.pgid });
    await store.addProcess("r1", { step: "pending", pid: 999999, pgid: 999999 });
    const lost: string[] = [];
    const stop = watchRecorded(store, "r1", (step) => step === "svc", (step, why) => {
      lost.push(`${step}: ${why}`);
    });
    await new Promise((r) => setTimeout(r, 1200));
    equal(lost.length, 0, "a live service is not lost");
    await killGroup(group.pgid, 0);
    await group.status;
    for (let k = 0; k < 40 && !lost.length; k++) await new Promise((r) => setTimeout(r, 100));
    stop();
    equal(lost.length, 1);
    match(
      lost[0]!,
      new RegExp(`^svc: its service \\(pid ${group.pid}, started before the resume\\) is gone$`),
    );
  } finally {
    await store.close();
  }
});

Deno.test("thaw drill fails a step whose ready probe passes before it starts, naming the address", async () => {
  await using stale = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("stale"),
  );
  const port = stale.addr.port;
  await inDir(
    `runbook: 1
name: stale
steps:
  - id: web
    run: "touch started; sleep 30"
    background: true
    ready: { http: "http://127.0.0.1:${port}/healthz", timeout: 10s }
`,
    async (dir) => {
      const drill = await thaw(dir, ["drill", "rb.yaml", "--json"]);
      equal(drill.code, 1, drill.stderr);
      const report = JSON.parse(drill.stdout);
      equal(report.outcome, "failed");
      match(
        drill.stderr,
        new RegExp(`web.*failed.*something else already answers on 127\\.0\\.0\\.1:${port}`),
      );
      // The drill's own service never started: it would only have died on "address in use".
      ok(!(await Deno.stat(join(dir, "started")).then(() => true, () => false)));
    },
  );
});

/** The engine as a child process (its own process group), with what it prints. */
function engine(dir: string, args: string[]) {
  const child = thawCommand([...args, "--store", join(dir, "state.db")], {
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  const output = child.output();
  /** Its exit code, waited for at most 30 s (then the engine is killed and the test fails). */
  const code = async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), 30_000));
    const done = await Promise.race([output, late]);
    clearTimeout(timer);
    if (done === "late") throw new Error("the engine did not end within 30 s");
    return done.code;
  };
  /** Kills the engine's group if it is still there (a failed test must not leave it running). */
  const kill = async () => {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch { /* gone */ }
    await output.catch(() => {});
  };
  return { child, output, code, kill };
}

/** Polls `thaw status --json` until the run's step `long` runs; its id and the service's pgid. */
async function untilLongRuns(dir: string): Promise<{ id: string; pgid: number }> {
  for (let k = 0; k < 100; k++) {
    const list = await thaw(dir, ["status", "--json"]);
    const id = list.code === 0 ? JSON.parse(list.stdout)[0]?.run : undefined;
    if (id) {
      const s = JSON.parse((await thaw(dir, ["status", id, "--json"])).stdout);
      const long = s.steps?.find((x: { id: string }) => x.id === "long");
      if (long?.state === "running" && s.services?.length === 1) {
        return { id, pgid: s.services[0].pgid };
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the run never got to its long step");
}

const SERVICE_THEN_LONG = `runbook: 1
name: keep
steps:
  - { id: svc, run: "exec sleep 60", background: true, ready: { run: "true" } }
  - { id: long, needs: [svc], run: "sleep 60" }
`;

for (const how of ["SIGINT", "thaw cancel"] as const) {
  Deno.test(`thaw run leaves its ready services running, when cancelled by ${how}`, async () => {
    await inDir(SERVICE_THEN_LONG, async (dir) => {
      const { child, code, kill } = engine(dir, ["run", "rb.yaml"]);
      let pgid = 0;
      try {
        const run = await untilLongRuns(dir);
        pgid = run.pgid;
        if (how === "SIGINT") child.kill("SIGINT");
        else equal((await thaw(dir, ["cancel", run.id])).code, 0);
        equal(await code(), 1);
        ok(groupAlive(pgid), "the ready service was stopped");
        const status = await thaw(dir, ["status", run.id]);
        match(status.stdout, /: cancelled/);
        match(
          status.stdout,
          new RegExp(`svc: pid ${pgid} \\(running, stop with: kill -TERM -${pgid}\\)`),
        );
      } finally {
        if (pgid > 1) await killGroup(pgid, 1000);
        await kill();
      }
    });
  });
}

Deno.test("thaw cancel of an interrupted run leaves its ready services running, a drill's not", async () => {
  for (const command of ["run", "drill"]) {
    await inDir(SERVICE_THEN_LONG, async (dir) => {
      const { kill } = engine(dir, [command, "rb.yaml"]);
      let pgid = 0;
      try {
        const run = await untilLongRuns(dir);
        pgid = run.pgid;
        await kill(); // the engine and its own group, not the steps' sessions
        const cancel = await thaw(dir, ["cancel", run.id]);
        match(cancel.stdout, /was interrupted; marked cancelled/);
        equal(groupAlive(pgid), command === "run", `${command}: service alive?`);
      } finally {
        if (pgid > 1 && groupAlive(pgid)) await killGroup(pgid, 1000);
        await kill();
      }
    });
  }
});
