/**
 * The live engine for real: real files, real processes, a real HTTP server on 127.0.0.1, the
 * engine in a child process that another process steers through the store, and an engine killed
 * with SIGKILL (with its children) and resumed.
 *
 * @module
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { runLive } from "../engine/live/loop.ts";
import { readRunbook } from "../engine/runbook/load.ts";
import { openStore } from "../engine/store/mod.ts";
import { processAlive } from "../steps/process/process.ts";
import { startBackupServer } from "./http_backup_server.ts";
import { engine, exists, firstRun, inDir, thaw, waitFor } from "./live_helpers.ts";

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let k = 0; k < n; k += 65536) crypto.getRandomValues(out.subarray(k, k + 65536));
  return out;
}

/** Runs `runbook` (text) in `dir` with the live engine in this process. */
async function live(dir: string, text: string, vars: Record<string, string> = {}) {
  await Deno.writeTextFile(join(dir, "rb.yaml"), text);
  const rb = await readRunbook("rb.yaml", { cwd: dir, vars });
  const store = await openStore(join(dir, "state.db"));
  try {
    const { report } = await runLive({
      runbook: rb,
      store,
      run: "R" + crypto.randomUUID().slice(0, 8),
      fileSha256: "x",
    });
    const events = await store.stepEvents(report.run);
    return { report, events };
  } finally {
    await store.close();
  }
}

Deno.test("runLive() fetches and runs steps for real, when the backup is a local file tree", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = randomBytes(3 * 1024 * 1024);
    await Deno.mkdir(join(dir, "backup"));
    await Deno.writeFile(join(dir, "backup/db.dump"), data);
    const { report, events } = await live(
      dir,
      `runbook: 1
name: local
bandwidth: 100MB/s
steps:
  - id: fetch-db
    fetch: { from: ./backup/db.dump, to: ./restore/db.dump, sha256: ${sha256(data)} }
  - id: restore
    needs: [fetch-db]
    run: wc -c < "\${{ steps.fetch-db.to }}" > restored.txt && echo "$THAW_STEP" >> restored.txt
    milestone: up
`,
    );
    equal(report.outcome, "met");
    equal(report.mode, "live");
    deepEqual(await Deno.readFile(join(dir, "restore/db.dump")), data);
    equal((await Deno.readTextFile(join(dir, "restored.txt"))).trim(), `${data.length}\nrestore`);
    const fetch = report.steps.find((s) => s.id === "fetch-db")!;
    equal(fetch.bytes, data.length);
    ok(report.ttr_s! >= fetch.end_s!);
    // The store holds every state change, in order.
    deepEqual(events.map((e) => e.seq), events.map((_, k) => k + 1));
    ok(events.some((e) => e.step === "restore" && e.state === "frozen"));
    ok(events.some((e) => e.step === "restore" && e.state === "done"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runLive() passes hostile vars to commands literally, in every quoting place", async () => {
  const hostile = [`"; touch X; "`, "$(touch X)", `'; touch X; '`, "`touch X`"];
  for (const value of hostile) {
    const dir = await Deno.makeTempDir();
    try {
      const { report } = await live(
        dir,
        `runbook: 1
name: quoting
vars: { v: plain }
steps:
  - { id: bare, run: "printf '%s' \${{ vars.v }} > bare.out" }
  - { id: dq, run: "printf '%s' \\"\${{ vars.v }}\\" > dq.out" }
  - { id: sq, run: "printf '%s' '\${{ vars.v }}' > sq.out" }
`,
        { v: value },
      );
      equal(report.outcome, "met", value);
      equal(await exists(join(dir, "X")), false, `${value}: a command ran`);
      for (const place of ["bare", "dq", "sq"]) {
        equal(await Deno.readTextFile(join(dir, `${place}.out`)), value, `${value} ${place}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("runLive() fails clearly and leaves nothing at `to`, when the source is corrupt", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "backup"));
    await Deno.writeFile(join(dir, "backup/db.dump"), randomBytes(100_000));
    const { report, events } = await live(
      dir,
      `runbook: 1
name: corrupt
steps:
  - id: fetch-db
    fetch: { from: ./backup/db.dump, to: ./restore/db.dump, sha256: ${"ab".repeat(32)} }
  - { id: use, needs: [fetch-db], run: "true" }
`,
    );
    equal(report.outcome, "failed");
    equal(report.steps.find((s) => s.id === "use")!.state, "skipped");
    match(events.find((e) => e.state === "failed")!.detail!, /sha256 mismatch/);
    equal(await exists(join(dir, "restore/db.dump")), false);
    const left = [...Deno.readDirSync(join(dir, "restore"))].map((e) => e.name);
    deepEqual(left, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw cancel stops a run from another process, when a step is running", async () => {
  await inDir(
    `runbook: 1
name: long
steps:
  - { id: wait, run: "echo $$ > pid; sleep 100 & echo $! >> pid; wait" }
  - { id: after, needs: [wait], run: "touch after" }
`,
    async (dir) => {
      const { output } = engine(dir, ["run", "rb.yaml"]);
      const run = await waitFor(dir, async (s) => {
        const r = await firstRun(s);
        const steps = r ? await s.steps(r.id) : [];
        return steps.some((x) => x.step === "wait" && x.state === "running") &&
            (await exists(join(dir, "pid")))
          ? r
          : undefined;
      });
      const c = await thaw(dir, ["cancel", run!.id]);
      equal(c.code, 0, c.stderr);
      const done = await output;
      equal(done.code, 1, new TextDecoder().decode(done.stderr));
      const pids = (await Deno.readTextFile(join(dir, "pid"))).trim().split("\n").map(Number);
      for (const pid of pids) {
        // Zombies awaiting their reaper do not count: they run nothing.
        equal(processAlive(pid), false, `pid ${pid} left`);
      }
      equal(await exists(join(dir, "after")), false);
      const status = await thaw(dir, ["status", "--json"]);
      const runs = JSON.parse(status.stdout);
      equal(runs[0].run, run!.id);
      equal(runs[0].state, "cancelled");
      deepEqual(Object.keys(runs[0]).slice(0, 4), ["run", "runbook", "mode", "state"]);
    },
  );
});

Deno.test("thaw approve lets a waiting step run, when given from another process", async () => {
  await inDir(
    `runbook: 1
name: gated
steps:
  - { id: cutover, run: "touch cut", approval: "Switch traffic?" }
`,
    async (dir) => {
      const { output } = engine(dir, ["run", "rb.yaml"]);
      const run = await waitFor(dir, async (s) => {
        const r = await firstRun(s);
        const steps = r ? await s.steps(r.id) : [];
        return steps.some((x) => x.detail?.startsWith("waiting for approval")) ? r : undefined;
      });
      equal(await exists(join(dir, "cut")), false);
      const bad = await thaw(dir, ["approve", run!.id, "cutovr"]);
      equal(bad.code, 2);
      match(bad.stderr, /did you mean "cutover"/);
      const a = await thaw(dir, ["approve", run!.id, "cutover"]);
      equal(a.code, 0, a.stderr);
      equal((await output).code, 0);
      equal(await exists(join(dir, "cut")), true);
    },
  );
});

Deno.test("thaw resume continues a run after kill -9, without redoing done steps", async () => {
  const dir = await Deno.makeTempDir();
  const served = join(dir, "served");
  await Deno.mkdir(served);
  const size = 12 * 1024 * 1024;
  const data = randomBytes(size);
  await Deno.writeFile(join(served, "big.bin"), data);
  const server = startBackupServer(served);
  try {
    await Deno.writeTextFile(
      join(dir, "rb.yaml"),
      `runbook: 1
name: resumable
bandwidth: 4MB/s
steps:
  - { id: first, run: "echo ran >> first.log" }
  - id: fetch-big
    needs: [first]
    fetch: { from: "${server.url}big.bin", to: ./restore/big.bin, sha256: ${sha256(data)} }
  - { id: last, needs: [fetch-big], run: "touch last" }
`,
    );
    const { child, output } = engine(dir, ["run", "rb.yaml"]);
    const run = await waitFor(dir, async (s) => {
      const r = await firstRun(s);
      const p = r ? await s.progress(r.id) : [];
      return p.some((x) => x.step === "fetch-big" && x.bytes > 2 * 1024 * 1024) ? r : undefined;
    });
    Deno.kill(-child.pid, "SIGKILL");
    await output;
    // Nothing partial at `to`; the bytes so far wait under the temporary name.
    equal(await exists(join(dir, "restore/big.bin")), false);
    const status = await thaw(dir, ["status", "--json"]);
    equal(JSON.parse(status.stdout)[0].state, "interrupted");

    const r = await thaw(dir, ["resume", run!.id, "--json"]);
    equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    equal(report.outcome, "met");
    deepEqual(await Deno.readFile(join(dir, "restore/big.bin")), data);
    equal(await Deno.readTextFile(join(dir, "first.log")), "ran\n", "first ran again");
    ok(await exists(join(dir, "last")));
    // The resumed fetch asked only for what was missing: from at least the bytes seen before.
    const ranges = server.requests.map((q) => /^bytes=(\d+)-/.exec(q.range ?? "")?.[1]);
    const from = Math.max(...ranges.filter((x) => x !== undefined).map(Number));
    ok(from >= 2 * 1024 * 1024, `resumed from ${from}`);
    deepEqual([...Deno.readDirSync(join(dir, "restore"))].map((e) => e.name), ["big.bin"]);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw drill --simulate times a step from history, when a live drill has run it", async () => {
  await inDir(
    `runbook: 1
name: learn
steps:
  - { id: slow, run: "sleep 0.3", milestone: up }
`,
    async (dir) => {
      const before = await thaw(dir, ["drill", "--simulate", "rb.yaml"]);
      equal(before.code, 2);
      match(before.stderr, /run step "slow" has no estimate/);
      const drill = await thaw(dir, ["drill", "rb.yaml", "--json"]);
      equal(drill.code, 0, drill.stderr);
      const measured = JSON.parse(drill.stdout).ttr_s;
      const after = await thaw(dir, ["drill", "--simulate", "rb.yaml", "--json"]);
      equal(after.code, 0, after.stderr);
      const predicted = JSON.parse(after.stdout).ttr_s;
      ok(predicted >= 0.3 && Math.abs(predicted - measured) < 0.01, `${predicted} vs ${measured}`);
      const plan = await thaw(dir, ["plan", "rb.yaml", "--json"]);
      equal(JSON.parse(plan.stdout).simulated.aggressive.ttr_s, predicted);
    },
  );
});
