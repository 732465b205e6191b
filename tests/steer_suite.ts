/**
 * The steering suite: `thaw status`, `approve`, `cancel`, `done`, `resume` and `thaw serve` as real
 * CLI processes (`deno run -A engine/main.ts …`) beside a live run in another process, against one
 * store under test. `steer_sqlite_test.ts` runs it on an SQLite file and `steer_pg_test.ts` on a
 * throwaway PostgreSQL cluster: one suite, a matrix of stores (issue 10, point 3).
 *
 * Every case writes a small runbook to a temporary directory (the working directory of every
 * command), passes `--store` explicitly, bounds every wait, and kills whatever it started, also
 * when it fails. The cases are in `steer_cases_approve.ts`, `steer_cases_cancel.ts` and
 * `steer_cases_resume.ts`; what they share in `steer_cases_kit.ts`.
 *
 * @module
 */
import { ok } from "node:assert/strict";
import { openStore } from "../engine/store/mod.ts";
import type { Store } from "../engine/store/types.ts";
import { thawCommand } from "./paths.ts";
import { serveAndApprove, statusAndApprove } from "./steer_cases_approve.ts";
import { cliCancel, httpCancel } from "./steer_cases_cancel.ts";
import {
  alive,
  type Child,
  type Ctx,
  exited,
  Lines,
  pidsIn,
  type StoreUnderTest,
} from "./steer_cases_kit.ts";
import {
  cancelInterrupted,
  doneRecorded,
  exitCodes,
  killResumeDone,
} from "./steer_cases_resume.ts";

export type { StoreUnderTest } from "./steer_cases_kit.ts";

/** Kills what a case left: its `thaw` process groups, and the groups its steps wrote as *.pid. */
async function killAll(dir: string, children: Child[]): Promise<void> {
  for (const c of children) {
    try {
      if (!c.ended) Deno.kill(-c.process.pid, "SIGKILL");
    } catch { /* ended meanwhile */ }
    await c.process.status;
    await Promise.all([c.stdout.done, c.stderr.done]).catch(() => {});
  }
  for await (const e of Deno.readDir(dir)) {
    if (!/\.pids?$/.test(e.name)) continue;
    for (const pid of (await pidsIn(dir, e.name)).filter(alive)) {
      for (const target of [-pid, pid]) {
        try {
          Deno.kill(target, "SIGKILL");
        } catch { /* gone, or not a group */ }
      }
    }
  }
}

async function runCase(sut: StoreUnderTest, fn: (t: Ctx) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-steer-" });
  const children: Child[] = [];
  const stores: Store[] = [];
  const ac = new AbortController();
  const t: Ctx = {
    dir,
    sut,
    signal: ac.signal,
    async watch() {
      stores.push(await openStore(sut.store));
      return stores.at(-1)!;
    },
    async thaw(args) {
      const child = t.spawn(args);
      const { code } = await exited(child, 30000);
      await Promise.all([child.stdout.done, child.stderr.done]);
      return { code, stdout: child.stdout.text, stderr: child.stderr.text };
    },
    spawn(args, env = {}) {
      const process = thawCommand([...args, "--store", sut.store], {
        cwd: dir,
        env,
        stdout: "piped",
        stderr: "piped",
        detached: true,
      }).spawn();
      const child = {
        process,
        ended: false,
        stdout: new Lines(process.stdout),
        stderr: new Lines(process.stderr),
      };
      process.status.then(() => child.ended = true);
      children.push(child);
      return child;
    },
  };
  try {
    await fn(t);
    const said = children.map((c) => `${c.stdout.text}${c.stderr.text}`);
    const leak = sut.secret && said.find((o) => o.includes(sut.secret!));
    ok(!leak, `a thaw process shows the password of the store's URL:\n${leak}`);
  } finally {
    ac.abort();
    await killAll(dir, children);
    for (const s of stores) await s.close().catch(() => {});
    await Deno.remove(dir, { recursive: true });
    await sut.cleanup();
  }
}

/** Registers every steering case for the stores `open` makes (a new store per case). */
export function steerSuite(
  name: string,
  open: () => Promise<StoreUnderTest>,
  options: { readonly ignore?: boolean } = {},
): void {
  for (const [title, fn] of CASES) {
    Deno.test({
      name: `${name}: ${title}`,
      ignore: options.ignore ?? false,
      async fn() {
        await runCase(await open(), fn);
      },
    });
  }
}

const CASES: readonly [string, (t: Ctx) => Promise<void>][] = [
  [
    "thaw status and thaw approve steer a run at its approval gate, from other processes",
    statusAndApprove,
  ],
  ["thaw serve shows and approves a run of another process, with its token only", serveAndApprove],
  ["thaw cancel stops a running step's processes, from another process", cliCancel],
  ["POST /runs/ID/cancel stops a run of another process, with its token only", httpCancel],
  [
    "thaw done lets a resumed run go on, when a step was running at kill -9 of the engine",
    killResumeDone,
  ],
  [
    "thaw cancel stops the processes a killed engine left, when the run is interrupted",
    cancelInterrupted,
  ],
  ["thaw done records a step of a failed run, and thaw resume carries on after it", doneRecorded],
  ["thaw run exits 0, 3, 1 or 2 as the README says, when runs share the store", exitCodes],
];
