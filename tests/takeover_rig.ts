/**
 * The rig of the takeover tests and trials (`takeover_test.ts`, `bench/takeover_trials.ts`): two
 * "machines" sharing one PostgreSQL store, each a real `thaw` process in a UTS namespace of its
 * own (`unshare --uts`, so each sees another host name, as on two machines) and, where they can
 * be made (root, iproute2), a network namespace of its own (`unshare --net`) linked to this host
 * by a veth pair (`machine_net.ts`): the engines reach PostgreSQL and the backup server over a
 * network link, at the host end's address, as two machines would. Without network namespaces
 * the machines share the host's network (said once). Also: the engine's death (`kill -9` of the
 * engine and every process it started, as when its machine dies) and its pause (SIGSTOP,
 * SIGCONT of the engine alone).
 *
 * @module
 */
import { join } from "node:path";
import { openStore } from "../engine/store/mod.ts";
import type { KyselyStore } from "../engine/store/kysely_store.ts";
import { childEnv, THAW_MAIN } from "./paths.ts";
import { type Link, makeLink, noNetns, reachFrom } from "./machine_net.ts";

export { MACHINE_NET, noNetns } from "./machine_net.ts";

/** Why these tests cannot run here (they need root for `unshare --uts`), or undefined. */
export const noUnshare: string | undefined = (() => {
  if (Deno.build.os !== "linux") return "needs Linux namespaces";
  try {
    const out = new Deno.Command("unshare", { args: ["--uts", "true"], stderr: "null" })
      .outputSync();
    return out.success ? undefined : "unshare --uts is not allowed here (needs root)";
  } catch {
    return "no unshare (util-linux)";
  }
})();

/** A `thaw` process on its own "machine" named `host`. */
export interface Machine {
  readonly host: string;
  readonly child: Deno.ChildProcess;
  /** Where the machine reaches this host: its link's host end, or 127.0.0.1 (no netns). */
  readonly hostAddress: string;
  /** Its stdout and stderr so far. */
  readonly out: () => string;
  /** Its end: exit code (or signal) and all its output (its link is gone by then). */
  readonly done: Promise<{ code: number; signal: Deno.Signal | null; text: string }>;
}

let warned = false;

/** A link for a new machine, or undefined (said once) where there can be none. */
function newLink(): Link | undefined {
  if (noNetns === undefined) return makeLink();
  if (!warned) console.warn(`takeover rig: machines share this host's network: ${noNetns}`);
  warned = true;
  return undefined;
}

const quote = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;

/**
 * Starts `thaw ARGS --store URL` in `dir` on a "machine" named `host` (its own UTS namespace and,
 * where it can be made, network namespace). `url` is as seen from this host (127.0.0.1); the
 * machine gets it at its link's host end.
 */
export function machine(host: string, dir: string, url: string, args: string[]): Machine {
  const link = newLink();
  const hostAddress = link?.hostAddress ?? "127.0.0.1";
  const store = reachFrom(url, hostAddress);
  const thaw = [Deno.execPath(), "run", "--allow-all", THAW_MAIN, ...args, "--store", store];
  // With a link: wait for the rig to move its end in (a line on stdin), set it up, run thaw.
  const script = link
    ? `hostname ${host} && read go && ${link.inside} && exec ${
      thaw.map(quote).join(" ")
    } </dev/null`
    : `hostname ${host} && exec ${thaw.map(quote).join(" ")}`;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("unshare", {
      args: ["--uts", ...(link ? ["--net"] : []), "sh", "-c", script],
      cwd: dir,
      clearEnv: true,
      env: childEnv(),
      stdin: link ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    link?.remove();
    throw e;
  }
  let text = "";
  const linked = link && plugIn(child, link).catch((e) => {
    text += `takeover rig: ${(e as Error).message}\n`;
    try {
      child.kill("SIGKILL");
    } catch { /* ended */ }
  });
  const d = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) text += d.decode(chunk, { stream: true });
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const done = (async () => {
    const status = await child.status;
    await linked;
    await link?.remove();
    await pumped;
    return { code: status.code, signal: status.signal, text };
  })();
  return { host, child, hostAddress, out: () => text, done };
}

/**
 * Moves `link`'s machine end into the network namespace of `child` (`unshare --net`) once it
 * has made it, then lets it go on (a line on its stdin).
 */
async function plugIn(child: Deno.ChildProcess, link: Link): Promise<void> {
  const ours = Deno.readLinkSync("/proc/self/ns/net");
  for (let i = 0;; i++) {
    let theirs: string;
    try {
      theirs = Deno.readLinkSync(`/proc/${child.pid}/ns/net`);
    } catch {
      throw new Error(`process ${child.pid} ended before it had a network namespace`);
    }
    if (theirs !== ours) break;
    if (i >= 1000) throw new Error(`process ${child.pid} made no network namespace in 10 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
  link.moveTo(child.pid);
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode("go\n"));
  await w.close();
}

/** Every process under `pid` (children first found through /proc), deepest last. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    let tasks: string[] = [];
    try {
      tasks = [...Deno.readDirSync(`/proc/${p}/task`)].map((e) => e.name);
    } catch { /* gone */ }
    for (const t of tasks) {
      let children = "";
      try {
        children = Deno.readTextFileSync(`/proc/${p}/task/${t}/children`);
      } catch { /* gone */ }
      for (const c of children.split(" ").filter(Boolean).map(Number)) {
        out.push(c);
        stack.push(c);
      }
    }
  }
  return out;
}

/** `kill -9` of the engine and every process it started: its machine died. */
export function killMachine(m: Machine): void {
  const all = [m.child.pid, ...descendants(m.child.pid)];
  for (const pid of all) {
    try {
      Deno.kill(pid, "SIGSTOP"); // none can start another meanwhile
    } catch { /* gone */ }
  }
  for (const pid of all) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
}

/** Whether process `pid` exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

/** Polls `until` every 50 ms until it gives a value; throws `what` after `ms`. */
export async function poll<T>(
  until: () => Promise<T | undefined> | T | undefined,
  what: string,
  ms = 30000,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await until();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
}

/** Lines of `path` equal to `word` (0 when there is no file). */
export async function count(path: string, word: string): Promise<number> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter((l) => l === word).length;
}

/** The store at `url` (the test's own connection, for looking). */
export function look(url: string): Promise<KyselyStore> {
  return openStore(url);
}

/**
 * The time a standby's log says it took run `run` over (ms since the epoch), if it has.
 */
export function tookOverAt(standby: Machine, run: string): number | undefined {
  const m = new RegExp(`^(\\S+) standby \\S+: took over run ${run}`, "m").exec(standby.out());
  return m ? Date.parse(m[1]!) : undefined;
}

/** A temporary directory with `files`; removed by the returned function. */
export async function workDir(files: Record<string, string | Uint8Array>) {
  const dir = await Deno.makeTempDir({ prefix: "thaw-takeover-" });
  for (const [name, content] of Object.entries(files)) {
    if (typeof content === "string") await Deno.writeTextFile(join(dir, name), content);
    else await Deno.writeFile(join(dir, name), content);
  }
  return { dir, remove: () => Deno.remove(dir, { recursive: true }).catch(() => {}) };
}
