/**
 * Test helper: a runbook written to a directory, read as `thaw` reads it, and recorded in a store
 * as a live run its engine just created (running, this process, this host). Shared by the tests
 * of the API, the pages and the waits.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";
import { readRunbook } from "../engine/runbook/load.ts";
import { newRunId } from "../engine/schedule/report.ts";
import type { Runbook } from "../engine/runbook/model.ts";
import type { Store } from "../engine/store/types.ts";

/** How the stored run differs from the default (a live run, not a drill, started now). */
export interface StoredRunOptions {
  readonly drill?: boolean;
  /** How long ago the run started, in milliseconds. */
  readonly ageMs?: number;
  /** Store the runbook's text with the run, as newer engines do. */
  readonly runbookText?: boolean;
}

/** Writes `text` to `dir/rb.yaml`, reads it and creates its run in `store`. */
export async function createStoredRun(
  store: Store,
  dir: string,
  text: string,
  options: StoredRunOptions = {},
): Promise<{ rb: Runbook; run: string }> {
  await Deno.writeTextFile(join(dir, "rb.yaml"), text);
  const rb = await readRunbook("rb.yaml", { cwd: dir, vars: {} });
  const run = newRunId();
  await store.createRun({
    id: run,
    runbook: rb.name,
    file: join(dir, "rb.yaml"),
    fileSha256: createHash("sha256").update(rb.text).digest("hex"),
    ...(options.runbookText ? { runbookText: rb.text } : {}),
    mode: "live",
    drill: options.drill ?? false,
    strategy: "aggressive",
    vars: {},
    steps: rb.steps.map((s) => s.id),
    startedAt: Date.now() - (options.ageMs ?? 0),
    pid: Deno.pid,
    host: hostname(),
  });
  return { rb, run };
}
