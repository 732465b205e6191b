import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { pathToFileURL } from "node:url";
import { Kysely } from "kysely";
import {
  DEFAULT_STORE,
  openSqliteStore,
  openStore,
  type StepChange,
  StoreError,
} from "../engine/store/mod.ts";
import { migrate, MIGRATIONS, type StoreDatabase } from "../engine/store/migrations.ts";
import { NodeSqliteDialect } from "../engine/store/dialects/node_sqlite.ts";
import { newRun, storeConformance } from "./store_conformance.ts";
import { expire, raceInProcesses } from "./store_lease_conformance.ts";

const REPO = new URL("..", import.meta.url);

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-store-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Reads one value with a plain connection, outside the store. */
function peek<T>(path: string, query: string): T[] {
  const db = new DatabaseSync(path);
  try {
    return db.prepare(query).all() as T[];
  } finally {
    db.close();
  }
}

storeConformance("SQLite file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-store-" });
  const path = join(dir, "nested", "state.db");
  const store = await openSqliteStore(path);
  return {
    store,
    reopen: () => openSqliteStore(path),
    async cleanup() {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}, { shared: true });

storeConformance("SQLite :memory:", async () => {
  const store = await openStore(":memory:");
  return { store, cleanup: () => store.close() };
});

Deno.test("openSqliteStore() puts the file in WAL mode, when it creates it", async () => {
  await inTempDir(async (dir) => {
    const path = join(dir, "a", "b", "state.db");
    const store = await openSqliteStore(path);
    await store.createRun(newRun("r1"));
    deepEqual(peek(path, "pragma journal_mode"), [{ journal_mode: "wal" }]);
    await store.close();
  });
});

Deno.test("openSqliteStore() records migrations and does not re-run them, when reopened", async () => {
  await inTempDir(async (dir) => {
    const path = join(dir, "state.db");
    const first = await openSqliteStore(path);
    await first.createRun(newRun("r1"));
    await first.close();
    const query = "select name, timestamp from kysely_migration order by name";
    const recorded = peek<{ name: string; timestamp: string }>(path, query);
    deepEqual(recorded.map((m) => m.name), Object.keys(MIGRATIONS).sort());
    equal(recorded[0]?.name, "0001_initial");

    const again = await openSqliteStore(path);
    equal((await again.getRun("r1"))?.id, "r1", "the data is still there");
    await again.close();
    deepEqual(peek(path, query), recorded, "nothing ran again");

    const db = new Kysely<StoreDatabase>({
      dialect: new NodeSqliteDialect(new DatabaseSync(path)),
    });
    deepEqual(await migrate(db), []);
    await db.destroy();
  });
});

Deno.test("openSqliteStore() names the path and the cause, when the file is not a database", async () => {
  await inTempDir(async (dir) => {
    const path = join(dir, "notes.txt");
    const text = "these are an SRE's notes, not a database\n".repeat(40);
    await Deno.writeTextFile(path, text);
    await rejects(openSqliteStore(path), (e: Error) => {
      ok(e instanceof StoreError, `a StoreError, not ${e.name}`);
      ok(e.message.includes(path), e.message);
      ok(/not an SQLite database/.test(e.message), e.message);
      return true;
    });
    equal(await Deno.readTextFile(path), text, "the file is left alone");
  });
});

Deno.test("openSqliteStore() refuses the file before migrating it, when another program's tables are in it", async () => {
  await inTempDir(async (dir) => {
    const path = join(dir, "state.db");
    const db = new DatabaseSync(path);
    db.exec("create table runs (something text)");
    db.close();
    const before = await Deno.readFile(path);
    await rejects(
      openSqliteStore(path),
      (e: Error) =>
        e instanceof StoreError && e.message.includes(path) &&
        /not thaw's store: it is an SQLite database of another program \(tables runs\)/
          .test(e.message),
    );
    deepEqual(await Deno.readFile(path), before);
  });
});

Deno.test("migrate() leaves the schema as it was, when a migration fails", async () => {
  const db = new Kysely<StoreDatabase>({
    dialect: new NodeSqliteDialect(new DatabaseSync(":memory:")),
  });
  await migrate(db);
  const broken = {
    ...MIGRATIONS,
    "9999_broken": {
      // deno-lint-ignore no-explicit-any
      async up(k: Kysely<any>) {
        await k.schema.createTable("half_done").addColumn("x", "text").execute();
        throw new Error("disk full");
      },
    },
  };
  await rejects(migrate(db, broken), /migration 9999_broken failed: disk full/);
  const tables = await db.introspection.getTables();
  equal(tables.some((t) => t.name === "half_done"), false);
  deepEqual(await migrate(db), []);
  await db.destroy();
});

Deno.test("openSqliteStore() asks for an upgrade, when a newer thaw migrated the store", async () => {
  await inTempDir(async (dir) => {
    const path = join(dir, "state.db");
    await (await openSqliteStore(path)).close();
    const db = new DatabaseSync(path);
    db.exec(`insert into kysely_migration values ('0099_future', '${new Date().toISOString()}')`);
    db.close();
    await rejects(
      openSqliteStore(path),
      (e: Error) => e instanceof StoreError && /newer thaw .*0099_future/.test(e.message),
    );
  });
});

Deno.test("openSqliteStore() adds the runbook text and lease columns, when the store is older", async () => {
  await inTempDir(async (dir) => {
    const path = join(dir, "state.db");
    const old = Object.fromEntries(
      Object.entries(MIGRATIONS).filter(([name]) => name < "0004_runbook_text"),
    );
    const raw = new DatabaseSync(path);
    const db = new Kysely<StoreDatabase>({ dialect: new NodeSqliteDialect(raw) });
    await migrate(db, old);
    await db.insertInto("runs").values({
      id: "r0",
      runbook: "vod",
      file: "/rb/vod.yaml",
      file_sha256: "00",
      mode: "live",
      drill: 0,
      strategy: "aggressive",
      vars: "{}",
      steps: "[]",
      started_at: 1,
      pid: 1,
      host: "h",
      state: "done",
      heartbeat_at: 1,
      ended_at: 2,
      report: null,
      outcome: "met",
    } as never).execute();
    for (const seq of [1, 2, 3]) {
      await db.insertInto("step_events")
        .values({ run: "r0", seq, step: `s${seq}`, state: "done", at: seq, detail: null })
        .execute();
    }
    await db.destroy();
    const store = await openSqliteStore(path);
    const before = await store.getRun("r0");
    equal(before?.state, "done");
    equal("runbookText" in before!, false, "an older run has no text");
    await store.recordSteps("r0", [{ step: "s4", state: "done", at: 4 }]);
    deepEqual((await store.stepEvents("r0")).map((e) => e.seq), [1, 2, 3, 4]);
    equal(await store.lease("r0"), undefined);
    await store.createRun(newRun("r1", { runbookText: "name: vod\n" }));
    equal((await store.getRun("r1"))?.runbookText, "name: vod\n");
    await store.close();
  });
});

Deno.test("openStore() refuses an unknown kind of store, when given another URL", async () => {
  await rejects(
    openStore("mysql://db/thaw"),
    (e: Error) => e instanceof StoreError && /unknown kind of store/.test(e.message),
  );
  equal(DEFAULT_STORE, ".thaw/state.db");
});

Deno.test("openStore() opens an SQLite file, when given a path or a file URL", async () => {
  await inTempDir(async (dir) => {
    const path = join(dir, "state.db");
    const a = await openStore(path);
    await a.createRun(newRun("r1"));
    await a.close();
    const b = await openStore(pathToFileURL(path).href);
    equal((await b.getRun("r1"))?.id, "r1");
    await b.close();
  });
});

Deno.test("SqliteStore methods throw a StoreError naming the run, when it is unknown", async () => {
  const store = await openSqliteStore(":memory:");
  await rejects(
    store.addCommand("r9", "cancel"),
    /store :memory:: cannot queue cancel: no run "r9"/,
  );
  await rejects(store.addProcess("r9", { step: "a", pid: 1, pgid: 1 }), StoreError);
  await rejects(
    store.saveProgress("r9", [{
      step: "a",
      bytes: 1,
      total: null,
      prefetched: 0,
      demanded: false,
      source: 0,
      at: 0,
    }]),
    /no run "r9"/,
  );
  await store.createRun(newRun("r1"));
  await rejects(store.createRun(newRun("r1")), /run "r1" already exists/);
  await store.close();
  await rejects(store.getRun("r1"), /store is closed/);
  await store.close();
});

Deno.test("SqliteStore lets a second process read and cancel a run, while this one writes", async () => {
  await inTempDir(async (dir) => {
    const path = join(dir, "state.db");
    const store = await openSqliteStore(path);
    await store.createRun(newRun("r1"));
    await store.recordSteps("r1", [{ step: "fetch-db", state: "running", at: 0 }]);
    const module = new URL("engine/store/mod.ts", REPO).href;
    const code = `
      import { openStore } from ${JSON.stringify(module)};
      const store = await openStore(Deno.args[0]);
      const run = await store.getRun("r1");
      const [first] = await store.stepEvents("r1");
      const id = await store.addCommand("r1", "cancel");
      await store.close();
      console.log(JSON.stringify({ runbook: run?.runbook, state: run?.state, first, id }));
    `;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", code, path],
      cwd: REPO,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let exited = false;
    const output = child.output().finally(() => exited = true);
    let writes = 0;
    while (!exited) {
      writes += 1;
      const change: StepChange = { step: `step-${writes}`, state: "running", at: writes };
      await store.recordSteps("r1", [change]);
      await store.updateRun("r1", { heartbeatAt: writes });
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const { code: status, stdout, stderr } = await output;
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    equal(status, 0, decode(stderr));
    deepEqual(JSON.parse(decode(stdout)), {
      runbook: "vod",
      state: "running",
      first: { seq: 1, step: "fetch-db", state: "running", at: 0 },
      id: 1,
    });
    ok(writes >= 1);
    const events = await store.stepEvents("r1");
    deepEqual(events.map((e) => e.seq), Array.from({ length: writes + 1 }, (_, i) => i + 1));
    equal((await store.getRun("r1"))?.heartbeatAt, writes);
    deepEqual((await store.takeCommands("r1")).map((c) => [c.id, c.kind, c.step]), [
      [1, "cancel", null],
    ]);
    await store.close();
  });
});

Deno.test("takeLease() gives an expired lease to exactly one standby, when processes race", async () => {
  await inTempDir(async (dir) => {
    const path = join(dir, "state.db");
    const store = await openSqliteStore(path);
    try {
      await store.createRun(newRun("r1"));
      const old = await store.acquireLease("r1", "engine", 1);
      await expire(store, "r1");
      const got = await raceInProcesses(path, "r1", 4);
      const winners = got.filter((l) => l !== null);
      equal(winners.length, 1, JSON.stringify(got));
      equal(winners[0]!.token, old.token + 1);
      equal((await store.lease("r1"))?.holder, winners[0]!.holder);
    } finally {
      await store.close();
    }
  });
});
