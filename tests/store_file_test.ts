/**
 * The store's file: owner-only, and never a file that is not thaw's store.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { openStore } from "../engine/store/mod.ts";
import { thawCommand } from "./paths.ts";

const RUNBOOK = `runbook: 1
name: modes
vars:
  pw: none
steps:
  - id: hello
    run: echo "secret is \${{ vars.pw }}"
`;

async function thaw(dir: string, args: string[]) {
  const r = await thawCommand(args, { cwd: dir, stdout: "piped", stderr: "piped" }).output();
  return { code: r.code, err: new TextDecoder().decode(r.stderr) };
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "thaw_store_file_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const mode = (path: string) => Deno.statSync(path).mode! & 0o777;

Deno.test("thaw run creates the store, its WAL and the step logs owner-only, when --var holds a password", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "modes.yaml"), RUNBOOK);
    const r = await thaw(dir, ["run", "modes.yaml", "--var", "pw=hunter2"]);
    assert.equal(r.code, 0, r.err);
    const thawDir = join(dir, ".thaw");
    assert.equal(mode(thawDir).toString(8), "700");
    assert.equal(mode(join(thawDir, "state.db")).toString(8), "600");
    for (const extra of ["state.db-wal", "state.db-shm"]) {
      const p = join(thawDir, extra);
      try {
        assert.equal(mode(p).toString(8), "600", extra);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    const logs = join(thawDir, "logs");
    assert.equal(mode(logs).toString(8), "700");
    const [run] = [...Deno.readDirSync(logs)];
    assert.ok(run, "no log directory for the run");
    assert.equal(mode(join(logs, run.name)).toString(8), "700");
    const log = join(logs, run.name, "hello.log");
    assert.equal(await Deno.readTextFile(log), "secret is hunter2\n");
    assert.equal(mode(log).toString(8), "600");
  });
});

Deno.test("openStore() makes an older store owner-only, when it was readable by others", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "state.db");
    (await openStore(path)).close();
    Deno.chmodSync(path, 0o644);
    await (await openStore(path)).close();
    assert.equal(mode(path).toString(8), "600");
  });
});

Deno.test("thaw refuses --store and writes nothing into it, when the file is not thaw's store", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "modes.yaml"), RUNBOOK);
    const notes = join(dir, "notes.txt");
    await Deno.writeTextFile(notes, "runbook notes, do not lose\n");
    const other = join(dir, "app.db");
    const db = new DatabaseSync(other);
    db.exec("create table users (name text); insert into users values ('ann')");
    db.close();
    for (const file of [notes, other]) {
      const before = await Deno.readFile(file);
      for (const args of [["run", "modes.yaml"], ["status"], ["plan", "modes.yaml"]]) {
        const r = await thaw(dir, [...args, "--store", file]);
        assert.equal(r.code, 2, `${args[0]} --store ${file}: ${r.err}`);
        assert.match(r.err, /not thaw's store: .*thaw wrote nothing into it/);
        assert.deepEqual(await Deno.readFile(file), before, `${args[0]} changed ${file}`);
      }
    }
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "app.db",
      "modes.yaml",
      "notes.txt",
    ]);
  });
});

Deno.test("thaw exits 2 and creates no file, when --store is a URL of an unknown kind", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "modes.yaml"), RUNBOOK);
    for (const args of [["run", "modes.yaml"], ["status"], ["plan", "modes.yaml"]]) {
      const r = await thaw(dir, [...args, "--store", "mysql://db.example/thaw"]);
      assert.equal(r.code, 2, `${args[0]}: ${r.err}`);
      assert.match(r.err, /cannot open the store mysql:\/\/db\.example\/thaw: unknown kind/);
    }
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["modes.yaml"]);
  });
});

Deno.test("openStore() takes an empty file or an empty database, when it is to become the store", async () => {
  await withDir(async (dir) => {
    const empty = join(dir, "empty.db");
    await Deno.writeTextFile(empty, "");
    await (await openStore(empty)).close();
    const blank = join(dir, "blank.db");
    const db = new DatabaseSync(blank);
    db.exec("pragma user_version = 0; vacuum");
    db.close();
    await (await openStore(blank)).close();
    await (await openStore(`file://${blank}`)).close();
  });
});
