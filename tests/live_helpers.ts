/**
 * Test helpers for the live engine as a real process: `thaw` in a child process steered through a
 * real SQLite store, killed with SIGKILL and resumed.
 *
 * @module
 */
import { join } from "node:path";
import { openStore } from "../engine/store/mod.ts";
import type { Store } from "../engine/store/types.ts";
import { thawCommand } from "./paths.ts";

/** Whether `path` exists. */
export async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Runs `body` in a fresh directory holding `rb.yaml` with `runbook`, then removes it. */
export async function inDir(runbook: string, body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "rb.yaml"), runbook);
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Stops the process groups whose leaders' pids a test's steps wrote to `file` (`echo $$ >> pids`):
 * a step in its own session outlives a killed engine, and one looping on a file in a removed
 * directory would loop forever.
 */
export async function stopListed(file: string): Promise<void> {
  const text = await Deno.readTextFile(file).catch(() => "");
  for (const pid of text.split("\n").map(Number).filter((n) => n > 1)) {
    try {
      Deno.kill(-pid, "SIGKILL");
    } catch { /* gone */ }
  }
}

/** The engine in a child process, in its own process group (so a test can kill it all). */
export function engine(dir: string, args: string[]) {
  const child = thawCommand([...args, "--store", join(dir, "state.db")], {
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  const output = child.output();
  return { child, output };
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  using l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return l.addr.port;
}

/** `thaw ARGS --store DIR/state.db` to its end: exit code, stdout and stderr. */
export async function thaw(dir: string, args: string[]) {
  const out = await thawCommand([...args, "--store", join(dir, "state.db")], { cwd: dir })
    .output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** Polls the store of `dir` until `until` gives a value (or 30 s pass: then throws `what`). */
export async function waitFor<T>(
  dir: string,
  until: (store: Store) => Promise<T | undefined>,
  what = "the engine",
): Promise<T> {
  let last: unknown;
  for (let k = 0; k < 300; k++) {
    if (await exists(join(dir, "state.db"))) {
      // The engine may be creating the store this very moment: try again on the next poll.
      const store = await openStore(join(dir, "state.db")).catch((e) => void (last = e));
      if (store) {
        try {
          const got = await until(store);
          if (got !== undefined) return got;
        } finally {
          await store.close();
        }
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`, { cause: last });
}

/** The newest run of a store. */
export const firstRun = async (s: Store) => (await s.listRuns(1))[0];
