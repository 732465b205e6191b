/**
 * A source added from outside the engine (`toy://`, in `toy_source.ts`) works like a built-in
 * one: the runbook that uses it loads, plans and simulates, and a live drill fetches through it,
 * in this process (`runLive`) and through the real `thaw` command (`toy_thaw.ts`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  openStore,
  parseRunbook,
  plan,
  readRunbook,
  registerSource,
  RunbookErrors,
  runLive,
  simulate,
} from "../mod.ts";
import { fetchData, realClock, unlimitedLink } from "../steps/mod.ts";
import { toyBytes, toyOpens, toySha256, toySource } from "./toy_source.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BYTES = 300_000;

function runbookText(sha: string): string {
  return `runbook: 1
name: toy
bandwidth: 100MB/s
steps:
  - id: get
    fetch: { from: toy://alpha/${BYTES}, to: ./data/alpha.bin, size: 300KB, sha256: ${sha} }
  - id: use
    needs: [get]
    run: test "$(wc -c < data/alpha.bin)" -eq ${BYTES}
    estimate: 1s
`;
}

async function sha256File(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

Deno.test("runLive() fetches through a source registered outside the engine, when its runbook loads, plans and simulates", async () => {
  using _toy = registerSource(toySource);
  const dir = await Deno.makeTempDir();
  const store = await openStore(join(dir, "state.db"));
  try {
    const sha = toySha256("alpha", BYTES);
    await Deno.writeTextFile(join(dir, "rb.yaml"), runbookText(sha));
    const rb = await readRunbook("rb.yaml", { cwd: dir, drill: true });
    assert.equal(rb.steps[0]!.kind, "fetch");

    const planned = plan(rb);
    assert.deepEqual(planned.levels, [["get"], ["use"]]);
    assert.equal(planned.critical_path.ttr.join(), "get,use");
    const simulated = simulate(rb, { strategy: "aggressive" });
    assert.equal(simulated.outcome, "met");
    assert.equal(simulated.ttr_s, 1.003); // 300 KB at 100 MB/s, then 1 s

    const { report } = await runLive({ runbook: rb, store, run: "Rtoy1", fileSha256: "x" });
    assert.equal(report.outcome, "met", JSON.stringify(report.steps));
    assert.equal(report.mode, "live");
    assert.equal(report.bytes.total, BYTES);
    assert.equal(await sha256File(join(dir, "data/alpha.bin")), sha);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw drill fetches through the toy source, when the site's entry point registers it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sha = toySha256("beta", BYTES);
    await Deno.writeTextFile(join(dir, "rb.yaml"), runbookText(sha).replaceAll("alpha", "beta"));
    const run = (entry: string) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", join(ROOT, entry), "drill", "rb.yaml", "--store", "state.db"],
        cwd: dir,
        env: { INIT_CWD: dir, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();

    // The plain command knows no toy://: bad input, at its position.
    const plain = await run("engine/main.ts");
    const said = new TextDecoder().decode(plain.stderr);
    assert.equal(plain.code, 2, said);
    assert.match(said, /rb\.yaml:6:20: unsupported source "toy:\/\/"/);

    const toy = await run("tests/toy_thaw.ts");
    const out = new TextDecoder().decode(toy.stdout) + new TextDecoder().decode(toy.stderr);
    assert.equal(toy.code, 0, out);
    assert.equal(await sha256File(join(dir, "data/beta.bin")), sha);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetchData() continues a toy fetch after the bytes an interrupted attempt left", async () => {
  using _toy = registerSource(toySource);
  const dir = await Deno.makeTempDir();
  try {
    const tmp = join(dir, ".gamma.part");
    const head = [...toyBytes("gamma", BYTES)].slice(0, 3); // 3 chunks of 16 KiB
    await Deno.writeFile(tmp, new Uint8Array(head.flatMap((c) => [...c])));
    toyOpens.length = 0;
    const effect = await fetchData({
      sources: [{ kind: "location", location: `toy://gamma/${BYTES}` }],
      to: join(dir, "gamma.bin"),
      tmp,
      sha256: toySha256("gamma", BYTES),
      retries: 0,
    }, {
      signal: new AbortController().signal,
      clock: realClock,
      env: {},
      cwd: dir,
      log: () => {},
      link: unlimitedLink,
      progress: () => {},
    });
    assert.deepEqual(effect, { ok: true, bytes: BYTES, transferred: BYTES - 3 * 16384, source: 0 });
    assert.deepEqual(toyOpens, [3 * 16384]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseRunbook() suggests the registered source, when a location misspells its scheme", () => {
  using _toy = registerSource(toySource);
  const text = runbookText("a".repeat(64)).replace("toy://", "tyo://");
  assert.throws(() => parseRunbook(text, "rb.yaml"), (error) => {
    assert(error instanceof RunbookErrors);
    assert.equal(
      error.message,
      'rb.yaml:6:20: unsupported source "tyo://" (did you mean "toy://"?): use http(s)://, ' +
        "file://, a path, toy://, or fetch.run with a command (for example restic or aws s3 cp)",
    );
    return true;
  });
});
