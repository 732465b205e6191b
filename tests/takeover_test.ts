/**
 * Takeover (contract revision 3, "Shared state and takeover"), for real: two `thaw` processes on
 * two "machines" (UTS namespaces: another host name each; and, as root with iproute2, network
 * namespaces: each reaches this host over a veth pair of its own, else the host's network)
 * sharing a throwaway PostgreSQL cluster that lets in the machines' network. The scenarios are
 * in `takeover_scenarios.ts`; the 20 trials in `bench/takeover_trials.ts`.
 *
 * @module
 */
import { deepEqual, equal, match, notEqual, ok } from "node:assert/strict";
import { join } from "node:path";
import pg from "pg";
import { thawCommand } from "./paths.ts";
import { noPostgres, sharedCluster, stopSharedCluster } from "./pg_cluster.ts";
import { killTrial, stopTrial } from "./takeover_scenarios.ts";
import {
  killMachine,
  look,
  machine,
  MACHINE_NET,
  noNetns,
  noUnshare,
  poll,
  workDir,
} from "./takeover_rig.ts";

const why = noPostgres ?? noUnshare;
const ignore = why !== undefined;
if (why) console.warn(`takeover_test: ignored: ${why}`);

Deno.test({
  name: "thaw standby finishes a run whose engine was killed, without running a done step again",
  ignore,
  async fn() {
    const url = await (await sharedCluster({ allowFrom: MACHINE_NET })).createDatabase();
    const trial = await killTrial(url);
    // Each problem names what was not so: a done step ran again, a byte was fetched again, ...
    deepEqual(trial.problems, []);
    ok(trial.takeoverMs < 10000, `took over in ${trial.takeoverMs} ms`);
  },
});

Deno.test({
  name: "an engine paused past its lease writes nothing and stops its steps when it wakes up",
  ignore,
  async fn() {
    const url = await (await sharedCluster({ allowFrom: MACHINE_NET })).createDatabase();
    const trial = await stopTrial(url);
    deepEqual(trial.problems, []);
    ok(trial.takeoverMs < 10000, `took over in ${trial.takeoverMs} ms`);
  },
});

Deno.test({
  name: "thaw run keeps its run in the store THAW_STORE names, and its logs under .thaw/logs",
  ignore: noPostgres !== undefined,
  async fn() {
    const url = await (await sharedCluster({ allowFrom: MACHINE_NET })).createDatabase();
    const w = await workDir({
      "rb.yaml": 'runbook: 1\nname: env-store\nsteps:\n  - { id: hello, run: "echo hello" }\n',
    });
    try {
      const out = await thawCommand(["run", "rb.yaml"], { cwd: w.dir, env: { THAW_STORE: url } })
        .output();
      equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const store = await look(url);
      try {
        const [run] = await store.listRuns(1);
        equal(run?.runbook, "env-store");
        const log = join(w.dir, ".thaw", "logs", run!.id, "hello.log");
        equal((await Deno.readTextFile(log)).trim(), "hello");
        equal(await store.lease(run!.id), undefined, "the lease is given up at the end");
      } finally {
        await store.close();
      }
      const names = [...Deno.readDirSync(w.dir)].map((e) => e.name).sort();
      deepEqual(names, [".thaw", "rb.yaml"]); // no stray "postgres:" directory
    } finally {
      await w.remove();
    }
  },
});

Deno.test({
  name: "machine() runs thaw in a network namespace of its own, reaching PostgreSQL over a link",
  ignore: ignore || noNetns !== undefined,
  async fn() {
    const url = await (await sharedCluster({ allowFrom: MACHINE_NET })).createDatabase();
    const w = await workDir({});
    const standby = machine("standby-b", w.dir, url, ["standby"]);
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await poll(() => standby.out().includes("standing by on") || undefined, "the standby");
      match(standby.hostAddress, /^10\.213\.\d+\.1$/);
      const self = (pid: number | string) => Deno.readLinkSync(`/proc/${pid}/ns/net`);
      notEqual(self(standby.child.pid), self("self"), "the standby has a network of its own");
      const peer = standby.hostAddress.replace(/\.1$/, ".2");
      const from = await poll(async () => {
        const r = await client.query(
          "select host(client_addr) as a from pg_stat_activity where datname = current_database()",
        );
        const addrs = r.rows.map((x) => x.a as string | null);
        return addrs.includes(peer) ? addrs : undefined;
      }, `a connection from ${peer}`);
      ok(from.includes("127.0.0.1"), "the test's own connection comes from 127.0.0.1");
    } finally {
      killMachine(standby);
      await standby.done;
      await client.end();
      await w.remove();
    }
    const k = standby.hostAddress.split(".")[2];
    equal(
      [...Deno.readDirSync("/sys/class/net")].some((e) => e.name.startsWith(`veth-thaw${k}`)),
      false,
      "the machine's veth pair is gone with it",
    );
  },
});

Deno.test({
  name: "stop the PostgreSQL cluster",
  ignore: noPostgres !== undefined,
  fn: stopSharedCluster,
});
