// A hang-up (SIGHUP: the terminal or ssh session of `thaw run` is gone) must not end the
// recovery: the engine goes on with its output dropped, and the run ends done. Real `thaw`
// processes, a real SQLite store.
import assert from "node:assert/strict";
import { join } from "node:path";
import { thawCommand } from "./paths.ts";
import { exists, firstRun, inDir, stopListed, waitFor } from "./live_helpers.ts";

const RUNBOOK = `runbook: 1
name: hangup
steps:
  - { id: slow, run: "echo $$ >> pids; touch started; while [ ! -e go ]; do sleep 0.05; done; echo line" }
  - { id: after, run: "echo after > after.txt", needs: [slow] }
`;

Deno.test("thaw run goes on to the end, when its terminal hangs up (SIGHUP)", async () => {
  await inDir(RUNBOOK, async (dir) => {
    const child = thawCommand(["run", "rb.yaml", "--store", join(dir, "state.db")], {
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    try {
      await waitFor(dir, async () => await exists(join(dir, "started")) || undefined, "the step");
      // The terminal is gone: nothing reads the engine's output any more, and it gets SIGHUP.
      await child.stdout.cancel();
      await child.stderr.cancel();
      child.kill("SIGHUP");
      await Deno.writeTextFile(join(dir, "go"), "");
      const status = await child.status;
      assert.equal(status.code, 0, "the engine finished the run");
      assert.equal(await Deno.readTextFile(join(dir, "after.txt")), "after\n");
      const run = await waitFor(dir, firstRun);
      assert.equal(run.state, "done");
      assert.equal(run.outcome, "met");
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* ended */ }
      await stopListed(join(dir, "pids")); // a step outlives an engine that failed the test
    }
  });
});
