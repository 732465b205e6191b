/**
 * Timeouts of any allowed size: a timer of 2^31 ms (24.8 days) or more fires at once in Deno and
 * Node, so the real clock must wait in several timers.
 *
 * @module
 */
import assert from "node:assert/strict";
import { runStep } from "../steps/run/run.ts";
import { MAX_TIMER_MS, realClock } from "../steps/types.ts";
import { MAX_DURATION, parseDuration } from "../engine/runbook/units.ts";

const DAY_MS = 86400e3;
const PATH = Deno.env.get("PATH") ?? "/usr/bin:/bin";

Deno.test("realClock.sleep() does not wake early, when asked for 25 days or 10 years", async () => {
  for (const ms of [25 * DAY_MS, MAX_TIMER_MS + 1, MAX_DURATION * 1000]) {
    const ac = new AbortController();
    let woke = false;
    const slept = realClock.sleep(ms, ac.signal).then(() => woke = true, () => "aborted");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(woke, false, `a sleep of ${ms} ms ended within 300 ms`);
    ac.abort(new Error("done"));
    assert.equal(await slept, "aborted");
  }
});

Deno.test("realClock.sleep() still wakes on time, when asked for a short sleep", async () => {
  const start = performance.now();
  await realClock.sleep(20);
  assert.ok(performance.now() - start >= 19);
});

Deno.test("runStep() lets the command finish, when its timeout is 30 days", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw_long_timeout_" });
  try {
    const effect = await runStep(
      {
        command: "sleep 1; echo done > out",
        shell: "sh",
        retries: 0,
        background: false,
        timeoutMs: parseDuration("30d") * 1000,
      },
      {
        signal: new AbortController().signal,
        clock: realClock,
        env: { PATH },
        cwd: dir,
        log: () => {},
      },
    );
    assert.deepEqual(effect, { ok: true, attempts: 1 });
    assert.equal(await Deno.readTextFile(`${dir}/out`), "done\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
