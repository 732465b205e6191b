/**
 * A host reached over the system's OpenSSH client, as a {@linkcode Target}: a runbook's
 * `hosts: { db1: { ssh: postgres@10.0.0.5, port: 22, identity: ~/.ssh/dr_key } }` becomes
 * `new SshTarget("db1", { ssh: "postgres@10.0.0.5", port: 22, identity: "~/.ssh/dr_key" })`.
 *
 * - One shared connection per host (a ControlMaster thaw owns, see `ssh_master.ts`); the user's
 *   ssh config, agent and known_hosts; host-key checking is never turned off; ssh never prompts.
 *   A host that cannot be reached fails with ssh's own words (`ssh: connect to host 10.0.0.5 port
 *   22: Connection refused`, `Host key verification failed.`).
 * - Commands go over ONE long-lived session on that connection: a command loop in the host's own
 *   `sh` (`ssh_loop_script.ts`, thaw's end in `ssh_loop.ts`; nothing installed there) starts each
 *   command, reports its pid and exit, sends its output, stops and looks for groups. No ssh
 *   client is started per command, nor per kill. Short file operations (`stat`, `mkdir`,
 *   `rename`, `remove`) are programs the loop runs too (a fork on the host, no session); only
 *   `openWrite`'s stream has a session of its own on the same connection (another connection only
 *   when the host's sshd refuses more sessions on one: `MaxSessions`, 10 by default; see
 *   `ssh_pool.ts`).
 * - A command runs on the host as the leader of a new session (util-linux `setsid` there); its
 *   pid is its group's id on the host. {@linkcode SshTarget.killGroup} stops the whole group
 *   (SIGTERM, grace, SIGKILL). A process that called `setsid` itself has left the group and is
 *   not stopped (there is no cgroup on the host's side). A group found empty when its leader
 *   exited is known to be gone without asking.
 * - A command's stdout and stderr go to files of the loop on the host; thaw fetches what is new
 *   every second while it runs and the rest once it has exited, before its exit is told.
 * - An ordinary step is stopped (its group: SIGTERM, then SIGKILL after `graceS`) when the loop's
 *   session ends under it: thaw exited (even by `kill -9`), or the connection was lost and sshd
 *   noticed. A background service (`log` set) writes to its log file on the host and outlives the
 *   session and thaw; while the loop lasts its exit is seen at once, with its code; after,
 *   {@linkcode SshTarget.groupAlive} watches it. A lost loop fails its running steps with ssh's
 *   words; the next command opens a new one (and a new connection if need be).
 * - The host's shell reports a command killed by signal N as exit code 128+N: `signal` is null.
 * - `user:`: when thaw logs in as root, `setpriv` on the host; as anyone else, `sudo -n -u USER`
 *   (a sudo that wants a password fails the step with sudo's words).
 * - `Command.env` is added to the login environment of the host (PATH, HOME and the rest come from
 *   the host unless `env` sets them); `Command.cwd` must exist on the host.
 * - Files: `stat`, `openWrite` (a `cat` on the host fed through the connection, with
 *   back-pressure and an exclusive lock), `rename`, `remove`, `mkdir`, `sha256` (`sha256sum` on
 *   the host). A fetch landing on the host goes through them: `steps/fetch/target_sink.ts`.
 *
 * @module
 */

import type { Command, FileStat, FileWriter, Process, Registration, Target } from "../kind.ts";
import { registerTarget } from "../kind.ts";
import type { ExitStatus, KillOutcome } from "../process/process.ts";
import { shq, type SshHost, type SshOptions } from "./ssh_args.ts";
import { SshPool } from "./ssh_pool.ts";
import {
  openRemoteWrite,
  RemoteFileError,
  remoteSh,
  remoteStat,
  type ShRunner,
} from "./ssh_files.ts";
import { type LoopCommand, LoopLost, type LoopProcess, SshLoop } from "./ssh_loop.ts";

export { SshError } from "./ssh_master.ts";
export { RemoteFileError } from "./ssh_files.ts";
export type { SshHost, SshOptions } from "./ssh_args.ts";

/** How an {@linkcode SshTarget} behaves beyond ssh's own options. */
export interface SshTargetOptions extends SshOptions {
  /**
   * Seconds between SIGTERM and SIGKILL for a step whose ssh session ended under it (default 5).
   */
  readonly graceS?: number | undefined;
}

/** How a remote process ended; `lost` when the session broke before its exit was seen. */
export interface RemoteExitStatus extends ExitStatus {
  /**
   * ssh's words when the connection broke before the leader's exit came back (`code` is then
   * 255): the group may still be running on the host (ask {@linkcode SshTarget.groupAlive}).
   */
  readonly lost?: string;
}

/** A process group on a host. */
export interface RemoteProcess extends Process {
  readonly status: Promise<RemoteExitStatus>;
}

/** A host over OpenSSH. */
export class SshTarget implements Target, AsyncDisposable {
  readonly name: string;
  readonly host: SshHost;
  /** The shared connections to the host (one while the host takes every session on it). */
  readonly pool: SshPool;
  readonly #graceS: number;
  /** The user each group we started runs as (a non-root login needs sudo to signal it). */
  readonly #users = new Map<number, string>();
  /** Groups whose leader exited with no member left (their post-exit kill needs no question). */
  readonly #empty = new Set<number>();
  #loop: SshLoop | undefined;
  #opening: Promise<SshLoop> | undefined;

  /** A target named `name` (the runbook's host name); nothing connects until it is used. */
  constructor(name: string, host: SshHost, options: SshTargetOptions = {}) {
    this.name = name;
    this.host = host;
    this.pool = new SshPool(host, options);
    this.#graceS = options.graceS ?? 5;
  }

  /** Opens the shared connection now (else the first use does); ssh's words when it cannot. */
  connect(): Promise<void> {
    return this.pool.connect();
  }

  /**
   * Ends the command loop (the host stops the ordinary commands still running; services live on)
   * and the shared connection (see {@linkcode SshConnection.close}).
   */
  async close(): Promise<void> {
    const loop = this.#loop;
    this.#loop = undefined;
    if (loop !== undefined) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const closed = loop.close();
      await Promise.race([closed, new Promise((r) => timer = setTimeout(r, 200))]);
      clearTimeout(timer);
    }
    await this.pool.close();
    await loop?.ended;
  }

  /** Ends the shared connection. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Starts `cmd` on the host in a new session; resolves once its leader runs there (with its pid,
   * the group's id on the host), or rejects with ssh's or the host's words when it cannot start.
   */
  async spawn(cmd: Command): Promise<RemoteProcess> {
    await this.pool.connect(); // an unreachable host fails here, once
    const command: LoopCommand = {
      shell: cmd.shell,
      command: cmd.command,
      cwd: cmd.cwd,
      env: cmd.env,
      user: cmd.user,
      log: cmd.log,
      keepStdout: cmd.stdout !== undefined,
      onOutput: cmd.stdout === undefined && cmd.stderr === undefined ? undefined : (out, err) => {
        if (out.length > 0) deliver(cmd.stdout, out);
        if (err.length > 0) deliver(cmd.stderr, err);
      },
    };
    let started: LoopProcess;
    try {
      started = await (await this.#openLoop()).spawn(command);
    } catch (error) {
      // The connection went just before: the loop, and the command, are gone; once more, anew.
      if (!(error instanceof LoopLost)) throw error;
      started = await (await this.#openLoop()).spawn(command);
    }
    const { pid } = started;
    // A pid the host gives again: whatever was known of an earlier group of that id is void.
    this.#empty.delete(pid);
    if (cmd.user !== undefined) this.#users.set(pid, cmd.user);
    else this.#users.delete(pid);
    const status = started.exit.then((exit): RemoteExitStatus => {
      if ("lost" in exit) return { code: 255, signal: null, lost: exit.lost };
      if (!exit.left && cmd.user === undefined) this.#empty.add(pid);
      return { code: exit.code, signal: null };
    });
    const drained = status.then(() => {});
    return { pid, pgid: pid, status, drained, closeOutput: () => drained };
  }

  /** The command loop on the host: the running one, or a new one (a new connection if need be). */
  #openLoop(): Promise<SshLoop> {
    if (this.#loop?.open) return Promise.resolve(this.#loop);
    this.#opening ??= (async () => {
      try {
        await this.pool.connect();
        const loop = await this.pool.session((conn) => SshLoop.open(conn, this.#graceS));
        this.#loop = loop;
        return loop;
      } finally {
        this.#opening = undefined;
      }
    })();
    return this.#opening;
  }

  /** Stops process group `pgid` on the host: SIGTERM, then SIGKILL after `graceMs`. */
  async killGroup(pgid: number, graceMs: number): Promise<KillOutcome> {
    assertGroupId(pgid);
    // Its leader exited with no member left: nothing can join an empty group.
    if (this.#empty.delete(pgid)) return "gone";
    return await this.#ask((loop) => loop.kill(pgid, graceMs, this.#users.get(pgid)));
  }

  /** Whether process group `pgid` has a live member (not a zombie) on the host. */
  async groupAlive(pgid: number): Promise<boolean> {
    if (!Number.isSafeInteger(pgid) || pgid <= 1) return false;
    if (this.#empty.has(pgid)) return false;
    return await this.#ask((loop) => loop.alive(pgid));
  }

  /**
   * Asks the loop (once more on a new one if it went before answering; with `once`, only if the
   * question never left).
   */
  async #ask<T>(question: (loop: SshLoop) => Promise<T>, once = false): Promise<T> {
    try {
      return await question(await this.#openLoop());
    } catch (error) {
      if (!(error instanceof LoopLost) || (once && !error.unsent)) throw error;
      return await question(await this.#openLoop());
    }
  }

  /**
   * Short file operations run as programs of the command loop (no ssh session each); once more
   * on a new loop if the loop went before answering, but with `once` (a program that must not
   * run twice) only if the request never left.
   */
  #sh(once = false): ShRunner {
    return {
      host: this.host.ssh,
      run: (program) => this.#ask((loop) => loop.run(program), once),
    };
  }

  /** What is at `path` on the host, or null. */
  stat(path: string): Promise<FileStat | null> {
    return remoteStat(this.#sh(), path);
  }

  /** Opens `path` on the host for writing (see `ssh_files.ts`). */
  openWrite(path: string, options?: { offset?: number; append?: boolean }): Promise<FileWriter> {
    return openRemoteWrite(this.pool, path, options);
  }

  /** Renames on the host; a directory at `to` is an error (it is never replaced). */
  async rename(from: string, to: string): Promise<void> {
    await remoteSh(this.#sh(true), `mv -f -T -- ${shq(from)} ${shq(to)}`);
  }

  /** `rm -rf` on the host. */
  async remove(path: string): Promise<void> {
    await remoteSh(this.#sh(), `rm -rf -- ${shq(path)}`);
  }

  /** `mkdir -p` on the host. */
  async mkdir(path: string): Promise<void> {
    await remoteSh(this.#sh(), `mkdir -p -- ${shq(path)}`);
  }

  /** `sha256sum` on the host; an abort stops it there. */
  async sha256(path: string, signal?: AbortSignal): Promise<string> {
    signal?.throwIfAborted();
    let out = "";
    const decoder = new TextDecoder();
    const p = await this.spawn({
      shell: "sh",
      command: `exec sha256sum -- ${shq(path)}`,
      cwd: "/",
      env: {},
      stdout: (c) => out += decoder.decode(c, { stream: true }),
      stderr: (c) => out += decoder.decode(c, { stream: true }),
    });
    const stop = () => void this.killGroup(p.pgid, 0).catch(() => {});
    signal?.addEventListener("abort", stop, { once: true });
    try {
      const s = await p.status;
      await p.drained;
      signal?.throwIfAborted();
      const hex = /^([0-9a-f]{64})\s/.exec(out)?.[1];
      if (s.code !== 0 || hex === undefined) {
        throw new RemoteFileError(`${this.host.ssh}: sha256sum ${path}: ${out.trim() || s.lost}`);
      }
      return hex;
    } finally {
      signal?.removeEventListener("abort", stop);
    }
  }
}

function assertGroupId(pgid: number): void {
  if (!Number.isSafeInteger(pgid) || pgid <= 1) {
    throw new RangeError(`not a process group id: ${pgid}`);
  }
}

function deliver(sink: ((c: Uint8Array) => void) | undefined, bytes: Uint8Array): void {
  try {
    sink?.(bytes);
  } catch { /* a failing sink must not stop the step */ }
}

/**
 * Registers one {@linkcode SshTarget} per host of a runbook's `hosts:`; disposing of the result
 * takes them out and ends their connections.
 */
export function registerHosts(
  hosts: Readonly<Record<string, SshHost>>,
  options: SshTargetOptions = {},
): Registration & AsyncDisposable & { readonly targets: readonly SshTarget[] } {
  const targets = Object.entries(hosts).map(([name, host]) => new SshTarget(name, host, options));
  const registrations: Registration[] = [];
  try {
    for (const t of targets) registrations.push(registerTarget(t));
  } catch (error) {
    for (const r of registrations) r.unregister();
    throw error;
  }
  const unregister = () => registrations.forEach((r) => r.unregister());
  return {
    targets,
    unregister,
    [Symbol.dispose]: unregister,
    [Symbol.asyncDispose]: async () => {
      unregister();
      await Promise.all(targets.map((t) => t.close()));
    },
  };
}
