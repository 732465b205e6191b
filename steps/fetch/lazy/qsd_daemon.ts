/**
 * The processes and files around a lazily restored volume's `qemu-storage-daemon`: finding the
 * tools (with the Debian package to install when one is missing), creating or inspecting the
 * qcow2 overlay with `qemu-img`, starting the daemon in a process group of its own with its
 * output appended to a log, and clearing a FUSE mount a killed daemon left behind.
 *
 * @module
 */

import { shellQuote } from "../../../engine/runbook/shell.ts";
import { type Group, spawnGroup } from "../../process/process.ts";
import { lastLogLine, openLog } from "../../run/service.ts";

/** The Debian package that provides each tool this module runs. */
export const PACKAGES: Readonly<Record<string, string>> = {
  "qemu-storage-daemon": "qemu-system-common",
  "qemu-img": "qemu-utils",
  "fusermount3": "fuse3",
};

/**
 * The absolute path of `tool` (a path, or a name looked up on `PATH`); throws an `Error` naming
 * the Debian package to install when it is not there.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { findTool } from "./qsd_daemon.ts";
 *
 * assert.throws(
 *   () => findTool("qemu-storage-daemon", "/nonexistent"),
 *   /apt-get install qemu-system-common/,
 * );
 * ```
 */
export function findTool(tool: string, path = Deno.env.get("PATH") ?? ""): string {
  const name = tool.slice(tool.lastIndexOf("/") + 1);
  const candidates = tool.includes("/")
    ? [tool]
    : path.split(":").filter(Boolean).map((d) => `${d}/${tool}`);
  for (const c of candidates) {
    try {
      if (Deno.statSync(c).isFile) return c;
    } catch { /* not here */ }
  }
  const pkg = PACKAGES[name];
  const where = tool.includes("/") ? `${tool} does not exist` : `${tool} is not on PATH`;
  throw new Error(
    `lazy fetches need ${name}, and ${where}` +
      (pkg ? `: apt-get install ${pkg}` : ""),
  );
}

/** Runs a tool to completion; throws with its last stderr line when it fails. */
async function run(tool: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(findTool(tool), { args, stdin: "null" }).output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1) ?? "";
    throw new Error(`${tool} ${args.join(" ")} failed (exit ${out.code}): ${err}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** What `qemu-img info` says of an overlay: its size and backing (absent once home). */
export interface OverlayInfo {
  readonly size: number;
  readonly backing: string | undefined;
}

/** Reads `overlay`'s header (without opening its backing, even if a daemon holds it). */
export async function overlayInfo(overlay: string): Promise<OverlayInfo> {
  const json = JSON.parse(await run("qemu-img", ["info", "-U", "--output=json", overlay]));
  if (json.format !== "qcow2") {
    throw new Error(`${overlay} is a ${json.format} image, not the qcow2 overlay thaw makes`);
  }
  return { size: Number(json["virtual-size"]), backing: json["backing-filename"] };
}

/**
 * Creates the qcow2 overlay (64 KiB clusters) over `backing` without opening it (`-u`): the
 * backing may not be reachable yet.
 */
export async function createOverlay(overlay: string, backing: string, size: number) {
  if (!Number.isSafeInteger(size) || size <= 0 || size % 512 !== 0) {
    throw new Error(
      `a lazy volume's size must be a positive multiple of 512 bytes (qemu counts sectors), ` +
        `not ${size}: pad the image in the backup`,
    );
  }
  await run("qemu-img", [
    "create",
    "-q",
    "-f",
    "qcow2",
    "-u",
    "-b",
    backing,
    "-F",
    "raw",
    "-o",
    "cluster_size=65536",
    overlay,
    String(size),
  ]);
}

/** Whether `path` is a mount point now (from `/proc/self/mountinfo`). */
export function mounted(path: string): boolean {
  let info: string;
  try {
    info = Deno.readTextFileSync("/proc/self/mountinfo");
  } catch {
    return false;
  }
  // Field 5 is the mount point, with spaces and backslashes octal-escaped.
  const escaped = path.replace(
    /[\\ \t\n]/g,
    (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`,
  );
  return info.split("\n").some((line) => line.split(" ")[4] === escaped);
}

/**
 * Detaches a FUSE mount on `file` left by a daemon that was killed (its reads fail with "not
 * connected"). Throws when the mount still answers: a live daemon serves it.
 */
export async function clearStaleMount(file: string): Promise<void> {
  if (!mounted(file)) return;
  // stat() may answer from the kernel's cache; a read reaches the daemon (ENOTCONN when gone).
  let answers = true;
  try {
    using f = await Deno.open(file, { read: true });
    await f.read(new Uint8Array(1));
  } catch {
    answers = false;
  }
  if (answers) {
    throw new Error(
      `${file} is already served by a running export (another qemu-storage-daemon?): stop it first`,
    );
  }
  await unmount(file);
}

/**
 * Throws an `Error` saying what to do when this system cannot mount FUSE file systems.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkFuse } from "./qsd_daemon.ts";
 *
 * assert.throws(() => checkFuse("/nonexistent/fuse"), /modprobe fuse/);
 * ```
 */
export function checkFuse(device = "/dev/fuse"): void {
  try {
    Deno.statSync(device);
  } catch {
    throw new Error(
      `a FUSE export needs ${device}, which is missing: modprobe fuse (in a container, run it ` +
        `with --device /dev/fuse), or export the volume over NBD instead`,
    );
  }
}

/** Lazily unmounts `file` if it is mounted (`fusermount3 -uz`). */
export async function unmount(file: string): Promise<void> {
  if (!mounted(file)) return;
  await run("fusermount3", ["-u", "-z", file]).catch((e) => {
    if (mounted(file)) throw e;
  });
}

/** A daemon that exited before QMP answered: the reason, from its log. */
export async function startFailure(log: string, from: number, group: Group): Promise<Error> {
  const status = await group.status;
  const line = await lastLogLine(log, from);
  return new Error(
    `qemu-storage-daemon exited at start (exit ${status.code})` +
      (line ? `: ${line}` : "") + ` (log: ${log})`,
  );
}

/**
 * Starts `binary args…` as the leader of a new process group, stdin from /dev/null, stdout and
 * stderr appended to `log`; returns the group and where its output begins in the log.
 */
export function spawnDaemon(
  binary: string,
  args: readonly string[],
  cwd: string,
  log: string,
): { group: Group; logFrom: number } {
  const logFrom = openLog(log);
  const command = `exec ${[binary, ...args].map(shellQuote).join(" ")}`;
  const env: Record<string, string> = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
  const group = spawnGroup("/bin/sh", command, { cwd, env, log });
  return { group, logFrom };
}

/** Throws when a daemon still answers on `qmpSocket` (its sockets must not be taken away). */
export async function refuseLiveDaemon(qmpSocket: string): Promise<void> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path: qmpSocket });
  } catch {
    return; // absent, or left by a daemon that is gone
  }
  conn.close();
  throw new Error(
    `a qemu-storage-daemon already serves this volume (QMP answers on ${qmpSocket}): stop it first`,
  );
}

/** Removes `path` if it is there. */
export function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch { /* absent */ }
}
