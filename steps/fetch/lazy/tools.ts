/**
 * The programs lazy fetches run (qemu-storage-daemon, qemu-img, nbdkit with its curl plugin,
 * nbdfuse, fusermount3): which are missing, in one message an SRE can act on, checked before
 * anything starts so that the engine never half-starts a lazy fetch; and the small daemon kit
 * nbdkit.ts and nbdfuse.ts share (start in a process group of its own with its output in a log
 * file, wait until a pid file says it is ready, stop).
 *
 * @module
 */

import { killGroup, spawnGroup } from "../../process/process.ts";
import { lastLogLine, openLog } from "../../run/service.ts";
import { shellQuote } from "../../../engine/runbook/shell.ts";

/** A program lazy fetches need, and the Debian package that has it. */
interface Tool {
  readonly name: string;
  readonly pkg: string;
  /** Needed only when the fetch is `writable` (the file is mounted through nbdfuse). */
  readonly writableOnly?: boolean;
}

/** Every program, in the order the message names them. */
const TOOLS: readonly Tool[] = [
  { name: "qemu-storage-daemon", pkg: "qemu-system-common" },
  { name: "qemu-img", pkg: "qemu-utils" },
  { name: "nbdkit", pkg: "nbdkit" },
  // Debian 12 has nbdfuse in libnbd-bin (later releases in a package of its own, `nbdfuse`).
  { name: "nbdfuse", pkg: "libnbd-bin", writableOnly: true },
  { name: "fusermount3", pkg: "fuse3" },
];

/** What {@linkcode checkLazyTools} found. */
export interface LazyTools {
  /** Programs not found on the path (or nbdkit's curl plugin or filters, named as such). */
  readonly missing: readonly string[];
  /** The Debian packages that would bring the missing ones. */
  readonly packages: readonly string[];
  /** Whether FUSE can mount here: `/dev/fuse` opens and fusermount3 is found. */
  readonly fuse: { readonly usable: boolean; readonly reason?: string };
  /** One line for an SRE when something is missing or FUSE is unusable; else undefined. */
  readonly message?: string;
}

/** Where to look. */
export interface CheckOptions {
  /** The `PATH` searched (default: this process's). */
  readonly path?: string;
  /** Whether the fetch is writable (then nbdfuse is needed too). Default true: check everything. */
  readonly writable?: boolean;
  /** The FUSE device (default `/dev/fuse`; tests point it elsewhere). */
  readonly fuseDevice?: string;
}

/**
 * The absolute path of `name` on `path` (a `:`-separated list), or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findProgram } from "./tools.ts";
 *
 * assert.equal(findProgram("sh", "/nonexistent:/bin"), "/bin/sh");
 * assert.equal(findProgram("no-such-program-here", "/bin"), undefined);
 * ```
 */
export function findProgram(name: string, path: string): string | undefined {
  for (const dir of path.split(":")) {
    if (!dir) continue;
    try {
      const info = Deno.statSync(`${dir}/${name}`);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return `${dir}/${name}`;
    } catch { /* not in this directory */ }
  }
  return undefined;
}

/** Whether nbdkit loads the curl plugin and the filters nbdkit.ts puts over it. */
async function nbdkitPieces(nbdkit: string): Promise<string | undefined> {
  const out = await new Deno.Command(nbdkit, {
    args: ["--filter=rate", "--filter=retry-request", "--filter=log", "curl", "--dump-plugin"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output().catch(() => undefined);
  if (out?.success) return undefined;
  const text = out ? new TextDecoder().decode(out.stderr) : "";
  const m = /cannot open (plugin|filter) '([^']+)'/.exec(text);
  return m ? `nbdkit's ${m[2]} ${m[1]}` : "nbdkit's curl plugin";
}

/**
 * Why FUSE cannot mount here (no `/dev/fuse`, or no fusermount3 on `path`); undefined when it can.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fuseProblem } from "./tools.ts";
 *
 * assert.match(fuseProblem("/bin", "/nonexistent/fuse") ?? "", /nonexistent\/fuse is missing/);
 * ```
 */
export function fuseProblem(
  path = Deno.env.get("PATH") ?? "",
  device = "/dev/fuse",
): string | undefined {
  return fuseUsable(device, findProgram("fusermount3", path)).reason;
}

/** Whether FUSE can be used: the device opens, fusermount3 is there. */
function fuseUsable(device: string, fusermount: string | undefined): LazyTools["fuse"] {
  try {
    Deno.openSync(device, { read: true, write: true }).close();
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? `${device} is missing (no FUSE in this kernel or container: ` +
        "in a container, pass --device /dev/fuse)"
      : `${device} cannot be opened (${e instanceof Error ? e.message : e})`;
    return { usable: false, reason: why };
  }
  if (fusermount === undefined) {
    return { usable: false, reason: "fusermount3 is not installed (apt-get install fuse3)" };
  }
  return { usable: true };
}

/**
 * Checks, before a lazy fetch starts anything, that every program it runs is installed and that
 * FUSE works; says what to install, naming only what is missing.
 *
 * @example Nothing on the path
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkLazyTools } from "./tools.ts";
 *
 * const found = await checkLazyTools({ path: "/nonexistent", writable: false });
 * assert.deepEqual(found.missing, ["qemu-storage-daemon", "qemu-img", "nbdkit", "fusermount3"]);
 * assert.match(found.message ?? "", /apt-get install qemu-system-common qemu-utils nbdkit fuse3/);
 * ```
 */
export async function checkLazyTools(options: CheckOptions = {}): Promise<LazyTools> {
  const path = options.path ?? Deno.env.get("PATH") ?? "";
  const writable = options.writable ?? true;
  const missing: string[] = [];
  const packages: string[] = [];
  const found = new Map<string, string>();
  for (const tool of TOOLS) {
    if (tool.writableOnly && !writable) continue;
    const at = findProgram(tool.name, path);
    if (at !== undefined) found.set(tool.name, at);
    else {
      missing.push(tool.name);
      if (!packages.includes(tool.pkg)) packages.push(tool.pkg);
    }
  }
  const nbdkit = found.get("nbdkit");
  const piece = nbdkit === undefined ? undefined : await nbdkitPieces(nbdkit);
  if (piece !== undefined) {
    missing.push(piece);
    // Debian ships the curl plugin and the filters in nbdkit itself; elsewhere (Fedora) they are
    // nbdkit-curl-plugin and nbdkit-basic-filters.
    if (!packages.includes("nbdkit")) packages.push("nbdkit");
  }
  const fuse = fuseUsable(options.fuseDevice ?? "/dev/fuse", found.get("fusermount3"));
  const problems: string[] = [];
  if (missing.length > 0) {
    problems.push(
      `lazy fetches need ${missing.join(", ")}: apt-get install ${packages.join(" ")}`,
    );
  }
  if (!fuse.usable && found.has("fusermount3")) problems.push(`FUSE is not usable: ${fuse.reason}`);
  return problems.length > 0
    ? { missing, packages, fuse, message: problems.join("; ") }
    : { missing, packages, fuse };
}

/** A daemon started by {@linkcode startDaemon}. */
export interface Daemon {
  /** Its pid, also its process group's id. */
  readonly pid: number;
  /** Settles with its exit code when it exits. */
  readonly exited: Promise<number>;
  /** SIGTERM to its group, SIGKILL after `graceMs`; resolves once the group is gone. */
  stop(graceMs?: number): Promise<void>;
  /** The last line it wrote to its log since it started, if any. */
  lastLine(): Promise<string | undefined>;
}

/** How {@linkcode startDaemon} runs a program. */
export interface DaemonOptions {
  /** Its stdout and stderr are appended here (the daemon outlives the engine). */
  readonly log: string;
  /** The file the program writes its pid to once ready (removed first). */
  readonly pidFile: string;
  /** The complete environment (default: `PATH` only). */
  readonly env?: Readonly<Record<string, string>>;
  /** How long it may take to get ready (default 10 s). */
  readonly readyMs?: number;
  /** Directory it runs in (default `/`). */
  readonly cwd?: string;
  /**
   * Keep a shell as the group's leader and the program's parent instead of `exec`-ing the program:
   * for a program that asks the kernel to signal it when its parent dies (nbdkit in `--foreground`
   * sets `PR_SET_PDEATHSIG`), so that it outlives the engine (`kill -9` of it, or its exit after a
   * real run). Stopping the group stops both. Default false.
   */
  readonly keepParent?: boolean;
}

/**
 * Starts `argv` as the leader of a process group of its own (its output appended to `log`) and
 * waits until it has written `pidFile`. Throws, with the log's last line, when it exits or is not
 * ready in time (and then stops it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startDaemon } from "./tools.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const d = await startDaemon(["sh", "-c", `echo $$ > ${dir}/pid; exec sleep 30`], {
 *   log: `${dir}/log`,
 *   pidFile: `${dir}/pid`,
 * });
 * await d.stop();
 * assert.notEqual(await d.exited, 0);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function startDaemon(
  argv: readonly string[],
  options: DaemonOptions,
): Promise<Daemon> {
  await Deno.remove(options.pidFile).catch(() => {});
  const from = openLog(options.log);
  const line = argv.map(shellQuote).join(" ");
  const command = options.keepParent ? parentScript(line) : `exec ${line}`;
  const group = spawnGroup("/bin/sh", command, {
    cwd: options.cwd ?? "/",
    env: options.env ?? { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    log: options.log,
  });
  const exited = group.status.then((s) => s.code);
  let code: number | undefined;
  exited.then((c) => {
    code = c;
  });
  const daemon: Daemon = {
    pid: group.pid,
    exited,
    stop: async (graceMs = 5000) => {
      await killGroup(group.pgid, graceMs);
      await exited;
      await group.closeOutput();
    },
    lastLine: () => lastLogLine(options.log, from),
  };
  const deadline = performance.now() + (options.readyMs ?? 10_000);
  for (let pause = 5;; pause = Math.min(pause * 2, 50)) {
    if (await readyPid(options.pidFile)) return daemon;
    const why = code !== undefined
      ? `exited with code ${code}`
      : performance.now() > deadline
      ? `was not ready after ${((options.readyMs ?? 10_000) / 1000).toFixed(0)} s`
      : undefined;
    if (why !== undefined) {
      await daemon.stop(1000);
      const last = await lastLogLine(options.log, from);
      throw new Error(
        `${argv[0]} ${why}${last ? `: ${last}` : ""} (its log: ${options.log})`,
      );
    }
    await new Promise((r) => setTimeout(r, pause));
  }
}

/**
 * A shell script that runs `line` as its child and stays its parent until it exits, then exits
 * with its code. A SIGTERM (to the group: both get it) is passed on, and the shell waits for the
 * child, reaping it: no zombie is left to init.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parentScript } from "./tools.ts";
 *
 * const out = await new Deno.Command("sh", { args: ["-c", parentScript("exit 7")] }).output();
 * assert.equal(out.code, 7);
 * ```
 */
export function parentScript(line: string): string {
  return [
    `trap 'kill -TERM $c 2>/dev/null' TERM INT HUP`,
    `${line} <&0 & c=$!`,
    // `wait` returns early when a signal is trapped: wait again while the child is there.
    `while :; do wait $c; s=$?; kill -0 $c 2>/dev/null || exit $s; done`,
  ].join("\n");
}

/** Whether `pidFile` holds a pid (nbdkit ends it with a newline, nbdfuse does not). */
async function readyPid(pidFile: string): Promise<boolean> {
  try {
    return /^\d+\s*$/.test(await Deno.readTextFile(pidFile));
  } catch {
    return false;
  }
}
