/**
 * The live engine's figures stay true to the link, for real (real processes, a real HTTP server on
 * 127.0.0.1, a real SQLite store): no report shows a TTR or BTN below its lower bound, a `run:`
 * source cannot outrun its share, a `local` fetch is not paced, and history learns a source's
 * rate over the seconds it was moving.
 *
 * @module
 */
import { equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { estimatesFrom } from "../engine/plan/history.ts";
import { runLive } from "../engine/live/loop.ts";
import { readRunbook } from "../engine/runbook/load.ts";
import type { Report } from "../engine/schedule/report.ts";
import { openStore } from "../engine/store/mod.ts";
import { startBackupServer } from "./http_backup_server.ts";

const SIZE = 4_000_000;

/**
 * Runs `text` in a new temporary directory with the live engine in this process; `seen` gets
 * every report the engine saved while it ran.
 */
async function live(
  text: string,
  dir?: string,
  seen?: (report: Report) => void,
): Promise<{ report: Report; dir: string }> {
  dir ??= await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "rb.yaml"), text);
  const rb = await readRunbook("rb.yaml", { cwd: dir });
  const store = await openStore(join(dir, "state.db"));
  try {
    const { report } = await runLive({
      runbook: rb,
      store,
      run: "R" + crypto.randomUUID().slice(0, 8),
      fileSha256: "x",
      onChange: (run) => run.report && seen?.(run.report),
    });
    return { report, dir };
  } finally {
    await store.close();
  }
}

function assertWithinBounds(report: Report): void {
  equal(report.outcome, "met", JSON.stringify(report));
  ok(
    report.ttr_s! >= report.lower_bound.ttr_s,
    `TTR ${report.ttr_s} < ${report.lower_bound.ttr_s}`,
  );
  ok(
    report.btn_s! >= report.lower_bound.btn_s,
    `BTN ${report.btn_s} < ${report.lower_bound.btn_s}`,
  );
}

function fetchTime(report: Report, id: string): number {
  const s = report.steps.find((s) => s.id === id)!;
  return s.end_s! - s.start_s!;
}

Deno.test("runLive() reports no TTR below its bound, when a run: source writes its data at once", async () => {
  const { report, dir } = await live(`runbook: 1
name: burst
bandwidth: 4MB/s
steps:
  - { id: f, fetch: { run: 'head -c ${SIZE} /dev/zero > "$THAW_TO"', to: ./out/f.bin } }
  - { id: use, needs: [f], run: "test -s out/f.bin", milestone: up }
`);
  try {
    assertWithinBounds(report);
    ok(report.lower_bound.ttr_s >= 1); // 4 MB over 4 MB/s, then the check
    // Written in a blink, but done only when the link allowed its bytes.
    ok(fetchTime(report, "f") >= 0.9, `${fetchTime(report, "f")} s`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runLive() holds a run: source to its share, when it can write 50 times faster", async () => {
  const dir = await Deno.makeTempDir();
  const share = 4e6;
  const samples: [number, number][] = [];
  let running = true;
  const start = performance.now();
  const sampling = (async () => {
    while (running) {
      let bytes = 0;
      try {
        for await (const f of Deno.readDir(join(dir, "out"))) {
          bytes += (await Deno.stat(join(dir, "out", f.name)).catch(() => ({ size: 0 }))).size;
        }
      } catch { /* not created yet */ }
      samples.push([(performance.now() - start) / 1000, bytes]);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    const { report } = await live(
      `runbook: 1
name: held
bandwidth: 4MB/s
steps:
  - id: f
    fetch:
      run: 'for i in $(seq 80); do head -c 100000 /dev/zero; done > "$THAW_TO"'
      to: ./out/f.bin
`,
      dir,
    );
    running = false;
    await sampling;
    assertWithinBounds(report);
    // Never more than a step ahead of what its share allowed since the run began.
    const ahead = Math.max(...samples.map(([t, bytes]) => bytes - share * t));
    ok(ahead < 3e6, `${ahead} bytes ahead of its share`);
  } finally {
    running = false;
    await sampling;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runLive() reports no TTR below its bound, when the source beats its declared rate", async () => {
  const served = await Deno.makeTempDir();
  await Deno.writeFile(join(served, "f.bin"), new Uint8Array(SIZE).fill(1));
  const server = startBackupServer(served);
  try {
    // The runbook says 200 kB/s (20 s); the source delivers at the link's 4 MB/s.
    const { report, dir } = await live(`runbook: 1
name: wrong-rate
bandwidth: 4MB/s
steps:
  - { id: f, fetch: { from: "${server.url}f.bin", to: ./out/f.bin, rate: 200KB/s } }
  - { id: use, needs: [f], run: "test -s out/f.bin", milestone: up }
`);
    await Deno.remove(dir, { recursive: true });
    assertWithinBounds(report);
    ok(fetchTime(report, "f") < 20, "raised from the declared rate");
  } finally {
    await server.close();
    await Deno.remove(served, { recursive: true });
  }
});

Deno.test("runLive() reports no TTR below its bound while it runs, when the runbook overestimated a size", async () => {
  const reports: Report[] = [];
  // The plan says 100 MB (50 s of link); the source has 2 MB (1 s). TTR comes 2 s before BTN.
  const { report, dir } = await live(
    `runbook: 1
name: smaller
bandwidth: 2MB/s
steps:
  - { id: f, fetch: { run: 'head -c 2000000 /dev/zero > "$THAW_TO"', to: ./out/f.bin, size: 100MB } }
  - { id: use, needs: [f], run: "true", milestone: up }
  - { id: tidy, run: "sleep 3", estimate: 3s }
`,
    undefined,
    (r) => reports.push(structuredClone(r)),
  );
  try {
    assertWithinBounds(report);
    const early = reports.filter((r) => r.ttr_s !== null && r.btn_s === null);
    ok(early.length > 0, "no report was saved between TTR and BTN");
    for (const r of early) {
      ok(r.ttr_s! >= r.lower_bound.ttr_s, `TTR ${r.ttr_s} < ${r.lower_bound.ttr_s} while running`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runLive() does not pace a local fetch, when the link is narrow", async () => {
  // 8 MB over a 1 MB/s link would take 8 s; local, it crosses no link.
  const { report, dir } = await live(`runbook: 1
name: local-copy
bandwidth: 1MB/s
steps:
  - id: f
    fetch: { run: 'head -c 8000000 /dev/zero > "$THAW_TO"', to: ./out/f.bin, local: true }
  - { id: use, needs: [f], run: "test -s out/f.bin", milestone: up }
`);
  try {
    equal(report.outcome, "met");
    ok(fetchTime(report, "f") < 4, `paced: ${fetchTime(report, "f")} s`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("history learns a fetch's rate over its seconds moving, when the scheduler paused it", async () => {
  const served = await Deno.makeTempDir();
  await Deno.writeFile(join(served, "a.bin"), new Uint8Array(SIZE).fill(1));
  await Deno.writeFile(join(served, "b.bin"), new Uint8Array(SIZE).fill(2));
  const server = startBackupServer(served);
  const dir = await Deno.makeTempDir();
  try {
    // `b` starts first (a prefetch), then `need-a` freezes on `a`, which takes the whole link and
    // pauses `b` for about 1 s.
    const text = `runbook: 1
name: paused
bandwidth: 4MB/s
steps:
  - { id: b, fetch: { from: "${server.url}b.bin", to: ./out/b.bin } }
  - { id: wait, run: "sleep 0.5", estimate: 0.5s }
  - { id: a, needs: [wait], fetch: { from: "${server.url}a.bin", to: ./out/a.bin } }
  - { id: need-a, needs: [a], run: "true", milestone: up }
`;
    const { report } = await live(text, dir);
    assertWithinBounds(report);
    const store = await openStore(join(dir, "state.db"));
    try {
      const samples = await store.history("paused");
      const b = samples.find((s) => s.step === "b")!;
      ok(b.moving !== undefined && b.moving < b.seconds - 1, JSON.stringify(b));
      const rb = await readRunbook("rb.yaml", { cwd: dir });
      // Bytes over the seconds moving: at the link's cap, so not the source's own rate.
      equal(estimatesFrom(rb, samples).rate?.has("b"), false);
    } finally {
      await store.close();
    }
  } finally {
    await server.close();
    await Deno.remove(served, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});
