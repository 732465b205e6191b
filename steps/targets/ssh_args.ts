/**
 * The command lines of the system's OpenSSH client for a host of a runbook's `hosts:`
 * (`{ ssh: "user@host", port, identity }`), shell quoting for the commands sent to the host, and
 * ssh's own words when it fails (the last line it wrote on stderr).
 *
 * thaw never turns host-key checking off: it adds no `StrictHostKeyChecking` and no
 * `UserKnownHostsFile` of its own, so the user's `~/.ssh/config`, agent and `known_hosts` decide
 * (or the config file given as `sshConfig`, or `$THAW_SSH_CONFIG`, passed as `ssh -F`). It adds
 * `BatchMode=yes` so ssh never prompts: a host it cannot log in to fails at once; and, over the
 * config's own values, `ConnectTimeout=15` and keep-alives every 15 s (4 missed: the connection is
 * lost), so a dead link is noticed in about a minute.
 *
 * @module
 */

/** A host as the runbook's `hosts:` names it. */
export interface SshHost {
  /** `user@host`, `host`, or a `Host` alias of the ssh config. */
  readonly ssh: string;
  /** The port, when not the config's (22 by default). */
  readonly port?: number | undefined;
  /** A private key file (`~/` is the user's home), when not the config's or the agent's. */
  readonly identity?: string | undefined;
  /** The host's own bandwidth, bytes per second (the scheduler's business, kept here). */
  readonly bandwidth?: number | undefined;
}

/** How thaw runs OpenSSH. */
export interface SshOptions {
  /** An ssh config file to use instead of the user's (`ssh -F`); default `$THAW_SSH_CONFIG`. */
  readonly sshConfig?: string | undefined;
  /** The ssh client program (default `ssh` on PATH). */
  readonly ssh?: string | undefined;
  /** Seconds between keep-alives on the shared connection (default 15; 4 missed: it is lost). */
  readonly aliveIntervalS?: number | undefined;
  /** Seconds to wait for the TCP connection (default 15). */
  readonly connectTimeoutS?: number | undefined;
  /**
   * Where the master's socket directory is made (default: the system's temporary directory). A
   * `kill -9` of thaw leaves that empty directory behind (the master removes its socket).
   */
  readonly controlDir?: string | undefined;
}

/**
 * Quotes `text` for a POSIX shell: one word, nothing expanded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shq } from "./ssh_args.ts";
 *
 * assert.equal(shq("it's"), `'it'\\''s'`);
 * ```
 */
export function shq(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** `~/x` with the home of this process's user; other paths as they are. */
function expandHome(path: string): string {
  if (!path.startsWith("~/")) return path;
  const home = Deno.env.get("HOME") ?? "";
  return `${home}/${path.slice(2)}`;
}

/**
 * The options every ssh command of host `host` carries (before the destination): the config
 * file, the port and identity the runbook gives, and what thaw needs of ssh (never prompt; keep
 * the shared connection alive). Throws for a host name that ssh would read as an option.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hostOptions } from "./ssh_args.ts";
 *
 * const args = hostOptions({ ssh: "postgres@10.0.0.5", port: 2222 }, { sshConfig: "/etc/t.cfg" });
 * assert.deepEqual(args.slice(0, 4), ["-F", "/etc/t.cfg", "-p", "2222"]);
 * assert(args.includes("BatchMode=yes"));
 * assert(!args.some((a) => /StrictHostKeyChecking|UserKnownHostsFile/.test(a)));
 * ```
 */
export function hostOptions(host: SshHost, options: SshOptions = {}): string[] {
  if (host.ssh === "" || host.ssh.startsWith("-") || /\s/.test(host.ssh)) {
    throw new Error(`not an ssh destination: "${host.ssh}" (write user@host, or a Host alias)`);
  }
  const args: string[] = [];
  const config = options.sshConfig ?? Deno.env.get("THAW_SSH_CONFIG");
  if (config) args.push("-F", expandHome(config));
  if (host.port !== undefined) args.push("-p", String(host.port));
  if (host.identity !== undefined) args.push("-i", expandHome(host.identity));
  const alive = options.aliveIntervalS ?? 15;
  args.push(
    "-o",
    "BatchMode=yes",
    "-o",
    `ServerAliveInterval=${alive}`,
    "-o",
    "ServerAliveCountMax=4",
    "-o",
    `ConnectTimeout=${options.connectTimeoutS ?? 15}`,
  );
  return args;
}

const decoder = new TextDecoder();

/**
 * The last line with something on it in what ssh wrote on stderr: its own words on a failure
 * (`ssh: connect to host 127.0.0.1 port 2299: Connection refused`,
 * `Host key verification failed.`), without a trailing carriage return.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lastLine } from "./ssh_args.ts";
 *
 * assert.equal(lastLine("warning\r\nssh: connect to host x port 22: No route to host\r\n"),
 *   "ssh: connect to host x port 22: No route to host");
 * ```
 */
export function lastLine(text: string | Uint8Array): string {
  const s = typeof text === "string" ? text : decoder.decode(text);
  const lines = s.split(/\r?\n/).map((l) => l.replace(/\r/g, "").trim()).filter(Boolean);
  return lines.at(-1) ?? "";
}

/** The tail of a stream, bounded: enough to hold ssh's last words. */
export class Tail {
  #text = "";
  readonly #max: number;

  constructor(max = 4096) {
    this.#max = max;
  }

  /** Adds what was read. */
  push(chunk: Uint8Array | string): void {
    this.#text += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    if (this.#text.length > 2 * this.#max) this.#text = this.#text.slice(-this.#max);
  }

  /** What was kept (the last few KiB). */
  get text(): string {
    return this.#text;
  }

  /** The last non-empty line so far. */
  get last(): string {
    return lastLine(this.#text);
  }
}
