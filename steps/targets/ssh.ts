/**
 * A host reached over the system's OpenSSH client, as a {@linkcode Target}: a runbook's
 * `hosts: { db1: { ssh: postgres@10.0.0.5, port: 22, identity: ~/.ssh/dr_key } }` becomes
 * `new SshTarget("db1", { ssh: "postgres@10.0.0.5", port: 22, identity: "~/.ssh/dr_key" })`.
 *
 * - One shared connection per host (a ControlMaster thaw owns, see `ssh_master.ts`), another
 *   only when the host's sshd refuses more sessions on one (`MaxSessions`, 10 by default; see
 *   `ssh_pool.ts`); the user's ssh config, agent and known_hosts; host-key checking is never
 *   turned off; ssh never prompts.
 *   A host that cannot be reached fails with ssh's own words (`ssh: connect to host 10.0.0.5 port
 *   22: Connection refused`, `Host key verification failed.`).
 * - A command runs on the host as the leader of a new session (util-linux `setsid` there); its
 *   pid is its group's id on the host. {@linkcode SshTarget.killGroup} stops the whole group over
 *   the shared connection (SIGTERM, grace, SIGKILL). A process that called `setsid` itself has
 *   left the group and is not stopped (there is no cgroup on the host's side).
 * - An ordinary step is stopped (its group: SIGTERM, then SIGKILL after `graceS`) when its ssh
 *   session ends under it: thaw exited (even by `kill -9`), or the connection was lost and sshd
 *   noticed. A background service (`log` set) writes to its log file on the host and outlives the
 *   session and thaw; while the connection lasts its session stays open (so its exit is seen at
 *   once, with its code); after, {@linkcode SshTarget.groupAlive} watches it.
 * - The host's shell reports a command killed by signal N as exit code 128+N: `signal` is null.
 * - `user:`: when thaw logs in as root, `setpriv` on the host; as anyone else, `sudo -n -u USER`
 *   (a sudo that wants a password fails the step with sudo's words).
 * - `Command.env` is added to the login environment of the host (PATH, HOME and the rest come from
 *   the host unless `env` sets them); `Command.cwd` must exist on the host.
 * - Files: `stat`, `openWrite` (a `cat` on the host fed through the connection, with
 *   back-pressure and an exclusive lock), `rename`, `remove`, `mkdir`, `sha256` (`sha256sum` on
 *   the host). See `ssh_land.ts` for a fetch landing on the host.
 *
 * @module
 */

import type { Command, FileStat, FileWriter, Process, Registration, Target } from "../kind.ts";
import { registerTarget } from "../kind.ts";
import type { ExitStatus, KillOutcome } from "../process/process.ts";
import { shq, type SshHost, type SshOptions, Tail } from "./ssh_args.ts";
import { refusedSession, type SshConnection, SshError } from "./ssh_master.ts";
import { SshPool } from "./ssh_pool.ts";
import { openRemoteWrite, RemoteFileError, remoteSh, remoteStat } from "./ssh_files.ts";
import { aliveScript, killScript, MarkerFilter, nonce, spawnScript } from "./ssh_script.ts";

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

  /** Ends the shared connection (see {@linkcode SshConnection.close}). */
  close(): Promise<void> {
    return this.pool.close();
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
    return await this.pool.session(async (conn) => {
      try {
        return await this.#spawnOnce(conn, cmd);
      } catch (error) {
        // The connection went just before: the command never started; once more, anew.
        if (!(error instanceof SshError)) throw error;
        await conn.settled(200);
        if (conn.masterPid !== undefined) throw error;
        return await this.#spawnOnce(conn, cmd);
      }
    });
  }

  async #spawnOnce(conn: SshConnection, cmd: Command): Promise<RemoteProcess> {
    const id = nonce();
    const script = spawnScript({ ...cmd, graceS: this.#graceS }, id);
    const child = await conn.spawn(script, {
      stdin: "piped",
      stdout: cmd.stdout ? "piped" : "null",
      stderr: "piped",
    });
    const tail = new Tail();
    let gotPid!: (pid: number) => void;
    let gotExit!: (code: number) => void;
    const pidSeen = new Promise<number>((r) => gotPid = r);
    let exitCode: number | undefined;
    const exitSeen = new Promise<number>((r) => gotExit = r);
    const filter = new MarkerFilter(id, (m) => {
      if (m.kind === "pid") gotPid(m.value);
      else gotExit(exitCode = m.value);
    }, (chunk) => {
      tail.push(chunk);
      try {
        cmd.stderr?.(chunk);
      } catch { /* a failing sink must not stop the pipe */ }
    });
    const pumps = [
      pump(child.stderr, (c) => filter.push(c)).then(() => filter.end()),
      ...(cmd.stdout ? [pump(child.stdout, cmd.stdout)] : []),
    ];
    const drained = Promise.all(pumps).then(() => {});
    const ended = child.status.then(async (s) => {
      await drained;
      return s;
    });
    const started = await Promise.race([pidSeen, ended.then(() => undefined)]);
    if (started === undefined) {
      await child.stdin.close().catch(() => {});
      if (refusedSession(tail.text)) throw conn.refused();
      throw new SshError(tail.last || conn.lastWords || "ssh failed", this.host.ssh);
    }
    if (cmd.user !== undefined) this.#users.set(started, cmd.user);
    const status = Promise.race([
      exitSeen.then((code): RemoteExitStatus => ({ code, signal: null })),
      ended.then(async (s): Promise<RemoteExitStatus> =>
        exitCode !== undefined
          ? { code: exitCode, signal: null }
          : { code: 255, signal: null, lost: await this.#lostWords(conn, tail.last, s.code) }
      ),
    ]);
    return {
      pid: started,
      pgid: started,
      status,
      drained,
      closeOutput: async () => {
        await child.stdin.close().catch(() => {});
        try {
          child.kill("SIGTERM");
        } catch { /* exited already */ }
        await drained;
      },
    };
  }

  /** Why a session ended without its exit: the master's last words if it went too. */
  async #lostWords(conn: SshConnection, client: string, code: number): Promise<string> {
    const words = await conn.settled(1000);
    const why = words || client || `ssh exited with code ${code}`;
    return `the ssh connection to ${this.host.ssh} was lost: ${why}`;
  }

  /** Stops process group `pgid` on the host: SIGTERM, then SIGKILL after `graceMs`. */
  async killGroup(pgid: number, graceMs: number): Promise<KillOutcome> {
    assertGroupId(pgid);
    const out = await remoteSh(this.pool, killScript(pgid, graceMs, this.#users.get(pgid)));
    const outcome = out.trim();
    if (outcome === "gone" || outcome === "terminated" || outcome === "killed") return outcome;
    throw new RemoteFileError(`${this.host.ssh}: kill of group ${pgid} said "${outcome}"`);
  }

  /** Whether process group `pgid` has a live member (not a zombie) on the host. */
  async groupAlive(pgid: number): Promise<boolean> {
    if (!Number.isSafeInteger(pgid) || pgid <= 1) return false;
    return (await remoteSh(this.pool, aliveScript(pgid))).trim() === "yes";
  }

  /** What is at `path` on the host, or null. */
  stat(path: string): Promise<FileStat | null> {
    return remoteStat(this.pool, path);
  }

  /** Opens `path` on the host for writing (see `ssh_files.ts`). */
  openWrite(path: string, options?: { offset?: number; append?: boolean }): Promise<FileWriter> {
    return openRemoteWrite(this.pool, path, options);
  }

  /** Renames on the host; a directory at `to` is an error (it is never replaced). */
  async rename(from: string, to: string): Promise<void> {
    await remoteSh(this.pool, `mv -f -T -- ${shq(from)} ${shq(to)}`);
  }

  /** `rm -rf` on the host. */
  async remove(path: string): Promise<void> {
    await remoteSh(this.pool, `rm -rf -- ${shq(path)}`);
  }

  /** `mkdir -p` on the host. */
  async mkdir(path: string): Promise<void> {
    await remoteSh(this.pool, `mkdir -p -- ${shq(path)}`);
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

async function pump(stream: ReadableStream<Uint8Array>, sink: (c: Uint8Array) => void) {
  try {
    for await (const chunk of stream) {
      try {
        sink(chunk);
      } catch { /* a failing sink must not stop the pipe */ }
    }
  } catch { /* cancelled or broken: nothing more to read */ }
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
