/**
 * An NBD export (qemu-storage-daemon's, over a unix socket) as a plain FILE any program can open,
 * seek, read and write: `nbdfuse` mounts it over the file (a "naked" FUSE mount, nbdfuse ≥ 1.6).
 * Writes go to the export; unmounting (`fusermount3 -u`) lets nbdfuse finish them and exit.
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { findProgram, fuseProblem, startDaemon } from "./tools.ts";
import { nbdUnixUri } from "./nbdkit.ts";

/** What {@linkcode mountFile} needs. */
export interface MountOptions {
  /** The NBD export: a URI, or the unix socket of one (its default export). */
  readonly uri?: string;
  readonly socket?: string;
  /** The file to present it at: created empty if missing; an empty file is mounted over. */
  readonly file: string;
  /** Let programs write (the export must be writable). Default false. */
  readonly writable?: boolean;
  /**
   * Let every user open it (FUSE `allow_other`; nbdfuse presents the file with mode 0666 and
   * cannot change it). Default false: only the user that mounted it (root, for the engine).
   */
  readonly allowOther?: boolean;
  /** nbdfuse's messages are appended here. */
  readonly log: string;
  /** Its pid file, written once mounted (default `LOG.pid`). */
  readonly pidFile?: string;
  /** The environment nbdfuse runs with (default: `PATH` only). */
  readonly env?: Readonly<Record<string, string>>;
  /** How long mounting may take (default 10 s). */
  readonly readyMs?: number;
}

/** A mounted file. */
export interface MountedFile {
  /** Absolute path of the file. */
  readonly file: string;
  /** nbdfuse's pid (and process group id). */
  readonly pid: number;
  /** Settles with nbdfuse's exit code when it exits (unmounted, or its server went away). */
  readonly exited: Promise<number>;
  /** Unmounts (waiting up to 5 s for the file to be closed by its users), then stops nbdfuse. */
  stop(): Promise<void>;
}

/** Decodes the octal escapes of `/proc/self/mountinfo` (`\040` is a space). */
function unescapeMount(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct) => String.fromCharCode(parseInt(oct, 8)));
}

/** The filesystem type mounted at `path` (absolute, symlinks resolved), or undefined. */
export function mountedAt(path: string): string | undefined {
  let info: string;
  try {
    info = Deno.readTextFileSync("/proc/self/mountinfo");
  } catch {
    return undefined;
  }
  let type: string | undefined;
  for (const line of info.split("\n")) {
    const [left, right] = line.split(" - ");
    const fields = left?.split(" ") ?? [];
    if (fields[4] !== undefined && unescapeMount(fields[4]) === path) {
      type = right?.split(" ")[0] ?? "?"; // the last mount over a path is the one seen
    }
  }
  return type;
}

/** The absolute path of `file` with its directory's symlinks resolved (the file may not exist). */
function canonical(file: string): string {
  const abs = resolve(file);
  try {
    return join(Deno.realPathSync(dirname(abs)), basename(abs));
  } catch {
    return abs;
  }
}

/** Runs `fusermount3 -u [-z] FILE`; its stderr when it fails. */
async function fusermountU(file: string, lazy: boolean, path: string): Promise<string | undefined> {
  const out = await new Deno.Command(findProgram("fusermount3", path) ?? "fusermount3", {
    args: ["-u", ...(lazy ? ["-z"] : []), file],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  return out.success ? undefined : new TextDecoder().decode(out.stderr).trim();
}

/**
 * Clears a dead FUSE mount on `file` (its daemon was killed: "Transport endpoint is not
 * connected") with `fusermount3 -u -z`; throws when a live mount is there. Nothing mounted: nothing
 * done. `file` is absolute, its directory's symlinks resolved.
 */
export async function clearDeadMount(
  file: string,
  path = Deno.env.get("PATH") ?? "",
): Promise<void> {
  const type = mountedAt(file);
  if (type === undefined) return;
  const alive = await Deno.stat(file).then(() => true, () => false);
  if (alive) {
    throw new Error(
      `${file} is already mounted (${type}); unmount it first: fusermount3 -u ${file}`,
    );
  }
  const why = await fusermountU(file, true, path);
  if (why !== undefined) throw new Error(`${file}: a dead mount is left there: ${why}`);
}

/** Makes `file` a place to mount on: clears a dead mount there, creates it empty if missing. */
async function prepareFile(file: string, path: string): Promise<boolean> {
  await clearDeadMount(file, path);
  try {
    const info = await Deno.lstat(file);
    if (!info.isFile) throw new Error(`${file} is not a regular file; nbdfuse mounts over a file`);
    if (info.size > 0) {
      throw new Error(
        `${file} holds ${info.size} bytes; a lazy fetch would hide them: move it away first`,
      );
    }
    return false;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await Deno.mkdir(dirname(file), { recursive: true });
  await Deno.writeFile(file, new Uint8Array(0), { mode: 0o600 });
  return true;
}

/**
 * Mounts an NBD export over `file` with nbdfuse; resolves once the file is mounted.
 * Throws an SRE-readable error when FUSE is unusable, the file is taken, or nbdfuse fails.
 *
 * @example Present an NBD server's export as a file
 * ```ts ignore
 * const mounted = await mountFile({ socket, file: "./restore/catalog.img", writable: true, log });
 * // any program opens ./restore/catalog.img
 * await mounted.stop();
 * ```
 */
export async function mountFile(options: MountOptions): Promise<MountedFile> {
  const path = options.env?.PATH ?? Deno.env.get("PATH") ?? "";
  if (findProgram("nbdfuse", path) === undefined) {
    throw new Error("lazy fetches need nbdfuse: apt-get install libnbd-bin");
  }
  const problem = fuseProblem(path);
  if (problem !== undefined) throw new Error(`cannot mount ${options.file}: ${problem}`);
  const uri = options.uri ?? (options.socket !== undefined ? nbdUnixUri(options.socket) : "");
  if (uri === "") throw new Error("mountFile needs the export's uri or socket");
  const file = canonical(options.file);
  const created = await prepareFile(file, path);
  const pidFile = options.pidFile ?? `${options.log}.pid`;
  const argv = [
    "nbdfuse",
    ...(options.writable ? [] : ["--readonly"]),
    ...(options.allowOther ? ["-o", "allow_other"] : []),
    "-P",
    pidFile,
    file,
    uri,
  ];
  let daemon;
  try {
    daemon = await startDaemon(argv, {
      log: options.log,
      pidFile,
      ...(options.env ? { env: options.env } : {}),
      ...(options.readyMs ? { readyMs: options.readyMs } : {}),
    });
  } catch (e) {
    if (created) await Deno.remove(file).catch(() => {});
    throw e;
  }
  if (mountedAt(file) === undefined) {
    await daemon.stop(1000);
    throw new Error(
      `nbdfuse said it was ready but ${file} is not mounted (its log: ${options.log})`,
    );
  }
  const d = daemon;
  return {
    file,
    pid: d.pid,
    exited: d.exited,
    stop: async () => {
      await unmount(file, d.exited, path);
      await d.stop(1000);
      if (mountedAt(file) !== undefined) await fusermountU(file, true, path);
      await Deno.remove(pidFile).catch(() => {});
      if (created && (await Deno.stat(file).catch(() => undefined))?.size === 0) {
        await Deno.remove(file).catch(() => {});
      }
    },
  };
}

/** `fusermount3 -u`, retried while the file is busy (open), for up to 5 s; then waits for exit. */
async function unmount(file: string, exited: Promise<number>, path: string): Promise<void> {
  const deadline = performance.now() + 5000;
  while (mountedAt(file) !== undefined && performance.now() < deadline) {
    const why = await fusermountU(file, false, path);
    if (why === undefined) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // nbdfuse exits once unmounted; give it a moment to finish its requests.
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    exited,
    new Promise((r) => {
      timer = setTimeout(r, Math.max(500, deadline - performance.now()));
    }),
  ]);
  clearTimeout(timer);
}
