/**
 * The store over PostgreSQL: the conformance suite every dialect passes, on a throwaway cluster
 * (`pg_cluster.ts`: one per file, a database per test), and what only a server shows: errors
 * that name the server and hide the password, migrations run by several processes at once, and
 * standbys in separate processes racing for one expired lease.
 *
 * Ignored, with a line saying why, where PostgreSQL is not installed.
 *
 * @module
 */
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { CompiledQuery } from "kysely";
import { openPostgres } from "../engine/store/dialects/postgres.ts";
import { openStore, StoreError } from "../engine/store/mod.ts";
import { thawCommand } from "./paths.ts";
import { noPostgres, sharedCluster, stopSharedCluster } from "./pg_cluster.ts";
import { newRun, storeConformance } from "./store_conformance.ts";
import { expire, raceInProcesses } from "./store_lease_conformance.ts";

const ignore = noPostgres !== undefined;
if (noPostgres) console.warn(`store_pg_test: PostgreSQL tests ignored: ${noPostgres}`);

storeConformance("PostgreSQL", async () => {
  const url = await (await sharedCluster()).createDatabase();
  const store = await openStore(url);
  return { store, reopen: () => openStore(url), cleanup: () => store.close() };
}, { shared: true, ignore });

function freePort(): number {
  using l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return l.addr.port;
}

Deno.test({
  name: "openStore() names the server and hides the password, when the login is refused",
  ignore,
  async fn() {
    const cluster = await sharedCluster();
    const url = cluster.url("postgres").replace(cluster.password, "Wr0ngPassw0rd");
    await rejects(openStore(url), (e: Error) => {
      ok(e instanceof StoreError, e.name);
      ok(e.message.includes(`127.0.0.1:${cluster.port}`), e.message);
      ok(/password authentication failed for user "postgres"/.test(e.message), e.message);
      ok(!e.message.includes("Wr0ngPassw0rd") && e.message.includes(":***@"), e.message);
      ok(!e.message.includes("\n    at "), "no stack trace");
      return true;
    });
  },
});

Deno.test({
  name: "openStore() names the server and the database, when it does not exist",
  ignore,
  async fn() {
    const cluster = await sharedCluster();
    await rejects(
      openStore(cluster.url("no_such_db")),
      (e: Error) =>
        e instanceof StoreError && e.message.includes(`127.0.0.1:${cluster.port}`) &&
        /database "no_such_db" does not exist/.test(e.message) &&
        !e.message.includes(cluster.password),
    );
  },
});

Deno.test("openStore() says nothing listens at host:port, when PostgreSQL is not there", async () => {
  const port = freePort();
  const url = `postgresql://thaw:s3cr3t@127.0.0.1:${port}/thaw`;
  await rejects(openStore(url), (e: Error) => {
    ok(e instanceof StoreError, e.name);
    equal(
      e.message,
      `cannot open the store postgresql://thaw:***@127.0.0.1:${port}/thaw: cannot reach ` +
        `PostgreSQL at 127.0.0.1:${port}: connection refused (is PostgreSQL running, and ` +
        `listening on that address?)`,
    );
    return true;
  });
});

Deno.test({
  name: "openStore() migrates once, when several processes open a new database at once",
  ignore,
  async fn() {
    const url = await (await sharedCluster()).createDatabase();
    const stores = await Promise.all([openStore(url), openStore(url), openStore(url)]);
    try {
      await stores[0]!.createRun(newRun("r1"));
      for (const s of stores) equal((await s.getRun("r1"))?.id, "r1");
    } finally {
      for (const s of stores) await s.close();
    }
  },
});

Deno.test({
  name: "takeLease() gives an expired lease to exactly one standby, when processes race",
  ignore,
  async fn() {
    const url = await (await sharedCluster()).createDatabase();
    const store = await openStore(url);
    try {
      await store.createRun(newRun("r1"));
      const old = await store.acquireLease("r1", "engine", 1);
      await expire(store, "r1");
      const got = await raceInProcesses(url, "r1", 4);
      const winners = got.filter((l) => l !== null);
      equal(winners.length, 1, JSON.stringify(got));
      equal(winners[0]!.token, old.token + 1);
      deepEqual(
        [(await store.lease("r1"))?.holder, (await store.lease("r1"))?.token],
        [winners[0]!.holder, old.token + 1],
      );
    } finally {
      await store.close();
    }
  },
});

Deno.test({
  name: "takeLease() succeeds, when the old engine stalls inside a transaction (SIGSTOP)",
  ignore,
  async fn() {
    const url = await (await sharedCluster()).createDatabase();
    const store = await openStore(url);
    const stalled = await openPostgres(url);
    let release = () => {};
    const held = new Promise<void>((r) => release = r);
    try {
      await store.createRun(newRun("r1"));
      await store.acquireLease("r1", "engine", 1);
      // The old engine's connection: inside a transaction that holds the run's row, then silent.
      let locked = () => {};
      const isLocked = new Promise<void>((r) => locked = r);
      const session = stalled.session(async (send) => {
        await send([CompiledQuery.raw("begin"), CompiledQuery.raw("update runs set pid = pid")]);
        locked();
        await held;
        await send([CompiledQuery.raw("commit")]);
      });
      session.catch(() => {});
      await isLocked;
      await expire(store, "r1");
      const taken = await store.takeLease("r1", "standby", 60_000);
      equal(taken?.holder, "standby", "the server ended the stalled session and its lock");
      release();
      await rejects(session);
    } finally {
      release();
      await stalled.close();
      await store.close();
    }
  },
});

Deno.test({
  name: "thaw run --store postgres://… records the run, when another thaw reads it back",
  ignore,
  async fn() {
    const cluster = await sharedCluster();
    const url = await cluster.createDatabase();
    const dir = await Deno.makeTempDir({ prefix: "thaw-store-pg-" });
    const text = 'runbook: 1\nname: pg-e2e\nsteps:\n  - { id: a, run: "true" }\n' +
      '  - { id: b, needs: [a], run: "true" }\n';
    const d = new TextDecoder();
    const thaw = async (...args: string[]) => {
      const out = await thawCommand([...args, "--store", url], {
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
    };
    try {
      await Deno.writeTextFile(join(dir, "rb.yaml"), text);
      const run = await thaw("run", "rb.yaml", "--json");
      equal(run.code, 0, run.stderr);
      equal(JSON.parse(run.stdout).outcome, "met");
      const status = await thaw("status", "--json");
      equal(status.code, 0, status.stderr);
      const [listed] = JSON.parse(status.stdout);
      deepEqual([listed.runbook, listed.state], ["pg-e2e", "done"]);
      const store = await openStore(url);
      try {
        const stored = await store.getRun(listed.run);
        equal(stored?.runbookText ?? text, text);
        deepEqual((await store.steps(listed.run)).map((s) => [s.step, s.state]), [
          ["a", "done"],
          ["b", "done"],
        ]);
      } finally {
        await store.close();
      }
      ok(!`${run.stderr}${status.stderr}`.includes(cluster.password), "no password shown");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "the PostgreSQL cluster of this file stops, when the tests are done",
  ignore,
  sanitizeResources: false,
  fn: stopSharedCluster,
});
