/**
 * `thaw` as a command run from anywhere: installed with `deno install --global` (the `install`
 * task), and built into one binary with `deno compile` (the `compile` task) where Deno's runtime
 * for compiled programs is at hand.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { childEnv, fromFileUrl } from "./paths.ts";

const ROOT = fromFileUrl(new URL("../", import.meta.url));

const RUNBOOK = `runbook: 1
name: anywhere
steps:
  - id: prepare
    run: echo ready > prepared.txt
    estimate: 1s
    milestone: service
  - id: check
    needs: [prepare]
    run: grep -q ready prepared.txt
    estimate: 1s
`;

/** Runs `program ARGS` in `cwd` with this process's environment (less `INIT_CWD`). */
async function run(program: string, args: string[], cwd: string) {
  const out = await new Deno.Command(program, {
    args,
    cwd,
    clearEnv: true,
    env: childEnv(),
    stdin: "null",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** A drill, simulated then live, of a small runbook in `dir`, by the `thaw` at `program`. */
async function drillWith(program: string, dir: string): Promise<void> {
  await Deno.writeTextFile(join(dir, "rb.yaml"), RUNBOOK);
  const simulated = await run(program, ["drill", "--simulate", "rb.yaml", "--json"], dir);
  assert.equal(simulated.code, 0, simulated.stderr);
  assert.equal(JSON.parse(simulated.stdout).outcome, "met");
  const live = await run(program, ["drill", "rb.yaml", "--json"], dir);
  assert.equal(live.code, 0, live.stderr);
  const report = JSON.parse(live.stdout);
  assert.equal(report.outcome, "met");
  assert.deepEqual(report.steps.map((s: { state: string }) => s.state), ["done", "done"]);
  // The store is the user's directory's, not the repository's.
  assert.ok((await Deno.stat(join(dir, ".thaw", "state.db"))).isFile);
}

Deno.test("deno task install gives a thaw command that drills a runbook in any directory", async () => {
  const root = await Deno.makeTempDir({ prefix: "thaw-install-" });
  const work = await Deno.makeTempDir({ prefix: "thaw-elsewhere-" });
  try {
    // The task's command, with --root so that nothing is written under ~/.deno.
    const out = await run(Deno.execPath(), [
      "install",
      "--global",
      "--allow-all",
      "--force",
      "--name",
      "thaw",
      "--root",
      root,
      "--config",
      join(ROOT, "deno.json"),
      join(ROOT, "engine/main.ts"),
    ], work);
    assert.equal(out.code, 0, out.stderr);
    await drillWith(join(root, "bin", "thaw"), work);
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(work, { recursive: true });
  }
});

const DENORT = Deno.env.get("DENORT_BIN");

Deno.test({
  name: "deno task compile builds one binary that drills a runbook without the repository",
  // `deno compile` joins the program to Deno's runtime for compiled programs (denort), which it
  // downloads from dl.deno.land unless DENORT_BIN names a copy; tests reach only loopback.
  ignore: DENORT === undefined,
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "thaw-compiled-" });
    try {
      const binary = join(work, "thaw");
      const out = await run(Deno.execPath(), [
        "compile",
        "--allow-all",
        "--output",
        binary,
        join(ROOT, "engine/main.ts"),
      ], ROOT);
      assert.equal(out.code, 0, out.stderr);
      await drillWith(binary, work);
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

if (DENORT === undefined) {
  console.error(
    "install_test: the deno compile test is ignored: DENORT_BIN is not set (deno compile " +
      "downloads its runtime from dl.deno.land otherwise, and tests reach only loopback)",
  );
}
