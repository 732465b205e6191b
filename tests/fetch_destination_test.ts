/**
 * What a fetch finds at `to`: a fetch never deletes what thaw did not write.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fetchData } from "../steps/fetch/fetch.ts";
import { type FetchContext, type FetchSpec, realClock, unlimitedLink } from "../steps/types.ts";
import { thawCommand } from "./paths.ts";

function context(cwd: string, logs: string[] = []): FetchContext {
  return {
    signal: new AbortController().signal,
    clock: realClock,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    cwd,
    log: (line) => logs.push(line),
    link: unlimitedLink,
    progress: () => {},
  };
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "thaw_fetch_to_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

Deno.test("fetchData() fails before it starts and deletes nothing, when to is a directory thaw did not write", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "backup.dump"), "new data");
    const to = join(dir, "site");
    await Deno.mkdir(to);
    await Deno.writeTextFile(join(to, "index.html"), "precious");
    const spec: FetchSpec = {
      sources: [{ kind: "location", location: join(dir, "backup.dump") }],
      to,
      tmp: join(dir, ".site.thaw-r1.part"),
      retries: 2,
    };
    const effect = await fetchData(spec, context(dir));
    assert.equal(effect.ok, false);
    assert.match(
      !effect.ok ? effect.reason : "",
      /site is an existing directory thaw did not write: a fetch never deletes it/,
    );
    assert.equal(effect.transferred, 0);
    assert.equal(await Deno.readTextFile(join(to, "index.html")), "precious");
    assert.deepEqual(names(dir), ["backup.dump", "site"]);
  });
});

Deno.test("fetchData() replaces the file at the final rename and says so, when to is an existing file", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "backup.dump"), "new data");
    const to = join(dir, "db.dump");
    await Deno.writeTextFile(to, "old");
    const logs: string[] = [];
    const effect = await fetchData({
      sources: [{ kind: "location", location: join(dir, "backup.dump") }],
      to,
      tmp: join(dir, ".db.dump.thaw-r1.part"),
      retries: 0,
    }, context(dir, logs));
    assert.deepEqual(effect, { ok: true, bytes: 8, transferred: 8, source: 0, replaced: "file" });
    assert.equal(await Deno.readTextFile(to), "new data");
    assert.ok(logs.some((l) => l.includes("replaced the file that was there")), logs.join("\n"));
  });
});

Deno.test("fetchData() replaces a directory, when thaw placed it there in an earlier fetch", async () => {
  await withDir(async (dir) => {
    const to = join(dir, "archive");
    const spec = (n: number): FetchSpec => ({
      sources: [{
        kind: "run",
        command: `mkdir "$THAW_TO" && echo ${n} > "$THAW_TO/data"`,
        shell: "sh",
      }],
      to,
      tmp: join(dir, `.archive.thaw-r${n}.part`),
      retries: 0,
    });
    const first = await fetchData(spec(1), context(dir));
    assert.equal(first.ok && first.replaced, undefined);
    const second = await fetchData(spec(2), context(dir));
    assert.equal(second.ok && second.replaced, "directory");
    assert.equal(await Deno.readTextFile(join(to, "data")), "2\n");
    // Replaced by hand: no longer what thaw wrote.
    await Deno.remove(to, { recursive: true });
    await Deno.mkdir(to);
    await Deno.writeTextFile(join(to, "mine"), "x");
    const third = await fetchData(spec(3), context(dir));
    assert.equal(third.ok, false);
    assert.equal(await Deno.readTextFile(join(to, "mine")), "x");
  });
});

Deno.test("thaw run leaves the runbook's directory alone, when --var makes a fetch's to point at it", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "data.bin"), "12345678");
    await Deno.writeTextFile(
      join(dir, "rb.yaml"),
      `runbook: 1
name: to-dot
vars:
  to: ./restored.bin
steps:
  - id: fetch
    fetch: { from: ./data.bin, to: "\${{ vars.to }}" }
`,
    );
    const before = names(dir);
    const r = await thawCommand(["run", "rb.yaml", "--var", "to=."], {
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 1, out);
    assert.match(out, /existing directory thaw did not write/);
    assert.equal((await Deno.stat(dir)).isDirectory, true);
    assert.deepEqual(names(dir).filter((n) => n !== ".thaw"), before);
  });
});

Deno.test("thaw run says in its report that a fetch replaced a file, when to already held one", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "data.bin"), "12345678");
    await Deno.writeTextFile(join(dir, "restored.bin"), "old");
    await Deno.writeTextFile(
      join(dir, "rb.yaml"),
      `runbook: 1
name: to-file
steps:
  - id: fetch
    fetch: { from: ./data.bin, to: ./restored.bin }
`,
    );
    const r = await thawCommand(["run", "rb.yaml", "--json"], {
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout);
    assert.equal(r.code, 0, out + new TextDecoder().decode(r.stderr));
    const step = JSON.parse(out).steps[0];
    assert.equal(step.state, "done");
    assert.equal(step.detail, `replaced the file that was at ${join(dir, "restored.bin")}`);
    assert.equal(await Deno.readTextFile(join(dir, "restored.bin")), "12345678");
  });
});
