/**
 * Steps on a host over ssh, against a real sshd on 127.0.0.1 (`tests/sshd.ts`; ignored where
 * openssh-server is not installed): a fetch from a loopback HTTP server landing on the host under
 * a temporary name, checked, renamed, continued after a cancelled run; a `run:` source on the
 * host, as `user:`, held to the link, replacing the directory it placed; a run step, its `run:`
 * probe and a background service's log on the host.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Target } from "../steps/kind.ts";
import { fetchKind } from "../steps/fetch/kind.ts";
import { runStep } from "../steps/run/run.ts";
import type { FetchEffect, FetchSpec } from "../steps/types.ts";
import type { BackupServer } from "./http_backup_server.ts";
import { hasSshd, startSshd } from "./sshd.ts";
import { SshTarget } from "../steps/targets/ssh.ts";
import {
  type Calls,
  context,
  counted,
  data,
  fetchSpec,
  sha256,
  withServer,
} from "./target_helpers.ts";

const BYTES = data(300_000);
const SHA = sha256(BYTES);

const ignore = !hasSshd();

/** A started sshd, an ssh target on it (counted), a served directory; all stopped after. */
async function withHost(
  files: Record<string, Uint8Array>,
  body: (t: Target, calls: Calls, server: BackupServer, dir: string) => Promise<void>,
): Promise<void> {
  const host = await startSshd();
  const ssh = new SshTarget("db1", { ssh: host.alias }, { sshConfig: host.config, graceS: 1 });
  try {
    const { target, calls } = counted(ssh, "db1");
    await withServer(files, (server, dir) => body(target, calls, server, dir));
  } finally {
    await ssh.close();
    await host.stop();
  }
}

Deno.test({
  name: "fetchKind.execute() lands on an ssh host and continues there, when a first run stopped",
  ignore,
  fn: () =>
    withHost({ "db.dump": BYTES }, async (target, calls, server, dir) => {
      const spec = fetchSpec(`${server.url}db.dump`, join(dir, "host/db.dump"), { sha256: SHA });
      // A first run is cancelled part way (the server stalls after 120,000 bytes, to be sure).
      server.faults.stallAfter = 120_000;
      const stop = new AbortController();
      let seen = 0;
      const first = fetchKind.execute(spec, {
        ...context(target, stop.signal),
        progress: (bytes) => {
          seen = bytes;
          if (bytes >= 50_000) stop.abort(new Error("cancelled"));
        },
      });
      const aborted = await first as FetchEffect;
      assert.equal(aborted.ok, false);
      assert(seen >= 50_000);
      const partial = await target.stat(spec.tmp);
      assert.equal(partial?.type, "file", "the partial file stays under its temporary name");
      assert.equal(await target.stat(spec.to), null);

      const effect = await fetchKind.execute(spec, context(target));
      assert.deepEqual(effect, {
        ok: true,
        bytes: BYTES.length,
        transferred: BYTES.length - partial!.size,
        source: 0,
      });
      assert.equal(server.requests.at(-1)?.range, `bytes=${partial!.size}-`);
      assert.equal(calls.sha256, 1, "checked on the host");
      assert(calls.rename === 1 && (calls.openWrite ?? 0) >= 2);
      assert.deepEqual(await Deno.readFile(spec.to), BYTES);
      assert.equal(await target.stat(spec.tmp), null);
    }),
});

Deno.test({
  name: "fetchKind.execute() runs a run: source on the ssh host as user:, when the step has one",
  ignore,
  fn: () =>
    withHost({}, async (target, calls, _server, dir) => {
      const to = join(dir, "host/sub/who");
      const effect = await fetchKind.execute({
        sources: [{
          kind: "run",
          command: 'printf "%s %s" "$(id -un)" "${SSH_CONNECTION:+ssh}" > "$THAW_TO"',
          shell: "sh",
          user: "nobody",
        }],
        to,
        tmp: join(dir, "host/sub/.who.thaw-r1.part"),
        retries: 0,
        user: "nobody",
      }, context(target));
      assert.equal(effect.ok, true, effect.ok ? "" : effect.reason);
      assert.equal(await Deno.readTextFile(to), "nobody ssh");
      assert.equal((await Deno.stat(to)).uid, 65534, "the data belongs to user:");
      assert.equal((await Deno.stat(join(dir, "host/sub"))).uid, 65534, "and what it created");
      assert((calls.spawn ?? 0) >= 1);
    }),
});

Deno.test({
  name: "fetchKind.execute() replaces a directory it placed on the ssh host, when run again",
  ignore,
  fn: () =>
    withHost({}, async (target, _calls, _server, dir) => {
      const to = join(dir, "host/tree");
      const spec: FetchSpec = {
        sources: [{
          kind: "run",
          command: 'mkdir -p "$THAW_TO/a" && head -c 5000 /dev/zero > "$THAW_TO/a/zeros"',
          shell: "sh",
        }],
        to,
        tmp: join(dir, "host/.tree.thaw-r1.part"),
        retries: 0,
      };
      let taken = 0;
      const link = {
        take: (bytes: number) => (taken += bytes, Promise.resolve()),
      };
      const first = await fetchKind.execute(spec, { ...context(target), link });
      assert.deepEqual(first, { ok: true, bytes: 5000, transferred: 5000, source: 0 });
      assert.equal(taken, 5000, "its bytes were taken on the link");
      const again = await fetchKind.execute(spec, context(target));
      assert.deepEqual(again, {
        ok: true,
        bytes: 5000,
        transferred: 5000,
        source: 0,
        replaced: "directory",
      });
      await Deno.remove(join(dir, "host/.tree.thaw-written"));
      const refused = await fetchKind.execute(spec, context(target)) as FetchEffect;
      assert.match(refused.ok ? "" : refused.reason, /existing directory thaw did not write/);
      assert.equal((await Deno.stat(join(to, "a/zeros"))).size, 5000, "left as it was");
    }),
});

Deno.test({
  name: "fetchKind.execute() holds a run: source on the ssh host to the link, when it is slow",
  ignore,
  fn: () =>
    withHost({}, async (target, calls, _server, dir) => {
      const to = join(dir, "host/slow");
      let taken = 0, takes = 0;
      const link = {
        take: async (bytes: number) => {
          takes++;
          await new Promise((r) => setTimeout(r, 300)); // the link lets them cross late
          taken += bytes;
        },
      };
      const effect = await fetchKind.execute({
        sources: [{
          kind: "run",
          command: 'for i in 1 2 3; do head -c 1000 /dev/zero >> "$THAW_TO"; sleep 0.3; done',
          shell: "sh",
        }],
        to,
        tmp: join(dir, "host/.slow.thaw-r1.part"),
        retries: 0,
      }, { ...context(target), link });
      assert.deepEqual(effect, { ok: true, bytes: 3000, transferred: 3000, source: 0 });
      assert.equal(taken, 3000, "every byte it wrote was taken on the link");
      assert(takes >= 2, `measured as it wrote (${takes} takes)`);
      assert((calls.spawn ?? 0) > takes, "measured and signalled on the host");
    }),
});

Deno.test({
  name: "runStep() runs its command and run: probe on the ssh host, when the target is one",
  ignore,
  fn: () =>
    withHost({}, async (target, _calls, _server, dir) => {
      const ctx = { ...context(target), env: { WHERE: "db1" } };
      const ok = await runStep({
        command: `echo "$WHERE" > ${join(dir, "ran")}`,
        shell: "sh",
        retries: 0,
        background: false,
        ready: {
          kind: "run",
          target: `test -n "$SSH_CONNECTION" && test -s ${join(dir, "ran")}`,
          timeoutMs: 5000,
          intervalMs: 50,
        },
      }, ctx);
      assert.equal(ok.ok, true, ok.ok ? "" : ok.reason);
      assert.equal(await Deno.readTextFile(join(dir, "ran")), "db1\n");
      const failed = await runStep({
        command: "true",
        shell: "sh",
        retries: 0,
        background: false,
        ready: { kind: "run", target: 'test -z "$SSH_CONNECTION"', timeoutMs: 300, intervalMs: 50 },
      }, ctx);
      assert.equal(failed.ok, false);
      assert.match(
        failed.ok ? "" : failed.reason,
        /^ready probe failed: run test -z .*: exit 1 for/,
      );
    }),
});

Deno.test({
  name: "runStep() keeps a service's log on the ssh host, when the step runs in the background",
  ignore,
  fn: () =>
    withHost({}, async (target, _calls, _server, dir) => {
      const ctx = { ...context(target), logFile: join(dir, "logs/svc.log") };
      const up = await runStep({
        command: "echo serving; exec sleep 30",
        shell: "sh",
        retries: 0,
        background: true,
        ready: {
          kind: "run",
          target: `grep -q serving ${ctx.logFile}`,
          timeoutMs: 5000,
          intervalMs: 50,
        },
      }, ctx);
      assert(up.ok && up.service, up.ok ? "no service" : up.reason);
      assert(await target.groupAlive(up.service.pgid));
      await up.service.stop(500);
      assert.equal(await target.groupAlive(up.service.pgid), false);
      const down = await runStep({
        command: 'echo "boom: disk full"; sleep 0.3; exit 3',
        shell: "sh",
        retries: 0,
        background: true,
        ready: { kind: "run", target: "false", timeoutMs: 5000, intervalMs: 50 },
      }, ctx);
      assert.equal(down.ok, false);
      assert.equal(
        down.ok ? "" : down.reason,
        "exit code 3 before it was ready: boom: disk full",
      );
      assert.match(await Deno.readTextFile(ctx.logFile), /serving\n(.|\n)*boom: disk full\n/);
    }),
});
