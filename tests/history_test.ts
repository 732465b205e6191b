/**
 * Estimates from history, through a real SQLite store file: only runs that ended `done` teach,
 * and a fetch's rate is its bytes over the seconds it was moving.
 *
 * @module
 */
import { equal } from "node:assert/strict";
import { join } from "node:path";
import { historyEstimates } from "../engine/plan/history.ts";
import { parseRunbook } from "../engine/runbook/load.ts";
import { openStore } from "../engine/store/mod.ts";
import type { Store, StoredState } from "../engine/store/types.ts";

const RUNBOOK = parseRunbook(
  `runbook: 1
name: restic
bandwidth: 10MB/s
steps:
  - { id: fetch-repo, fetch: { from: /b/repo, to: ./repo } }
  - { id: restore, needs: [fetch-repo], run: "restic restore latest" }
`,
  "restic.yaml",
);

/** Records a run of RUNBOOK ended in `state`: `restore` took `seconds`, the fetch as given. */
async function addRun(
  store: Store,
  id: string,
  state: StoredState,
  seconds: number,
  fetch: { seconds: number; bytes: number; moving?: number },
  startedAt: number,
): Promise<void> {
  await store.createRun({
    id,
    runbook: "restic",
    file: "/r/restic.yaml",
    fileSha256: "x",
    mode: "live",
    drill: false,
    strategy: "aggressive",
    vars: {},
    steps: ["fetch-repo", "restore"],
    startedAt,
    pid: 1,
    host: "h",
  });
  await store.recordSteps(id, [
    { step: "fetch-repo", state: "running", at: 0 },
    { step: "fetch-repo", state: "done", at: fetch.seconds },
    { step: "restore", state: "running", at: fetch.seconds },
    { step: "restore", state: "done", at: fetch.seconds + seconds },
  ]);
  await store.saveProgress(id, [{
    step: "fetch-repo",
    bytes: fetch.bytes,
    total: fetch.bytes,
    prefetched: fetch.bytes,
    demanded: false,
    source: 0,
    at: startedAt,
    ...(fetch.moving === undefined ? {} : { moving: fetch.moving }),
  }]);
  if (state !== "running") await store.updateRun(id, { state });
}

async function withStore(body: (store: Store) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  const store = await openStore(join(dir, "state.db"));
  try {
    await body(store);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("historyEstimates() learns nothing from a failed, cancelled or hung run, when one is newer", async () => {
  await withStore(async (store) => {
    const t0 = 1_700_000_000_000;
    const fetch = { seconds: 2, bytes: 10e6 };
    await addRun(store, "good", "done", 1.2, fetch, t0);
    // The same restore hung for 4 minutes, then the run was cancelled, failed, or its engine died.
    const hung = { seconds: 200, bytes: 10e6 };
    await addRun(store, "hung-cancelled", "cancelled", 240, hung, t0 + 1000);
    await addRun(store, "hung-failed", "failed", 240, hung, t0 + 2000);
    await addRun(store, "hung-interrupted", "running", 240, hung, t0 + 3000);
    const e = await historyEstimates(store, RUNBOOK);
    equal(e.duration?.get("restore")?.toFixed(3), "1.200");
    equal(e.rate?.get("fetch-repo"), 5e6);
  });
});

Deno.test("historyEstimates() learns a fetch's rate over its seconds moving, when it was paused", async () => {
  await withStore(async (store) => {
    // 10 MB in 20 s from start to end, but it moved only 4 s of them: the source does 2.5 MB/s.
    await addRun(store, "paused", "done", 1, { seconds: 20, bytes: 10e6, moving: 4 }, 1e12);
    const e = await historyEstimates(store, RUNBOOK);
    equal(e.rate?.get("fetch-repo"), 2.5e6);
  });
});
