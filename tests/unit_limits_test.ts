/**
 * Values too large to plan: refused at load with a position (exit 2), never an endless plan.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { thawCommand } from "./paths.ts";

const DIGITS = "9".repeat(400);
/** An undemanded fetch waits for the last run step under lazy: an endless estimate never ended. */
const RUNBOOK = `runbook: 1
name: endless
bandwidth: 10MB/s
steps:
  - id: f
    fetch: { from: http://127.0.0.1:9/f, to: ./f, size: 1MB }
  - id: g
    fetch: { from: http://127.0.0.1:9/g, to: ./g, size: 1MB }
  - id: a
    needs: [f]
    run: "true"
    estimate: ${DIGITS}s
    milestone: m
`;

Deno.test("thaw plan, drill --simulate --strategy lazy and run exit 2 at the value, when a duration has 400 digits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw_limits_" });
  try {
    await Deno.writeTextFile(join(dir, "endless.yaml"), RUNBOOK);
    for (
      const args of [["plan"], ["drill", "--simulate", "--strategy", "lazy"], ["run"]]
    ) {
      const r = await thawCommand([...args, "endless.yaml"], {
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(60_000), // a bound on a hang, not a measure
      }).output();
      const err = new TextDecoder().decode(r.stderr);
      assert.equal(r.code, 2, `${args.join(" ")}: ${err}`);
      assert.match(err, /endless\.yaml:12:15: estimate: invalid duration .* too large/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
