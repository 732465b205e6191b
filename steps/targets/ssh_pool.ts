/**
 * The shared connections to one host: one, as long as the host takes every session on it; more
 * only when sshd refuses a session (its `MaxSessions` per connection, 10 by default, counts the
 * master's own session and every step, service, probe and file operation running there). A
 * refused session never started anything on the host, so it is tried again on a connection with
 * room, opened if need be.
 *
 * @module
 */

import type { SshHost, SshOptions } from "./ssh_args.ts";
import { type Output, SessionRefused, SshConnection } from "./ssh_master.ts";

/** Attempts of one session before giving up on refusals (each on a connection with room). */
const TRIES = 8;

/** The connections to one host. */
export class SshPool {
  readonly host: SshHost;
  readonly #options: SshOptions;
  readonly #conns: SshConnection[] = [];

  /** A pool for `host`; nothing connects until it is used. */
  constructor(host: SshHost, options: SshOptions = {}) {
    this.host = host;
    this.#options = options;
    this.#conns.push(new SshConnection(host, options));
  }

  /** The first connection (the one every command uses while the host takes them all). */
  get primary(): SshConnection {
    return this.#conns[0]!;
  }

  /** The pids of the masters running now. */
  get masterPids(): number[] {
    return this.#conns.map((c) => c.masterPid).filter((p): p is number => p !== undefined);
  }

  /** ssh's last words on the primary connection. */
  get lastWords(): string {
    return this.primary.lastWords;
  }

  /** Opens the primary connection (ssh's words when it cannot). */
  connect(): Promise<void> {
    return this.primary.connect();
  }

  /** A connection with room for one more session (a new one when all are full). */
  pick(): SshConnection {
    let conn = this.#conns.find((c) => c.active < c.capacity);
    if (conn === undefined) {
      conn = new SshConnection(this.host, this.#options);
      this.#conns.push(conn);
    }
    return conn;
  }

  /**
   * Runs `body` with a connection with room; when the host refuses the session (`body` throws a
   * {@linkcode SessionRefused}), again on another.
   */
  async session<T>(body: (conn: SshConnection) => Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      try {
        return await body(this.pick());
      } catch (error) {
        if (!(error instanceof SessionRefused) || attempt >= TRIES) throw error;
      }
    }
  }

  /** Runs a short command on the host (see {@linkcode SshConnection.run}). */
  run(remote: string, input?: Uint8Array): Promise<Output> {
    return this.session((conn) => conn.run(remote, input));
  }

  /** Waits for the primary master's end, if it is ending (see {@linkcode SshConnection.settled}). */
  settled(ms: number): Promise<string> {
    return this.primary.settled(ms);
  }

  /** Ends every connection. */
  async close(): Promise<void> {
    await Promise.all(this.#conns.map((c) => c.close()));
    this.#conns.splice(1);
  }
}
