/**
 * Fetches that start slowly under a `bandwidth:` cap, for real: a `run:` source silent for its
 * first 2.5 s, an HTTP server on 127.0.0.1 that answers after 2.5 s, and a fetch approved 2.5 s
 * after it was started. Each must finish (the engine, a child `thaw run`, is killed after
 * {@linkcode DEADLINE_MS}: a starved fetch would take minutes), and Node's
 * `TimeoutOverflowWarning` must never be printed.
 *
 * @module
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../engine/store/mod.ts";
import { startBackupServer } from "./http_backup_server.ts";
import { thawCommand } from "./paths.ts";

/** Far beyond what these runs need (about 5 s), far below what a starved fetch takes. */
const DEADLINE_MS = 20_000;
/** 2 MB/s: the 4 MB fetched below take 2 s of link. */
const BANDWIDTH = "2MB/s";
const SIZE = 4_000_000;

interface Ran {
  code: number;
  stderr: string;
  report: {
    outcome: string;
    ttr_s: number;
    btn_s: number;
    lower_bound: { ttr_s: number; btn_s: number };
    steps: { id: string; bytes?: number; end_s: number | null }[];
  };
}

/** `thaw run rb.yaml --json` in `dir`, killed (with its process group) at the deadline. */
async function runThaw(dir: string, during?: (dir: string) => Promise<void>): Promise<Ran> {
  const child = thawCommand(["run", "rb.yaml", "--json", "--store", join(dir, "state.db")], {
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  const timer = setTimeout(() => {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch { /* gone */ }
  }, DEADLINE_MS);
  try {
    const [out] = await Promise.all([child.output(), during?.(dir)]);
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    ok(
      out.signal === null,
      `the run stalled: killed after ${DEADLINE_MS} ms\n${stderr.slice(-600)}`,
    );
    return { code: out.code, stderr, report: JSON.parse(stdout.trim().split("\n").pop()!) };
  } finally {
    clearTimeout(timer);
  }
}

async function inDir(runbook: string, body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "rb.yaml"), runbook);
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function assertFinished(ran: Ran): void {
  equal(ran.code, 0, ran.stderr.slice(-600));
  equal(ran.report.outcome, "met");
  equal(ran.report.steps.find((s) => s.id === "f")!.bytes, SIZE);
  equal(/TimeoutOverflowWarning/.test(ran.stderr), false, "a timer overflowed");
  const { ttr_s, btn_s, lower_bound } = ran.report;
  ok(ttr_s >= lower_bound.ttr_s && btn_s >= lower_bound.btn_s, JSON.stringify(ran.report));
}

/** A `run:` source silent for its first 2.5 s. */
async function runSourceSilent(): Promise<void> {
  await inDir(
    `runbook: 1
name: slow-run-source
bandwidth: ${BANDWIDTH}
steps:
  - id: f
    fetch:
      run: sleep 2.5; for i in $(seq 40); do head -c ${SIZE / 40} /dev/zero; done > "$THAW_TO"
      to: ./out/f.bin
  - { id: use, needs: [f], run: "test -s out/f.bin", milestone: up }
`,
    async (dir) => {
      assertFinished(await runThaw(dir));
      equal((await Deno.stat(join(dir, "out/f.bin"))).size, SIZE);
    },
  );
}

/** An HTTP server on 127.0.0.1 that answers after 2.5 s. */
async function httpSilent(served: string): Promise<void> {
  const server = startBackupServer(served, { firstByteMs: 2500 });
  try {
    await inDir(
      `runbook: 1
name: slow-http-source
bandwidth: ${BANDWIDTH}
steps:
  - { id: f, fetch: { from: "${server.url}f.bin", to: ./out/f.bin } }
  - { id: use, needs: [f], run: "test -s out/f.bin", milestone: up }
`,
      async (dir) => assertFinished(await runThaw(dir)),
    );
    equal(server.requests.length, 1);
  } finally {
    await server.close();
  }
}

/** A fetch approved 2.5 s after it started waiting for approval. */
async function approvedLate(served: string): Promise<void> {
  const server = startBackupServer(served);
  try {
    await inDir(
      `runbook: 1
name: gated-fetch
bandwidth: ${BANDWIDTH}
steps:
  - id: f
    approval: Pull the data over the shared link?
    fetch: { from: "${server.url}f.bin", to: ./out/f.bin }
  - { id: use, needs: [f], run: "test -s out/f.bin", milestone: up }
`,
      async (dir) => {
        const ran = await runThaw(dir, async (dir) => {
          const run = await waitingRun(dir);
          await new Promise((resolve) => setTimeout(resolve, 2500));
          const out = await thawCommand(["approve", run, "f", "--store", join(dir, "state.db")], {
            cwd: dir,
            stdout: "null",
            stderr: "piped",
          }).output();
          equal(out.code, 0, new TextDecoder().decode(out.stderr));
        });
        assertFinished(ran);
        match(ran.stderr, /approved/);
      },
    );
  } finally {
    await server.close();
  }
}

Deno.test("thaw run moves a capped fetch at its share, when its source starts 2.5 s late (run:, HTTP, approval)", async () => {
  const served = await Deno.makeTempDir();
  await Deno.writeFile(join(served, "f.bin"), new Uint8Array(SIZE).fill(7));
  try {
    // Three engines at once: each mostly waits, and the suite stays short.
    const cases = {
      "a run: source silent for 2.5 s": runSourceSilent(),
      "an HTTP server answering after 2.5 s": httpSilent(served),
      "a fetch approved after 2.5 s": approvedLate(served),
    };
    const results = await Promise.allSettled(Object.values(cases));
    const failed = Object.keys(cases).flatMap((name, k) => {
      const r = results[k]!;
      return r.status === "rejected" ? [`${name}: ${r.reason?.message ?? r.reason}`] : [];
    });
    deepEqual(failed, []);
  } finally {
    await Deno.remove(served, { recursive: true });
  }
});

/** The id of the run in `dir`'s store once its step `f` waits for approval (within 15 s). */
async function waitingRun(dir: string): Promise<string> {
  for (let k = 0; k < 150; k++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (!(await Deno.stat(join(dir, "state.db")).then(() => true, () => false))) continue;
    const store = await openStore(join(dir, "state.db"));
    try {
      const run = (await store.listRuns(1))[0];
      const steps = run ? await store.steps(run.id) : [];
      if (steps.some((s) => s.step === "f" && s.detail?.startsWith("waiting for approval"))) {
        return run!.id;
      }
    } finally {
      await store.close();
    }
  }
  throw new Error("the fetch never waited for approval");
}
