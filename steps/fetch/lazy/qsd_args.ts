/**
 * The command line of `qemu-storage-daemon` for one lazily restored volume: QMP on a unix socket,
 * the backing (a file, or the backup behind nbdkit as an NBD URI), the qcow2 overlay over it, a
 * `copy-on-read` filter on top, and one export (NBD on a unix socket, or read-only FUSE).
 *
 * Readahead: none. qemu's `curl` driver has a `readahead` option (its default fetched 1.54x the
 * image in the research); the `nbd` driver used here has no readahead at all, so each demanded
 * read fetches the 64 KiB qcow2 clusters it touches and the stream fetches 512 KiB chunks. Kernel
 * readahead on a FUSE file still turns into demanded reads of the next clusters (never twice).
 *
 * @module
 */

/** Where the volume is served. */
export type VolumeExport =
  | {
    readonly kind: "nbd";
    /** Unix socket of the NBD server (created by the daemon). */
    readonly socket: string;
    /** Export name; "" (the default) is what `nbd+unix:///?socket=…` asks for. */
    readonly name?: string;
    /** Let clients write (kept in the overlay). Read-only when absent. */
    readonly writable?: boolean;
  }
  | {
    readonly kind: "fuse";
    /** An existing regular file the image is mounted over, read-only. */
    readonly file: string;
  };

/** What {@linkcode daemonArgs} needs. */
export interface DaemonLayout {
  readonly qmpSocket: string;
  readonly overlay: string;
  /** The backing as given (file path or NBD URI); undefined when the overlay is already home. */
  readonly backing: string | undefined;
  readonly export: VolumeExport;
  /** Seconds the NBD client waits for a backing server that went away (`reconnect-delay`). */
  readonly reconnectDelayS?: number;
}

/** Node names in the daemon. */
export const NODES = { backing: "backing", overlay: "overlay", cor: "cor", export: "vol" };

/**
 * The protocol node for `backing`: a plain file path, `nbd+unix:///NAME?socket=PATH`, or
 * `nbd://HOST:PORT/NAME`. Throws an `Error` naming what is accepted otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backingNode } from "./qsd_args.ts";
 *
 * assert.deepEqual(backingNode("/srv/backup.img"), {
 *   driver: "file", filename: "/srv/backup.img", "read-only": true,
 * });
 * assert.deepEqual(backingNode("nbd+unix:///disk?socket=/run/b.sock", 5), {
 *   driver: "nbd", server: { type: "unix", path: "/run/b.sock" }, export: "disk",
 *   "read-only": true, "reconnect-delay": 5,
 * });
 * assert.throws(() => backingNode("http://x/y"), /neither an absolute file path nor an nbd URI/);
 * ```
 */
export function backingNode(backing: string, reconnectDelayS = 0): Record<string, unknown> {
  if (backing.startsWith("/")) return { driver: "file", filename: backing, "read-only": true };
  let url: URL | undefined;
  try {
    url = new URL(backing);
  } catch { /* not a URL: reported below */ }
  const name = decodeURIComponent((url?.pathname ?? "").replace(/^\//, ""));
  const nbd = (server: Record<string, unknown>) => ({
    driver: "nbd",
    server,
    export: name,
    "read-only": true,
    "reconnect-delay": reconnectDelayS,
  });
  if (url?.protocol === "nbd+unix:") {
    const path = url.searchParams.get("socket");
    if (path) return nbd({ type: "unix", path });
  }
  if (url?.protocol === "nbd:" && url.hostname && url.port) {
    return nbd({ type: "inet", host: url.hostname.replace(/^\[|\]$/g, ""), port: url.port });
  }
  throw new Error(
    `backing "${backing}" is neither an absolute file path nor an nbd URI ` +
      `(nbd+unix:///NAME?socket=/PATH or nbd://HOST:PORT/NAME)`,
  );
}

/**
 * The URI clients use to reach an NBD export (`nbdinfo`, `nbdfuse`, `qemu-img`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nbdUri } from "./qsd_args.ts";
 *
 * assert.equal(nbdUri("/tmp/v.sock", ""), "nbd+unix:///?socket=/tmp/v.sock");
 * assert.equal(nbdUri("/tmp/a b.sock", "vol"), "nbd+unix:///vol?socket=/tmp/a%20b.sock");
 * ```
 */
export function nbdUri(socket: string, name: string): string {
  return `nbd+unix:///${encodeURIComponent(name)}?socket=${encodeURI(socket)}`;
}

/**
 * The arguments of `qemu-storage-daemon` for `layout`.
 *
 * @example A file backing, exported read-only over NBD
 * ```ts
 * import assert from "node:assert/strict";
 * import { daemonArgs } from "./qsd_args.ts";
 *
 * const args = daemonArgs({
 *   qmpSocket: "/run/q.sock", overlay: "/d/v.qcow2", backing: "/b/v.img",
 *   export: { kind: "nbd", socket: "/run/v.sock" },
 * });
 * assert.equal(args[1], "socket,id=qmp,path=/run/q.sock,server=on,wait=off");
 * const exp = JSON.parse(args.at(-1)!);
 * assert.deepEqual(exp, { type: "nbd", id: "vol", "node-name": "cor", name: "", writable: false });
 * ```
 */
export function daemonArgs(layout: DaemonLayout): string[] {
  const { backing, export: exp } = layout;
  const commaFree = (what: string, value: string) => {
    if (value.includes(",")) throw new Error(`${what} must not contain a comma: ${value}`);
    return value;
  };
  const args = [
    "--chardev",
    `socket,id=qmp,path=${commaFree("the QMP socket path", layout.qmpSocket)},server=on,wait=off`,
    "--monitor",
    "chardev=qmp",
  ];
  if (backing !== undefined) {
    const file = backingNode(backing, layout.reconnectDelayS ?? 0);
    const node = { driver: "raw", "node-name": NODES.backing, "read-only": true, file };
    args.push("--blockdev", JSON.stringify(node));
  }
  const overlay = {
    driver: "qcow2",
    "node-name": NODES.overlay,
    file: { driver: "file", filename: layout.overlay },
    backing: backing === undefined ? null : NODES.backing,
  };
  args.push("--blockdev", JSON.stringify(overlay));
  args.push(
    "--blockdev",
    JSON.stringify({ driver: "copy-on-read", "node-name": NODES.cor, file: NODES.overlay }),
  );
  if (exp.kind === "nbd") {
    const server = { addr: { type: "unix", path: exp.socket } };
    args.push("--nbd-server", JSON.stringify(server));
    const nbd = {
      type: "nbd",
      id: NODES.export,
      "node-name": NODES.cor,
      name: exp.name ?? "",
      writable: exp.writable === true,
    };
    args.push("--export", JSON.stringify(nbd));
  } else {
    const fuse = {
      type: "fuse",
      id: NODES.export,
      "node-name": NODES.cor,
      mountpoint: exp.file,
      writable: false,
      // Other users may open it (a `user:` service), as its mode says: the volume set makes it
      // 0444 (the mount is made with default_permissions, so the kernel checks the mode).
      "allow-other": "on",
    };
    args.push("--export", JSON.stringify(fuse));
  }
  return args;
}
