/**
 * One shared OpenSSH connection per host (a ControlMaster), owned by thaw.
 *
 * The master is a child process, `ssh -M -S SOCKET -o ControlPersist=no HOST 'exec cat
 * >/dev/null'`, whose stdin is a pipe only thaw holds: when thaw exits, even by `kill -9`, the
 * pipe closes, the remote `cat` ends and the master goes once its last multiplexed session has
 * ended. No master outlives the engine that started it; none is left idle forever. Its socket
 * lives in a directory of its own (mode 0700) under the system's temporary directory.
 *
 * Every command then goes over the master (`ssh -S SOCKET -o ControlMaster=no HOST …`): one
 * login for as many commands as the host lets one connection carry at once (sshd's `MaxSessions`,
 * 10 by default, the master's own session included; `ssh_pool.ts` opens another connection
 * beyond). A mux client never opens a connection of its own (its `ProxyCommand` is `false`): if
 * the master is gone, the command fails and the next one starts a new master.
 *
 * @module
 */

import { hostOptions, lastLine, type SshHost, type SshOptions, Tail } from "./ssh_args.ts";

/** ssh could not reach or log in to a host, or the shared connection broke: ssh's own words. */
export class SshError extends Error {
  /** Makes one. `message` is ssh's last line on stderr. */
  constructor(message: string, readonly host: string) {
    super(message);
    this.name = "SshError";
  }
}

/**
 * The host refused one more session on a shared connection (sshd's `MaxSessions`, 10 by
 * default, counts the sessions of one connection): open another connection and try there.
 */
export class SessionRefused extends Error {
  /** Makes one, for the connection that refused. */
  constructor(readonly connection: SshConnection) {
    super(`${connection.host.ssh}: session open refused by peer (sshd's MaxSessions)`);
    this.name = "SessionRefused";
  }
}

/** Whether what an ssh mux client wrote on stderr says the host refused the session. */
export function refusedSession(stderr: string): boolean {
  return stderr.includes("Session open refused by peer");
}

/** What a short command on the host printed and how it exited. */
export interface Output {
  /** The remote exit code; 255 when ssh itself failed (then `stderr` ends with ssh's words). */
  readonly code: number;
  readonly stdout: Uint8Array;
  readonly stderr: string;
}

const decoder = new TextDecoder();

/** The shared connection to one host. */
export class SshConnection {
  readonly host: SshHost;
  readonly #options: SshOptions;
  readonly #base: string[];
  #dir: string | undefined;
  #master: Deno.ChildProcess | undefined;
  #exited = true;
  #starting: Promise<void> | undefined;
  #tail = new Tail();
  #status: Promise<Deno.CommandStatus> | undefined;
  /** Sessions open over this connection now (ssh clients running). */
  active = 0;
  /** How many sessions the host allowed at once, learnt from a refusal (else unbounded). */
  capacity = Infinity;

  /** A connection to `host`; nothing happens until {@linkcode SshConnection.connect}. */
  constructor(host: SshHost, options: SshOptions = {}) {
    this.host = host;
    this.#options = options;
    this.#base = hostOptions(host, options);
  }

  /** The ssh client program. */
  get program(): string {
    return this.#options.ssh ?? "ssh";
  }

  /** The master's pid while it runs. */
  get masterPid(): number | undefined {
    return this.#exited ? undefined : this.#master?.pid;
  }

  /** The control socket, once connected. */
  get socket(): string | undefined {
    return this.#dir === undefined ? undefined : `${this.#dir}/m`;
  }

  /**
   * Makes sure the master runs: starts it (and waits until it has logged in) when it does not.
   * Concurrent callers share one start. Rejects with an {@linkcode SshError} in ssh's words when
   * the host cannot be reached or refuses the login.
   */
  connect(): Promise<void> {
    if (this.#starting !== undefined) return this.#starting; // a master logging in: wait for it
    if (!this.#exited) return Promise.resolve();
    this.#starting = this.#start().finally(() => this.#starting = undefined);
    return this.#starting;
  }

  async #start(): Promise<void> {
    this.#dir ??= await Deno.makeTempDir({ dir: this.#options.controlDir, prefix: "thaw-ssh-" });
    const socket = `${this.#dir}/m`;
    await Deno.remove(socket).catch(() => {});
    this.#tail = new Tail();
    const master = new Deno.Command(this.program, {
      args: [
        ...this.#base,
        "-M",
        "-S",
        socket,
        "-o",
        "ControlPersist=no",
        this.host.ssh,
        "exec cat >/dev/null",
      ],
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#master = master;
    this.#exited = false;
    const tail = this.#tail;
    const drained = master.stderr.pipeTo(
      new WritableStream({ write: (chunk) => tail.push(chunk) }),
    ).catch(() => {});
    const status = master.status.then(async (s) => {
      if (this.#master === master) this.#exited = true;
      await drained;
      return s;
    });
    this.#status = status;
    await this.#waitSocket(socket, status);
  }

  /** Polls until the master's socket exists (it has logged in), or the master exits. */
  async #waitSocket(socket: string, status: Promise<Deno.CommandStatus>): Promise<void> {
    let gone: Deno.CommandStatus | undefined;
    status.then((s) => gone = s);
    let pause = 2;
    for (let waited = 0; waited < 120_000; waited += pause) {
      if (gone !== undefined) break;
      try {
        await Deno.lstat(socket);
        return;
      } catch { /* not yet */ }
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 50);
    }
    if (gone === undefined) await this.close();
    await status;
    const words = this.#tail.last || `ssh exited with code ${gone?.code ?? "?"} before logging in`;
    throw new SshError(words, this.host.ssh);
  }

  /**
   * Waits (at most `ms`) for a master that is going to be gone, and gives its last words; ""
   * when it still runs (a session ended alone) or said nothing.
   */
  async settled(ms: number): Promise<string> {
    const status = this.#status;
    if (status === undefined) return this.#tail.last;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ended = await Promise.race([
      status,
      new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), ms)),
    ]);
    clearTimeout(timer);
    if (ended === undefined) return "";
    return this.#tail.last ||
      (ended.signal
        ? `its ssh process (pid ${this.#master?.pid}) was killed by ${ended.signal}`
        : "");
  }

  /** ssh's last words on the master's stderr (why the shared connection ended). */
  get lastWords(): string {
    return this.#tail.last;
  }

  /**
   * The argv of a command multiplexed over the master: `ssh … -S SOCKET HOST -- REMOTE`.
   * Call {@linkcode SshConnection.connect} first.
   */
  args(remote: string): string[] {
    const socket = this.socket;
    if (socket === undefined) throw new Error("not connected: call connect() first");
    return [
      ...this.#base,
      "-S",
      socket,
      "-o",
      "ControlMaster=no",
      "-o",
      "ProxyCommand=false",
      "-T",
      this.host.ssh,
      "--",
      remote,
    ];
  }

  /**
   * Starts `remote` (a command line for the host's login shell) over the master, connecting
   * first if need be.
   */
  async spawn(
    remote: string,
    stdio: { stdin?: "piped" | "null"; stdout?: "piped" | "null"; stderr?: "piped" | "null" } = {},
  ): Promise<Deno.ChildProcess> {
    await this.connect();
    const child = new Deno.Command(this.program, {
      args: this.args(remote),
      stdin: stdio.stdin ?? "null",
      stdout: stdio.stdout ?? "piped",
      stderr: stdio.stderr ?? "piped",
    }).spawn();
    this.active++;
    child.status.finally(() => this.active--);
    return child;
  }

  /** Learns from a refused session how many the host allows on one connection. */
  refused(): SessionRefused {
    this.capacity = Math.max(1, Math.min(this.capacity, this.active)); // its own one has ended
    return new SessionRefused(this);
  }

  /**
   * Runs a short command on the host and collects its output. Rejects with an
   * {@linkcode SshError} when ssh itself fails (exit 255 with nothing from the host).
   */
  async run(remote: string, input?: Uint8Array): Promise<Output> {
    const child = await this.spawn(remote, { stdin: input ? "piped" : "null" });
    if (input) {
      const writer = child.stdin.getWriter();
      await writer.write(input).catch(() => {});
      await writer.close().catch(() => {});
    }
    const out = await child.output();
    const stderr = decoder.decode(out.stderr);
    if (out.code === 255 && refusedSession(stderr)) throw this.refused();
    if (out.code === 255 && this.#exited) {
      throw new SshError(this.#tail.last || lastLine(stderr) || "ssh failed", this.host.ssh);
    }
    return { code: out.code, stdout: out.stdout, stderr };
  }

  /**
   * Ends the master (its multiplexed sessions with it: their remote steps see their session end)
   * and removes its socket directory. Services started with a log file keep running on the host.
   */
  async close(): Promise<void> {
    const master = this.#master;
    if (master !== undefined && !this.#exited) {
      try {
        await master.stdin.close();
      } catch { /* closed already */ }
      const socket = this.socket;
      if (socket !== undefined) {
        await new Deno.Command(this.program, {
          args: [...this.#base, "-S", socket, "-O", "exit", this.host.ssh],
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).output().catch(() => {});
      }
      const timer = setTimeout(() => {
        try {
          master.kill("SIGTERM");
        } catch { /* gone */ }
      }, 5000);
      await master.status;
      clearTimeout(timer);
      this.#exited = true;
    }
    if (this.#dir !== undefined) {
      await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
      this.#dir = undefined;
    }
  }
}
