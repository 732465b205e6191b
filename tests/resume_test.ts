/**
 * Resume and rerun (contract revision 2), for real: an engine in a child process killed with
 * SIGKILL, resumed by another, and steered through the SQLite store with `thaw approve`,
 * `thaw done` and `thaw resume --from`.
 *
 * @module
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { runLive } from "../engine/live/loop.ts";
import { readRunbook } from "../engine/runbook/load.ts";
import type { Report } from "../engine/schedule/report.ts";
import { openStore } from "../engine/store/mod.ts";
import { startBackupServer } from "./http_backup_server.ts";
import { engine, exists, firstRun, inDir, thaw, waitFor } from "./live_helpers.ts";

const lines = async (path: string) =>
  (await Deno.readTextFile(path).catch(() => "")).split("\n").filter(Boolean).length;

Deno.test("thaw resume holds a step that was running when the engine died, until a person decides", async () => {
  // restore-db and load-data may have half-done their work; warm-cache says it may run again.
  await inDir(
    `runbook: 1
name: halfdone
steps:
  - { id: restore-db, run: 'echo ran >> restore.log; [ -e fixed ] || sleep 60' }
  - { id: load-data, run: 'echo ran >> load.log; [ -e fixed ] || sleep 60' }
  - id: warm-cache
    idempotent: true
    run: 'echo ran >> warm.log; [ -e fixed ] || sleep 60'
  - { id: start, needs: [restore-db, load-data], run: "touch started", milestone: up }
`,
    async (dir) => {
      const first = engine(dir, ["run", "rb.yaml"]);
      const run = await waitFor(dir, async (s) => {
        const r = await firstRun(s);
        const running = r ? (await s.steps(r.id)).filter((x) => x.state === "running") : [];
        const logs = await Promise.all(
          ["restore", "load", "warm"].map((f) => lines(`${dir}/${f}.log`)),
        );
        return running.length === 3 && logs.every((n) => n === 1) ? r : undefined;
      });
      Deno.kill(-first.child.pid, "SIGKILL");
      await first.output;
      await Deno.writeTextFile(join(dir, "fixed"), "");

      const status = await thaw(dir, ["status", run!.id]);
      match(status.stdout, /restore-db was running when the engine stopped/);

      const second = engine(dir, ["resume", run!.id]);
      try {
        // The idempotent step runs again at once; the others wait for a person.
        await waitFor(dir, async (s) => {
          const steps = await s.steps(run!.id);
          return steps.find((x) => x.step === "warm-cache")?.state === "done" ? true : undefined;
        }, "warm-cache to run again");
        const waiting = await waitFor(dir, async (s) => {
          const steps = (await s.steps(run!.id)).filter((x) =>
            /engine stopped/.test(x.detail ?? "")
          );
          return steps.length === 2 ? steps : undefined;
        }, "restore-db and load-data to wait");
        match(
          waiting.find((x) => x.step === "restore-db")!.detail!,
          /^restore-db was running when the engine stopped; it may have half-done its work/,
        );
        equal(await lines(join(dir, "restore.log")), 1, "restore-db ran again unasked");
        equal(await lines(join(dir, "load.log")), 1, "load-data ran again unasked");
        equal(await lines(join(dir, "warm.log")), 2);
        equal(await exists(join(dir, "started")), false);

        // thaw status and the API's report say why they wait.
        const text = await thaw(dir, ["status", run!.id]);
        match(text.stdout, /restore-db waits: restore-db was running when the engine stopped/);
        const detail = await waitFor(dir, async (s) => {
          const report = JSON.parse((await s.getRun(run!.id))?.report ?? "{}") as Report;
          return report.steps?.find((x) => x.id === "load-data" && x.detail) ?? undefined;
        }, "the report to show the wait");
        match(detail.detail!, /thaw approve \S+ load-data runs it again/);

        // Approving one that does not wait is refused, exit 2.
        const wrong = await thaw(dir, ["approve", run!.id, "warm-cache"]);
        equal(wrong.code, 2, wrong.stderr);
        match(wrong.stderr, /warm-cache .* has no approval gate and does not wait/);

        const done = await thaw(dir, ["done", run!.id, "restore-db"]);
        equal(done.code, 0, done.stderr);
        const again = await thaw(dir, ["approve", run!.id, "load-data"]);
        equal(again.code, 0, again.stderr);
        const end = await second.output;
        equal(end.code, 0, new TextDecoder().decode(end.stderr));
      } finally {
        try {
          Deno.kill(-second.child.pid, "SIGKILL");
        } catch { /* ended */ }
      }
      equal(await lines(join(dir, "restore.log")), 1, "done by hand: not run again");
      equal(await lines(join(dir, "load.log")), 2, "approved: run again");
      ok(await exists(join(dir, "started")));
      const store = await openStore(join(dir, "state.db"));
      try {
        const events = await store.stepEvents(run!.id);
        ok(
          events.some((e) =>
            e.step === "restore-db" && e.state === "done" && /by hand/.test(e.detail ?? "")
          ),
        );
      } finally {
        await store.close();
      }
    },
  );
});

Deno.test("thaw done marks a step of a failed run done, and resume carries on after it", async () => {
  await inDir(
    `runbook: 1
name: byhand
steps:
  - { id: restore-db, run: "exit 1" }
  - { id: start, needs: [restore-db], run: "touch started" }
`,
    async (dir) => {
      const r = await thaw(dir, ["run", "rb.yaml", "--json"]);
      equal(r.code, 1, r.stderr);
      const id = JSON.parse(r.stdout).run;
      const done = await thaw(dir, ["done", id, "restore-db"]);
      equal(done.code, 0, done.stderr);
      match(done.stdout, /thaw resume/);
      const twice = await thaw(dir, ["done", id, "restore-db"]);
      equal(twice.code, 2);
      match(twice.stderr, /done already/);
      const resumed = await thaw(dir, ["resume", id, "--json"]);
      equal(resumed.code, 0, resumed.stderr);
      const report = JSON.parse(resumed.stdout) as Report;
      equal(report.outcome, "met");
      deepEqual(report.steps.map((s) => s.state), ["done", "done"]);
      ok(await exists(join(dir, "started")));
    },
  );
});

Deno.test("thaw resume --from runs a step and everything downstream again, when the run is done", async () => {
  await inDir(
    `runbook: 1
name: rerun
steps:
  - { id: a, run: "echo ran >> a.log" }
  - { id: b, needs: [a], run: "echo ran >> b.log" }
  - { id: c, needs: [b], run: "echo ran >> c.log", milestone: up }
  - { id: d, run: "echo ran >> d.log" }
`,
    async (dir) => {
      const r = await thaw(dir, ["run", "rb.yaml", "--json"]);
      equal(r.code, 0, r.stderr);
      const id = JSON.parse(r.stdout).run;
      const refused = await thaw(dir, ["resume", id]);
      equal(refused.code, 2);
      match(refused.stderr, /--from STEP/);
      const typo = await thaw(dir, ["resume", id, "--from", "bb"]);
      equal(typo.code, 2);
      match(typo.stderr, /did you mean "b"/);
      const again = await thaw(dir, ["resume", id, "--from", "b", "--json"]);
      equal(again.code, 0, again.stderr);
      const report = JSON.parse(again.stdout) as Report;
      equal(report.outcome, "met");
      deepEqual(
        await Promise.all(["a", "b", "c", "d"].map((s) => lines(join(dir, `${s}.log`)))),
        [1, 2, 2, 1],
      );
      const c = report.steps.find((s) => s.id === "c")!;
      const a = report.steps.find((s) => s.id === "a")!;
      ok(c.start_s! > a.end_s!, "c ran again after the first run");
      equal((await thaw(dir, ["status", "--json"])).stdout.includes('"state":"done"'), true);
    },
  );
});

Deno.test("thaw resume keeps a resumed report true: demand, bytes and first starts", async () => {
  const dir = await Deno.makeTempDir();
  const served = join(dir, "served");
  await Deno.mkdir(served);
  const small = 1024 * 1024, big = 6 * 1024 * 1024;
  await Deno.writeFile(join(served, "small.bin"), new Uint8Array(small).fill(1));
  await Deno.writeFile(join(served, "big.bin"), new Uint8Array(big).fill(2));
  const server = startBackupServer(served);
  try {
    // killer kills the engine (once) soon after fetch-small lands, while fetch-big, demanded
    // through serve, is on its way.
    await Deno.writeTextFile(
      join(dir, "rb.yaml"),
      `runbook: 1
name: truthful
bandwidth: 4MB/s
steps:
  - id: fetch-small
    fetch: { from: "${server.url}small.bin", to: ./restore/small.bin }
  - id: fetch-big
    fetch: { from: "${server.url}big.bin", to: ./restore/big.bin }
  - id: killer
    needs: [fetch-small]
    idempotent: true
    run: '[ -e killed ] || { touch killed; sleep 0.4; kill -9 "$(cat engine.pid)"; sleep 5; }'
  - { id: serve, needs: [killer, fetch-big], run: "true", milestone: service }
`,
    );
    const first = engine(dir, ["run", "rb.yaml"]);
    await Deno.writeTextFile(join(dir, "engine.pid"), String(first.child.pid));
    const killed = await first.output;
    equal(killed.signal, "SIGKILL", new TextDecoder().decode(killed.stderr));
    const run = await waitFor(dir, firstRun);
    const r = await thaw(dir, ["resume", run!.id, "--json"]);
    equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    const step = (id: string) => report.steps.find((s) => s.id === id)!;
    equal(step("fetch-small").bytes, small, "a fetch done before the kill keeps its exact bytes");
    equal(step("fetch-big").bytes, big);
    equal(step("fetch-big").demanded, true, "demanded before the kill, demanded after");
    ok(step("fetch-big").prefetched_bytes! < big);
    ok(report.bytes.on_demand > 0, `on demand: ${report.bytes.on_demand}`);
    equal(report.bytes.total, small + big);
    // Times count from the run's first start: fetch-big started then, not at the resume.
    ok(step("fetch-big").start_s! < 0.3, `fetch-big started at ${step("fetch-big").start_s}`);
    ok(step("serve").end_s! > 0.4);
    const store = await openStore(join(dir, "state.db"));
    try {
      for (const e of await store.stepEvents(run!.id)) {
        if (e.state === "frozen") match(e.detail ?? "", /^waits for \S/, `${e.step} at ${e.at}`);
      }
    } finally {
      await store.close();
    }
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runLive() reports the bytes a cancelled fetch moved", async () => {
  const dir = await Deno.makeTempDir();
  const served = join(dir, "served");
  await Deno.mkdir(served);
  await Deno.writeFile(join(served, "big.bin"), new Uint8Array(4 * 1024 * 1024));
  const server = startBackupServer(served);
  const store = await openStore(join(dir, "state.db"));
  try {
    await Deno.writeTextFile(
      join(dir, "rb.yaml"),
      `runbook: 1
name: cancelled
bandwidth: 2MB/s
steps:
  - { id: fetch-big, fetch: { from: "${server.url}big.bin", to: ./restore/big.bin } }
`,
    );
    const runbook = await readRunbook("rb.yaml", { cwd: dir });
    const ac = new AbortController();
    let seen = 0;
    const { report } = await runLive({
      runbook,
      store,
      run: "RCANCEL",
      fileSha256: "x",
      signal: ac.signal,
      onChange: (live) => {
        seen = live.steps[0]!.bytes;
        if (seen > 512 * 1024) ac.abort();
      },
    });
    equal(report.outcome, "cancelled");
    const fetch = report.steps[0]!;
    equal(fetch.state, "cancelled");
    ok(fetch.bytes! >= 512 * 1024, `bytes ${fetch.bytes}`);
    equal(report.bytes.total, fetch.bytes);
    equal(report.bytes.prefetched, fetch.bytes);
  } finally {
    await store.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw resume counts the bytes of an attempt it cannot continue, when a run: source starts over", async () => {
  await inDir(
    `runbook: 1
name: restart
steps:
  - id: fetch-dump
    fetch:
      run: 'head -c 1048576 /dev/zero > "$THAW_TO"; [ -e fixed ] || sleep 60'
      to: ./restore/dump.bin
`,
    async (dir) => {
      const first = engine(dir, ["run", "rb.yaml"]);
      const run = await waitFor(dir, async (s) => {
        const r = await firstRun(s);
        const p = r ? await s.progress(r.id) : [];
        return p.some((x) => x.bytes >= 1048576) ? r : undefined;
      }, "the first attempt's bytes");
      Deno.kill(-first.child.pid, "SIGKILL");
      await first.output;
      await Deno.writeTextFile(join(dir, "fixed"), "");
      const r = await thaw(dir, ["resume", run!.id, "--json"]);
      equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as Report;
      equal(report.steps[0]!.bytes, 2 * 1048576, "both attempts crossed the link");
      equal(report.bytes.total, 2 * 1048576);
      equal((await Deno.stat(join(dir, "restore/dump.bin"))).size, 1048576);
    },
  );
});

Deno.test("thaw run starts other steps while one waits for its approval, when parallelism is 1", async () => {
  await inDir(
    `runbook: 1
name: slots
parallelism: 1
steps:
  - { id: cutover, run: "touch cut", approval: "Switch traffic?" }
  - { id: other, run: "touch other" }
`,
    async (dir) => {
      const { output } = engine(dir, ["run", "rb.yaml"]);
      const run = await waitFor(dir, async (s) => {
        const r = await firstRun(s);
        const steps = r ? await s.steps(r.id) : [];
        const waiting = steps.some((x) => x.detail?.startsWith("waiting for approval"));
        return waiting && steps.some((x) => x.step === "other" && x.state === "done")
          ? r
          : undefined;
      }, "other to run while cutover waits");
      equal(await exists(join(dir, "cut")), false);
      const a = await thaw(dir, ["approve", run!.id, "cutover"]);
      equal(a.code, 0, a.stderr);
      equal((await output).code, 0);
      ok(await exists(join(dir, "cut")));
    },
  );
});

Deno.test("thaw resume keeps what came before a fetch's demand, when the engine died after it", async () => {
  const dir = await Deno.makeTempDir();
  const served = join(dir, "served");
  await Deno.mkdir(served);
  const big = 12 * 1024 * 1024;
  await Deno.writeFile(join(served, "big.bin"), new Uint8Array(big).fill(3));
  const server = startBackupServer(served);
  try {
    // fetch-big is prefetched until prep is done, then demanded by use; the engine dies (once)
    // after its progress with the demand was saved.
    await Deno.writeTextFile(
      join(dir, "rb.yaml"),
      `runbook: 1
name: demand
bandwidth: 4MB/s
steps:
  - { id: fetch-big, fetch: { from: "${server.url}big.bin", to: ./restore/big.bin } }
  - { id: prep, run: "sleep 0.5" }
  - { id: use, needs: [prep, fetch-big], run: "true", milestone: up }
  - id: killer
    needs: [prep]
    idempotent: true
    run: '[ -e killed ] || { touch killed; sleep 1.2; kill -9 "$(cat engine.pid)"; sleep 5; }'
`,
    );
    const first = engine(dir, ["run", "rb.yaml"]);
    await Deno.writeTextFile(join(dir, "engine.pid"), String(first.child.pid));
    equal((await first.output).signal, "SIGKILL");
    const run = await waitFor(dir, firstRun);
    const r = await thaw(dir, ["resume", run!.id, "--json"]);
    equal(r.code, 0, r.stderr);
    const fetch = (JSON.parse(r.stdout) as Report).steps.find((s) => s.id === "fetch-big")!;
    equal(fetch.demanded, true);
    equal(fetch.bytes, big);
    ok(
      fetch.prefetched_bytes! > 0 && fetch.prefetched_bytes! < 0.6 * big,
      `prefetched ${fetch.prefetched_bytes}`,
    );
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
