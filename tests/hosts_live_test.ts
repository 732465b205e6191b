/**
 * Runbooks with `hosts:` and `on:` run for real through the `thaw` CLI (a child process), against
 * real sshd servers on 127.0.0.1 (`tests/sshd.ts`; ignored where openssh-server is not
 * installed), `THAW_SSH_CONFIG` pointing at the test's ssh config: a fetch landing on one host, a
 * run step on another that needs it, a background service on a host that outlives the run, a
 * timeout and a cancel that stop the remote process group, an unreachable host failing its steps
 * with ssh's words, and a partial remote fetch resumed after `kill -9` of thaw.
 *
 * The hosts are this machine (loopback), so the test reads what they wrote and checks their pids
 * directly.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { renderLiveTable } from "../engine/cli/live_view.ts";
import { LiveRun } from "../engine/live/live_run.ts";
import { RunHosts } from "../engine/live/run_hosts.ts";
import { checkUsers } from "../engine/live/user_check.ts";
import { parseRunbook } from "../engine/runbook/load.ts";
import { simulate } from "../engine/simulate/simulate.ts";
import { openStore } from "../engine/store/mod.ts";
import { type BackupServer, startBackupServer } from "./http_backup_server.ts";
import { firstRun, freePort } from "./live_helpers.ts";
import { thawCommand } from "./paths.ts";
import { hasSshd, type SshdHost, startSshd, writeSshConfig } from "./sshd.ts";
import { data, sha256 } from "./target_helpers.ts";
import { target } from "../steps/kind.ts";
import type { SshTarget } from "../steps/targets/ssh.ts";

const ignore = !hasSshd();
const decoder = new TextDecoder();

/** Two sshd hosts (aliases `thaw-a`, `thaw-b`), one ssh config, a directory; all removed after. */
async function withHosts(
  body: (dir: string, env: Record<string, string>, hosts: SshdHost[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-hosts-" });
  const hosts: SshdHost[] = [];
  const hadLogs = await Deno.stat(HOST_LOGS).then(() => true, () => false);
  try {
    hosts.push(await startSshd("thaw-a"), await startSshd("thaw-b"));
    const config = await writeSshConfig(join(dir, "ssh_config"), hosts);
    // The ssh masters' socket directories go in `dir` (a master killed with thaw leaves its own).
    await body(dir, { THAW_SSH_CONFIG: config, TMPDIR: dir }, hosts);
  } finally {
    for (const h of hosts) await h.stop();
    await removeHostLogs(dir, hadLogs);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Where services on the (loopback, root) hosts keep their logs: the login directory's `.thaw`. */
const HOST_LOGS = "/root/.thaw/logs";

/** Removes the host logs of the runs of the store in `dir` (and the directory, if it was new). */
async function removeHostLogs(dir: string, hadLogs: boolean): Promise<void> {
  const store = await openStore(join(dir, "state.db")).catch(() => undefined);
  if (store) {
    for (const r of await store.listRuns(50)) {
      await Deno.remove(join(HOST_LOGS, r.id), { recursive: true }).catch(() => {});
    }
    await store.close();
  }
  if (!hadLogs) {
    await Deno.remove(HOST_LOGS).catch(() => {});
    await Deno.remove("/root/.thaw").catch(() => {});
  }
}

/** `thaw ARGS --store DIR/state.db` to its end. */
async function thaw(dir: string, env: Record<string, string>, args: string[]) {
  const out = await thawCommand([...args, "--store", join(dir, "state.db")], { cwd: dir, env })
    .output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** `thaw ARGS` started in a process group of its own (a test may kill it all). */
function start(dir: string, env: Record<string, string>, args: string[]) {
  const child = thawCommand([...args, "--store", join(dir, "state.db")], {
    cwd: dir,
    env,
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  return { child, output: child.output() };
}

/** Waits (at most 30 s) until `until` gives a value. */
async function until<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  for (let k = 0; k < 300; k++) {
    const got = await fn().catch(() => undefined);
    if (got !== undefined) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Whether process `pid` of this machine (the loopback hosts) still runs (not a zombie). */
function running(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** The steps of the newest run in the store of `dir`, by id. */
async function stepsOf(dir: string) {
  const store = await openStore(join(dir, "state.db"));
  try {
    const run = (await firstRun(store))!;
    return { run, steps: new Map((await store.steps(run.id)).map((s) => [s.step, s])) };
  } finally {
    await store.close();
  }
}

async function withServer(
  files: Record<string, Uint8Array>,
  body: (server: BackupServer) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-served-" });
  const server = startBackupServer(dir);
  try {
    for (const [name, bytes] of Object.entries(files)) await Deno.writeFile(join(dir, name), bytes);
    await body(server);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const DUMP = data(200_000);
const MiB = 1 << 20;
const BIG = data(3 * MiB);

Deno.test({
  name: "thaw run carries a two-host runbook out: fetch on one, steps and a service on the other",
  ignore,
  fn: () =>
    withHosts((dir, env) =>
      withServer({ "db.dump": DUMP }, async (server) => {
        const port = freePort();
        await Deno.writeTextFile(
          join(dir, "serve.ts"),
          `Deno.serve({ hostname: "127.0.0.1", port: ${port} }, () => new Response("ok"));\n`,
        );
        await Deno.writeTextFile(
          join(dir, "rb.yaml"),
          `runbook: 1
name: two-hosts
hosts:
  a: { ssh: thaw-a, bandwidth: 400KB/s }
  b: { ssh: thaw-b }
steps:
  - id: fetch-db
    on: a
    fetch: { from: "${server.url}db.dump", to: ${dir}/a/db.dump, sha256: ${sha256(DUMP)} }
  - id: restore
    on: b
    needs: [fetch-db]
    run: wc -c < ${dir}/a/db.dump > ${dir}/restored; echo "$THAW_STEP in $PWD" >> ${dir}/restored
  - id: web
    on: b
    needs: [restore]
    background: true
    run: exec ${Deno.execPath()} run --allow-net ${dir}/serve.ts
    ready: { http: "http://127.0.0.1:${port}/", timeout: 30s }
    milestone: service
`,
        );
        const out = await thaw(dir, env, ["run", "rb.yaml", "--json"]);
        assert.equal(out.code, 0, out.stderr);
        const report = JSON.parse(out.stdout);
        assert.deepEqual(
          report.steps.map((
            s: { id: string; on?: string; state: string },
          ) => [s.id, s.on, s.state]),
          [["fetch-db", "a", "done"], ["restore", "b", "done"], ["web", "b", "done"]],
        );
        assert.equal(report.steps[0].bytes, DUMP.length);
        // Host a's own bandwidth holds its fetch (less a first burst of 64 KiB).
        const took = report.steps[0].end_s - report.steps[0].start_s;
        assert(took >= (DUMP.length - 65_536) / 400_000 - 0.01, `fetch-db took ${took} s`);
        assert.deepEqual(await Deno.readFile(join(dir, "a/db.dump")), DUMP);
        const restored = (await Deno.readTextFile(join(dir, "restored"))).split("\n");
        assert.equal(restored[0], String(DUMP.length));
        assert.equal(restored[1], "restore in /root", "a host step runs in the login directory");

        // A real run leaves the service running on its host; thaw status lists it with its host.
        const status = await thaw(dir, env, ["status", report.run, "--json"]);
        assert.equal(status.code, 0, status.stderr);
        const [service] = JSON.parse(status.stdout).services;
        assert.equal(service.step, "web");
        assert.equal(service.host, "b");
        assert.equal(service.alive, true);
        assert.equal(service.log, `.thaw/logs/${report.run}/web.log`);
        assert(running(service.pid));
        const res = await fetch(`http://127.0.0.1:${port}/`);
        assert.equal(await res.text(), "ok");
        const plain = await thaw(dir, env, ["status", report.run]);
        assert.match(plain.stdout, /web on b: pid \d+ \(running, stop with: ssh b kill -TERM/);
        Deno.kill(-service.pgid, "SIGTERM");
        await until(
          "the service to stop",
          () => Promise.resolve(running(service.pid) ? undefined : 1),
        );
      })
    ),
});

Deno.test({
  name: "thaw drill stops timed-out remote groups and its services; an unreachable host fails",
  ignore,
  fn: () =>
    withHosts(async (dir, env) => {
      const closed = freePort();
      await Deno.writeTextFile(
        join(dir, "rb.yaml"),
        `runbook: 1
name: failures
hosts:
  a: { ssh: thaw-a }
  b: { ssh: thaw-b }
  down: { ssh: thaw-a, port: ${closed} }
steps:
  - id: slow
    on: a
    timeout: 1s
    on-failure: isolate
    run: echo $$ > ${dir}/slow.pid; sleep 60
  - id: unreachable
    on: down
    on-failure: isolate
    run: "true"
  - id: after-unreachable
    needs: [unreachable]
    run: "true"
  - id: fine
    on: b
    run: touch ${dir}/fine
  - id: dies
    on: b
    on-failure: isolate
    background: true
    run: sleep 1; echo bye; exit 3
    ready: { run: "true" }
  - id: stays
    on: a
    background: true
    run: echo $$ > ${dir}/stays.pid; exec sleep 60
    ready: { run: "test -s ${dir}/stays.pid" }
  - id: hold
    needs: [stays]
    run: sleep 3
`,
      );
      const out = await thaw(dir, env, ["drill", "rb.yaml", "--json"]);
      assert.equal(out.code, 1, out.stderr);
      const report = JSON.parse(out.stdout);
      const state = Object.fromEntries(
        report.steps.map((s: { id: string; state: string }) => [s.id, s.state]),
      );
      assert.deepEqual(state, {
        slow: "failed",
        unreachable: "failed",
        "after-unreachable": "skipped",
        fine: "done",
        dies: "failed",
        stays: "done",
        hold: "done",
      });
      // The plain lines (on stderr with --json) say where each step runs.
      assert.match(out.stderr, /\bslow on a failed: timed out after 1s/);
      assert.match(out.stderr, /\bfine on b done/);
      const { steps } = await stepsOf(dir);
      assert.match(steps.get("slow")!.detail ?? "", /timed out after 1s/);
      assert.match(
        steps.get("unreachable")!.detail ?? "",
        new RegExp(`connect to host 127\\.0\\.0\\.1 port ${closed}: Connection refused`),
      );
      const pid = Number(await Deno.readTextFile(join(dir, "slow.pid")));
      assert(!running(pid), `the remote group of the timed-out step is gone (pid ${pid})`);
      assert(await Deno.stat(join(dir, "fine")));
      // A service on a host is watched: one that exits fails its step, with its host named.
      assert.match(steps.get("dies")!.detail ?? "", /exit code 3 after it was ready.* on b/);
      // A drill stops the services it started on its hosts.
      const stays = Number(await Deno.readTextFile(join(dir, "stays.pid")));
      assert(!running(stays), `the drill's service on a is stopped (pid ${stays})`);
    }),
});

Deno.test({
  name: "thaw cancel stops a remote process group of a running run",
  ignore,
  fn: () =>
    withHosts(async (dir, env) => {
      await Deno.writeTextFile(
        join(dir, "rb.yaml"),
        `runbook: 1
name: cancel
hosts:
  a: { ssh: thaw-a }
steps:
  - id: long
    on: a
    run: echo $$ > ${dir}/long.pid; sleep 60
`,
      );
      const { output } = start(dir, env, ["run", "rb.yaml", "--json"]);
      const pid = await until("the remote step", async () => {
        const text = await Deno.readTextFile(join(dir, "long.pid"));
        return text.endsWith("\n") ? Number(text) : undefined;
      });
      assert(running(pid));
      const { run } = await stepsOf(dir);
      const cancel = await thaw(dir, env, ["cancel", run.id]);
      assert.equal(cancel.code, 0, cancel.stderr);
      const out = await output;
      assert.equal(out.code, 1, decoder.decode(out.stderr));
      assert.equal(JSON.parse(decoder.decode(out.stdout)).steps[0].state, "cancelled");
      assert(!running(pid), `the remote group of the cancelled step is gone (pid ${pid})`);
    }),
});

Deno.test({
  name: "thaw resume continues a partial remote fetch after kill -9 of thaw",
  ignore,
  fn: () =>
    withHosts((dir, env) =>
      withServer({ "big.dump": BIG }, async (server) => {
        await Deno.writeTextFile(
          join(dir, "rb.yaml"),
          `runbook: 1
name: resume
hosts:
  a: { ssh: thaw-a }
steps:
  - id: fetch
    on: a
    fetch: { from: "${server.url}big.dump", to: ${dir}/a/big.dump, sha256: ${sha256(BIG)} }
`,
        );
        // The first answer stops part way, open; the host has what thaw sent on (about 1 MiB at once).
        server.faults.stallAfter = 1.5 * MiB;
        const { child, output } = start(dir, env, ["run", "rb.yaml", "--json"]);
        const tmp = await until("part of the data on the host", async () => {
          for await (const e of Deno.readDir(join(dir, "a"))) {
            const path = join(dir, "a", e.name);
            if (e.name.endsWith(".part") && (await Deno.stat(path)).size >= MiB / 2) return path;
          }
          return undefined;
        });
        // Landed and recorded (the store keeps progress about once a second).
        await until("progress in the store", async () => {
          const store = await openStore(join(dir, "state.db"));
          try {
            const run = (await firstRun(store))!;
            const p = (await store.progress(run.id))[0];
            return p && p.bytes >= MiB / 2 ? true : undefined;
          } finally {
            await store.close();
          }
        });
        Deno.kill(-child.pid, "SIGKILL");
        await output;
        const partial = (await Deno.stat(tmp)).size;
        assert(partial >= MiB / 2 && partial < BIG.length);
        const { run } = await stepsOf(dir);
        // The killed engine's lease on the run may have to expire first (revision 3).
        const resumed = await until("the resume", async () => {
          const r = await thaw(dir, env, ["resume", run.id, "--json"]);
          return /cannot acquire the lease/.test(r.stderr) ? undefined : r;
        });
        assert.equal(resumed.code, 0, resumed.stderr);
        assert.equal(JSON.parse(resumed.stdout).steps[0].state, "done");
        assert.deepEqual(await Deno.readFile(join(dir, "a/big.dump")), BIG);
        const last = server.requests.at(-1)!;
        assert.equal(last.range, `bytes=${partial}-`, "the resumed fetch continued on the host");
      })
    ),
});

Deno.test("simulate() shares a host's own bandwidth among the fetches landing there", () => {
  const rb = parseRunbook(
    `runbook: 1
name: capped
bandwidth: 100MB/s
hosts:
  web1: { ssh: web1, bandwidth: 10MB/s }
  db1: { ssh: db1 }
steps:
  - { id: a, on: web1, fetch: { from: "http://x/a", to: /srv/a, size: 10MB } }
  - { id: b, on: web1, fetch: { from: "http://x/b", to: /srv/b, size: 10MB } }
  - { id: c, on: db1, fetch: { from: "http://x/c", to: /srv/c, size: 50MB } }
  - { id: d, on: web1, fetch: { from: "http://x/d", to: /srv/d, size: 10MB, local: true } }
`,
    "capped.yaml",
  );
  const report = simulate(rb);
  const end = Object.fromEntries(report.steps.map((s) => [s.id, s.end_s]));
  // web1's two fetches share its 10 MB/s: 20 MB in 2 s; db1's has the rest of the link.
  assert.equal(Math.max(end.a!, end.b!), 2);
  assert(end.c! <= 0.6 + 1e-9, `c ends at ${end.c}`);
  assert.equal(end.d, 0, "a local fetch crosses no link, the host's neither");
  assert.deepEqual(report.steps.map((s) => s.on), ["web1", "web1", "db1", "web1"]);
});

Deno.test("renderLiveTable() shows where each step runs, when the runbook has hosts", () => {
  const rb = parseRunbook(
    `runbook: 1
name: where
hosts: { db1: { ssh: db1 } }
steps:
  - { id: restore, on: db1, run: "true" }
  - { id: here, run: "true" }
`,
    "where.yaml",
  );
  const lines = renderLiveTable(new LiveRun(rb, "R1", "aggressive", Date.now())).split("\n");
  assert.match(lines[1]!, /^\s*STEP\s+ON\s+KIND\s+STATE/);
  assert.match(lines[2]!, /^\s*restore\s+db1\s+run\s+pending/);
  assert.match(lines[3]!, /^\s*here\s+-\s+run\s+pending/);
});

Deno.test({
  name: "thaw cancel of a killed drill stops its service on a host, over ssh",
  ignore,
  fn: () =>
    withHosts(async (dir, env) => {
      await Deno.writeTextFile(
        join(dir, "rb.yaml"),
        `runbook: 1
name: killed
hosts:
  a: { ssh: thaw-a }
steps:
  - id: svc
    on: a
    background: true
    run: echo $$ > ${dir}/svc.pid; exec sleep 60
    ready: { run: "test -s ${dir}/svc.pid" }
  - id: hold
    needs: [svc]
    run: touch ${dir}/holding; sleep 60
`,
      );
      const { child, output } = start(dir, env, ["drill", "rb.yaml", "--json"]);
      await until("the service to be ready", () => Deno.stat(join(dir, "holding")));
      const pid = Number(await Deno.readTextFile(join(dir, "svc.pid")));
      Deno.kill(-child.pid, "SIGKILL");
      await output;
      assert(running(pid), "a service on a host outlives the engine");
      const store = await openStore(join(dir, "state.db"));
      const run = (await firstRun(store))!;
      assert.deepEqual(
        (await store.processes(run.id)).map((p) => [p.step, p.host, p.pgid]),
        [["svc", "a", pid]],
        "the store keeps the service with its host",
      );
      await store.close();
      const cancel = await thaw(dir, env, ["cancel", run.id]);
      assert.equal(cancel.code, 0, cancel.stderr);
      assert(!running(pid), `the drill's service on a is stopped (pid ${pid})`);
    }),
});

Deno.test("RunHosts keeps two runs apart, when both name a host alike", async () => {
  const first = new RunHosts({ db1: { ssh: "one.example" } });
  const second = new RunHosts({ db1: { ssh: "two.example" } });
  try {
    assert.equal(target("db1"), first.of("db1"), "the first run's host is registered by name");
    assert.notEqual(second.of("db1"), first.of("db1"));
    assert.equal((second.of("db1") as SshTarget).host.ssh, "two.example");
    assert.equal(first.of(undefined).name, "local");
  } finally {
    await first[Symbol.asyncDispose]();
    await second[Symbol.asyncDispose]();
  }
  assert.throws(() => target("db1"), /unknown target "db1"/);
});

Deno.test("checkUsers() leaves a step on a host to its host, when its user is unknown here", () => {
  const rb = parseRunbook(
    `runbook: 1
name: users
hosts: { db1: { ssh: db1 } }
steps:
  - { id: there, on: db1, run: "true", user: no-such-user-here }
  - { id: here, run: "true", user: no-such-user-here }
`,
    "users.yaml",
  );
  assert.throws(() => checkUsers(rb), (e: Error) => {
    assert.match(e.message, /users\.yaml:6:\d+: .*no-such-user-here/);
    assert.doesNotMatch(e.message, /users\.yaml:5:/);
    return true;
  });
});

Deno.test({
  name: "thaw resume watches a service a killed engine left on a host, and fails it when it dies",
  ignore,
  fn: () =>
    withHosts(async (dir, env) => {
      await Deno.writeTextFile(
        join(dir, "rb.yaml"),
        `runbook: 1
name: watched
hosts:
  a: { ssh: thaw-a }
steps:
  - id: svc
    on: a
    background: true
    run: echo $$ > ${dir}/svc.pid; exec sleep 60
    ready: { run: "test -s ${dir}/svc.pid" }
  - id: hold
    needs: [svc]
    idempotent: true
    run: touch ${dir}/holding; while [ ! -e ${dir}/go ]; do sleep 0.1; done
`,
      );
      const { child, output } = start(dir, env, ["run", "rb.yaml", "--json"]);
      await until("the service to be ready", () => Deno.stat(join(dir, "holding")));
      const pid = Number(await Deno.readTextFile(join(dir, "svc.pid")));
      Deno.kill(-child.pid, "SIGKILL");
      await output;
      await Deno.remove(join(dir, "holding"));
      const { run } = await stepsOf(dir);
      const resumed = start(dir, env, ["resume", run.id, "--json"]);
      try {
        await until("the resumed step", () => Deno.stat(join(dir, "holding")));
        Deno.kill(pid, "SIGKILL"); // the service dies on its host while the run goes on
        await new Promise((r) => setTimeout(r, 2500)); // watched about once a second
      } finally {
        await Deno.writeTextFile(join(dir, "go"), "");
      }
      const out = await resumed.output;
      const report = JSON.parse(decoder.decode(out.stdout));
      assert.equal(out.code, 1, decoder.decode(out.stderr));
      assert.equal(report.steps[0].state, "failed");
      const { steps } = await stepsOf(dir);
      assert.match(steps.get("svc")!.detail ?? "", /its service \(pid \d+ on a, started before/);
    }),
});
