/**
 * Real OpenSSH servers for tests: each {@linkcode startSshd} runs Debian's `sshd` as a child
 * process on 127.0.0.1, on a free port, with a host key, a client key, an `authorized_keys`, a
 * `known_hosts` holding the host's real public key and an ssh client config, all generated in a
 * temporary directory of its own. Nothing touches the machine's own sshd, `/etc/ssh` or `~/.ssh`;
 * the only thing outside the temporary directory is sshd's privilege-separation directory
 * `/run/sshd`, created if missing (sshd refuses to start without it).
 *
 * Several hosts are several servers, each on its own port, each with its own `Host` alias in one
 * shared client config ({@linkcode SshdHost.config} of the first, or {@linkcode writeSshConfig}).
 *
 * @module
 */

import { join } from "node:path";
import { SshTarget } from "../steps/targets/ssh.ts";

/** Where Debian's openssh-server puts the daemon (sshd wants an absolute path to re-exec). */
export const SSHD = "/usr/sbin/sshd";

/** Whether a real sshd and ssh client are installed (tests are ignored without them). */
export function hasSshd(): boolean {
  try {
    return Deno.statSync(SSHD).isFile && Deno.statSync("/usr/bin/ssh").isFile &&
      Deno.statSync("/usr/bin/ssh-keygen").isFile;
  } catch {
    return false;
  }
}

/** A running test sshd. */
export interface SshdHost {
  /** The `Host` alias in {@linkcode config} (`ssh -F CONFIG ALIAS` logs in). */
  readonly alias: string;
  readonly port: number;
  /** The temporary directory holding keys, configs and logs. */
  readonly dir: string;
  /** An ssh client config with this host's alias (and strict host-key checking). */
  readonly config: string;
  /** The client's private key. */
  readonly identity: string;
  /** The known_hosts file the client config points at. */
  readonly knownHosts: string;
  /** The host's public key line (`ssh-ed25519 AAAA…`). */
  readonly hostKey: string;
  /** The sshd process id. */
  readonly pid: number;
  /** sshd's log so far (`-E FILE`): one line per event. */
  log(): Promise<string>;
  /** Stops sshd, every session it still serves and what runs there; removes `dir`. */
  stop(): Promise<void>;
}

/** A port nobody listens on at the moment it is asked. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/** Generates an ed25519 key pair at `path` (and `path.pub`); returns the public key line. */
export async function keygen(path: string): Promise<string> {
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "thaw-test", "-f", path]);
  return (await Deno.readTextFile(`${path}.pub`)).trim().split(" ").slice(0, 2).join(" ");
}

/** The client config lines for one host alias. */
export function hostBlock(
  host: { alias: string; port: number; identity: string; knownHosts: string },
): string {
  return [
    `Host ${host.alias}`,
    `  HostName 127.0.0.1`,
    `  Port ${host.port}`,
    `  User root`,
    `  IdentityFile ${host.identity}`,
    `  IdentitiesOnly yes`,
    `  UserKnownHostsFile ${host.knownHosts}`,
    `  GlobalKnownHostsFile /dev/null`,
    `  StrictHostKeyChecking yes`,
    `  BatchMode yes`,
    `  LogLevel ERROR`,
    "",
  ].join("\n");
}

/** Writes one client config naming every host, for tests with several hosts. */
export async function writeSshConfig(path: string, hosts: readonly SshdHost[]): Promise<string> {
  await Deno.writeTextFile(path, hosts.map(hostBlock).join("\n"), { mode: 0o600 });
  return path;
}

/** sshd's own config: loopback only, keys only, files under `dir`. */
function sshdConfig(dir: string, port: number): string {
  return [
    `Port ${port}`,
    `ListenAddress 127.0.0.1`,
    `HostKey ${join(dir, "host_ed25519")}`,
    `PidFile none`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    // The temporary directory sits in the world-writable /tmp, which StrictModes refuses.
    `StrictModes no`,
    `PasswordAuthentication no`,
    `KbdInteractiveAuthentication no`,
    `PubkeyAuthentication yes`,
    `PermitRootLogin prohibit-password`,
    `UsePAM no`,
    `MaxStartups 64`,
    `LogLevel INFO`,
    `Subsystem sftp internal-sftp`,
    // Debian's bash reads ~/.bashrc for every ssh command (when SHLVL says it is the first
    // shell); this machine's root ~/.bashrc is slow (pyenv) and no part of what is tested.
    `SetEnv SHLVL=1`,
    "",
  ].join("\n");
}

/** Every process below `root`, parents first (sshd's connections, their sessions, commands). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry.name));
      children.set(ppid, list);
    } catch { /* gone */ }
  }
  const found: number[] = [];
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      found.push(c);
      walk(c);
    }
  };
  walk(root);
  return found;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`, or throws. */
async function waitListening(port: number, child: Deno.ChildProcess, ms: number): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = performance.now() + ms;
  while (performance.now() < deadline && !exited) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new Error(exited ? "sshd exited at start" : `sshd not listening after ${ms} ms`);
}

/**
 * Starts a real sshd on 127.0.0.1 with fresh keys in a temporary directory. Stop it with
 * {@linkcode SshdHost.stop} (in a `finally`).
 *
 * @example
 * ```ts ignore
 * const host = await startSshd();
 * try {
 *   // ssh -F host.config host.alias true
 * } finally {
 *   await host.stop();
 * }
 * ```
 */
export async function startSshd(alias = "thaw-test"): Promise<SshdHost> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-sshd-" });
  try {
    await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
    const hostKey = await keygen(join(dir, "host_ed25519"));
    const clientKey = await keygen(join(dir, "client_ed25519"));
    await Deno.writeTextFile(join(dir, "authorized_keys"), clientKey + "\n", { mode: 0o600 });
    const port = freePort();
    const knownHosts = join(dir, "known_hosts");
    await Deno.writeTextFile(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`, { mode: 0o600 });
    const identity = join(dir, "client_ed25519");
    const config = join(dir, "ssh_config");
    await Deno.writeTextFile(config, hostBlock({ alias, port, identity, knownHosts }), {
      mode: 0o600,
    });
    await Deno.writeTextFile(join(dir, "sshd_config"), sshdConfig(dir, port), { mode: 0o600 });
    const logPath = join(dir, "sshd.log");
    // In a group of its own (setsid does not fork here: a child of Deno leads no group), under
    // a shell that stops sshd when its stdin, a pipe only this process holds, closes: a test
    // runner killed before stop() leaves no sshd behind.
    const child = new Deno.Command("setsid", {
      args: [
        "sh",
        "-c",
        'exec 3<&0; "$@" </dev/null & p=$!; while read -r _ <&3; do :; done; kill $p; wait $p',
        "sh",
        SSHD,
        "-D",
        "-E",
        logPath,
        "-f",
        join(dir, "sshd_config"),
      ],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const stop = async () => {
      // Each connection's sshd leads a session of its own, and so does each command the tests
      // ran there: stop them all (a failed test may leave some), then the listener.
      for (const pid of descendants(child.pid)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* already gone */ }
      }
      try {
        Deno.kill(-child.pid, "SIGTERM");
      } catch { /* already gone */ }
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    };
    try {
      await waitListening(port, child, 10_000);
    } catch (error) {
      await new Promise((r) => setTimeout(r, 50));
      const text = await Deno.readTextFile(logPath).catch(() => "");
      await stop();
      throw new Error(`${(error as Error).message}: ${text.trim().split("\n").at(-1) ?? ""}`);
    }
    return {
      alias,
      port,
      dir,
      config,
      identity,
      knownHosts,
      hostKey,
      pid: child.pid,
      log: () => Deno.readTextFile(logPath),
      stop,
    };
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}

/**
 * Runs `body` with a started sshd and an {@linkcode SshTarget} named `h1` on it (its grace 1 s);
 * both stopped after, also when `body` throws.
 */
export async function withSshTarget(
  body: (target: SshTarget, host: SshdHost) => Promise<void>,
): Promise<void> {
  const host = await startSshd();
  const target = new SshTarget("h1", { ssh: host.alias }, { sshConfig: host.config, graceS: 1 });
  try {
    await body(target, host);
  } finally {
    await target.close();
    await host.stop();
  }
}
