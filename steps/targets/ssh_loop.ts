/**
 * thaw's end of the command loop on a host (`ssh_loop_script.ts`): one long-lived ssh session
 * over the host's shared connection carries every command of the host: start, pid, exit status,
 * output, group kills and liveness checks. No ssh client is started per command; the host runs
 * its own `sh` and OpenSSH, nothing installed.
 *
 * When the session ends under it (thaw's connection lost), every command still waiting learns it
 * with ssh's words, and the loop on the host stops their groups as soon as sshd notices; the next
 * command opens a new loop (and a new connection if need be).
 *
 * @module
 */

import type { KillOutcome } from "../process/process.ts";
import { lastLine, shq, Tail } from "./ssh_args.ts";
import { refusedSession, type SshConnection, SshError } from "./ssh_master.ts";
import { loopProgram, loopWord } from "./ssh_loop_script.ts";
import { nonce } from "./ssh_script.ts";

/** What the loop starts. */
export interface LoopCommand {
  readonly shell: string;
  readonly command: string;
  readonly cwd?: string | undefined;
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly user?: string | undefined;
  /** A log file on the host: a service, which outlives the loop. */
  readonly log?: string | undefined;
  /** Whether the command's stdout is wanted (else it goes to /dev/null on the host). */
  readonly keepStdout: boolean;
  /**
   * Where its output goes, as it comes: fetched every {@linkcode POLL_MS} while it runs, the rest
   * once it has exited (before its exit is told).
   */
  readonly onOutput?: ((stdout: Uint8Array, stderr: Uint8Array) => void) | undefined;
}

/** How often the output of a running command is fetched. */
export const POLL_MS = 1000;

/** What thaw knows of a running command's output. */
interface Running {
  onOutput?: ((stdout: Uint8Array, stderr: Uint8Array) => void) | undefined;
  /** Bytes of stdout and stderr passed on so far. */
  out: number;
  err: number;
  /** The fetches so far, in order. */
  fetched: Promise<void>;
  timer?: ReturnType<typeof setTimeout> | undefined;
  done: boolean;
}

/** How a command ended: its code, or ssh's words when the loop went first. */
export type LoopExit =
  | {
    readonly code: number;
    /** Whether a member of its group was still there when the leader exited. */
    readonly left: boolean;
  }
  | { readonly lost: string };

/** A command the loop started. */
export interface LoopProcess {
  readonly pid: number;
  readonly exit: Promise<LoopExit>;
}

/** How a short program of {@linkcode SshLoop.run} ended, and what it wrote. */
export interface LoopResult {
  readonly code: number;
  readonly stdout: Uint8Array;
  readonly stderr: Uint8Array;
}

/** The loop ended (its session or connection went) before the answer came. */
export class LoopLost extends SshError {
  /** Makes one; `unsent`: the request never left thaw (asking again cannot do it twice). */
  constructor(message: string, host: string, readonly unsent = false) {
    super(message, host);
  }
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One command loop on a host. */
export class SshLoop {
  readonly #conn: SshConnection;
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #prefix: string;
  readonly #tail = new Tail();
  #next = 1;
  #lost: string | undefined;
  /** The session's ssh client has exited (its words may not be known yet). */
  #gone = false;
  /** thaw ended the loop: its end needs no waiting for the master's words. */
  #closing = false;
  readonly #starts = new Map<number, Waiter<number>>();
  readonly #exits = new Map<number, Waiter<LoopExit>>();
  readonly #answers = new Map<number, Waiter<string>>();
  readonly #results = new Map<number, Waiter<LoopResult>>();
  readonly #outputs: Waiter<[Uint8Array, Uint8Array]>[] = [];
  readonly #running = new Map<number, Running>();
  #ready!: Waiter<void>;
  /** Resolves once the session has ended and its pipes are read. */
  readonly ended: Promise<void>;

  private constructor(conn: SshConnection, child: Deno.ChildProcess, id: string) {
    this.#conn = conn;
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#prefix = `\x1e${id} `;
    const pumps = Promise.all([this.#readControl(), this.#readOutput()]);
    this.ended = child.status.then(async (s) => {
      this.#gone = true;
      await pumps;
      await this.#end(s.code);
    });
  }

  /**
   * Starts a loop over `conn`; resolves once it runs on the host. Rejects with ssh's words (an
   * {@linkcode SshError}) when it cannot, or the connection's refusal when the host allows no
   * more sessions on it.
   */
  static async open(conn: SshConnection, graceS: number): Promise<SshLoop> {
    const id = nonce();
    const child = await conn.spawn(`exec sh -c ${shq(loopProgram(id, graceS))}`, {
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    });
    const loop = new SshLoop(conn, child, id);
    await new Promise<void>((resolve, reject) => loop.#ready = { resolve, reject });
    return loop;
  }

  /** Whether the loop still runs (as far as thaw knows). */
  get open(): boolean {
    return !this.#gone;
  }

  /** Starts a command; resolves with its pid (its group's id) once it runs on the host. */
  async spawn(cmd: LoopCommand): Promise<LoopProcess> {
    const id = this.#next++;
    const env = Object.entries(cmd.env ?? {})
      .filter(([name]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      .map(([name, value]) => loopWord(`${name}=${value}`));
    const words = [
      "sp",
      String(id),
      loopWord(cmd.cwd ?? ""),
      loopWord(cmd.user ?? ""),
      loopWord(cmd.log ?? ""),
      cmd.keepStdout ? "1" : "''",
      loopWord(cmd.shell),
      loopWord(cmd.command),
      ...env,
    ];
    const exit = new Promise<LoopExit>((resolve, reject) =>
      this.#exits.set(id, { resolve, reject })
    );
    exit.catch(() => {});
    const running: Running = {
      onOutput: cmd.onOutput,
      out: 0,
      err: 0,
      fetched: Promise.resolve(),
      done: false,
    };
    this.#running.set(id, running);
    try {
      const pid = await this.#ask(this.#starts, id, words.join(" "));
      if (cmd.onOutput !== undefined) this.#poll(id, running);
      return { pid, exit };
    } catch (error) {
      this.#running.delete(id);
      throw error;
    }
  }

  /** Fetches a running command's output every {@linkcode POLL_MS}. */
  #poll(id: number, running: Running): void {
    running.timer = setTimeout(() => {
      if (running.done || this.#lost !== undefined) return;
      running.fetched = running.fetched.then(() => this.#fetch(id, running, true));
      running.fetched.then(() => this.#poll(id, running), () => {});
    }, POLL_MS);
    Deno.unrefTimer(running.timer);
  }

  /** Fetches a command's output past what was passed on; `keep`: it still runs. */
  async #fetch(id: number, running: Running, keep: boolean): Promise<void> {
    if (running.done && keep) return;
    const got = new Promise<[Uint8Array, Uint8Array]>((resolve, reject) =>
      this.#outputs.push({ resolve, reject })
    );
    this.#send(`gt ${id} ${running.out} ${running.err}${keep ? " keep" : ""}`);
    const [out, err] = await got;
    running.out += out.length;
    running.err += err.length;
    if (out.length + err.length > 0) {
      try {
        running.onOutput?.(out, err);
      } catch { /* a failing sink must not stop the step */ }
    }
  }

  /** Stops group `pgid` (SIGTERM, SIGKILL after `graceMs`), as `user` when given. */
  async kill(pgid: number, graceMs: number, user?: string): Promise<KillOutcome> {
    const req = this.#next++;
    const grace = String(Math.max(0, Math.round(graceMs)));
    const line = `kg ${req} ${pgid} ${grace} ${loopWord(user ?? "")}`;
    const outcome = await this.#ask(this.#answers, req, line);
    if (outcome === "gone" || outcome === "terminated" || outcome === "killed") return outcome;
    throw new SshError(`kill of group ${pgid} said "${outcome}"`, this.#conn.host.ssh);
  }

  /** Whether group `pgid` has a live member on the host. */
  async alive(pgid: number): Promise<boolean> {
    const req = this.#next++;
    return (await this.#ask(this.#answers, req, `al ${req} ${pgid}`)) === "yes";
  }

  /**
   * Runs a short sh `program` on the host (a file operation) in a subshell of the loop, no ssh
   * session of its own; resolves with its exit code and output once it has ended.
   */
  run(program: string): Promise<LoopResult> {
    const id = this.#next++;
    return this.#ask(this.#results, id, `rq ${id} ${loopWord(program)}`);
  }

  /** Ends the loop: the host stops its ordinary commands; services live on. */
  async close(): Promise<void> {
    this.#closing = true;
    await this.#writer.close().catch(() => {});
    await this.ended;
  }

  #ask<T>(waiters: Map<number, Waiter<T>>, id: number, line: string): Promise<T> {
    if (this.#lost !== undefined || this.#gone) {
      const words = this.#lost ?? `the ssh connection to ${this.#host} was lost`;
      return Promise.reject(new LoopLost(words, this.#host, true));
    }
    const answer = new Promise<T>((resolve, reject) => waiters.set(id, { resolve, reject }));
    this.#send(line);
    return answer;
  }

  #send(line: string): void {
    this.#writer.write(encoder.encode(line + "\n")).catch(() => {});
  }

  /** Control lines on the session's stderr; anything else is ssh's (or the host's) words. */
  async #readControl(): Promise<void> {
    let text = "";
    try {
      for await (const chunk of this.#child.stderr) {
        text += decoder.decode(chunk, { stream: true });
        let nl;
        while ((nl = text.indexOf("\n")) !== -1) {
          const line = text.slice(0, nl);
          text = text.slice(nl + 1);
          if (line.startsWith(this.#prefix)) this.#control(line.slice(this.#prefix.length));
          else this.#tail.push(line + "\n");
        }
      }
    } catch { /* the session broke: #end says so */ }
    this.#tail.push(text);
  }

  #control(line: string): void {
    const [kind, a = "", ...rest] = line.split(" ");
    const id = Number(a);
    if (kind === "R") this.#ready.resolve();
    else if (kind === "P") take(this.#starts, id)?.resolve(Number(rest[0]));
    else if (kind === "F") {
      take(this.#starts, id)?.reject(new SshError(rest.join(" ") || "cannot start", this.#host));
      take(this.#exits, id);
    } else if (kind === "K" || kind === "A") take(this.#answers, id)?.resolve(rest[0] ?? "");
    else if (kind === "X") void this.#exited(id, rest);
    else if (kind === "Q") void this.#answered(id, rest);
  }

  get #host(): string {
    return this.#conn.host.ssh;
  }

  /** A command exited: fetch its output if it wrote any, then tell its waiter. */
  async #exited(id: number, [code, outBytes, errBytes, left]: string[]): Promise<void> {
    const waiter = take(this.#exits, id);
    const running = take(this.#running, id);
    const start = take(this.#starts, id);
    if (start !== undefined) {
      // Gone before its leader said its pid: it never ran (no setsid, no such shell there).
      let words = `exited with code ${code} before the command started`;
      const failed: Running = { out: 0, err: 0, fetched: Promise.resolve(), done: true };
      failed.onOutput = (_out, err) => words = lastLine(err) || words;
      await this.#fetch(id, failed, false).catch(() => {});
      start.reject(new SshError(words, this.#host));
      return;
    }
    if (running !== undefined) {
      running.done = true;
      clearTimeout(running.timer);
      try {
        await running.fetched;
        const wrote = Number(outBytes) + Number(errBytes) > 0;
        if (wrote && running.onOutput !== undefined) await this.#fetch(id, running, false);
        else this.#send(`dn ${id}`);
      } catch (error) {
        waiter?.resolve({ lost: (error as Error).message });
        return;
      }
    }
    waiter?.resolve({ code: Number(code), left: left === "left" });
  }

  /** A program of {@linkcode run} ended: its output fetched when it wrote any, then told. */
  async #answered(id: number, [code, outBytes, errBytes]: string[]): Promise<void> {
    const waiter = take(this.#results, id);
    let stdout: Uint8Array = new Uint8Array(0), stderr: Uint8Array = new Uint8Array(0);
    if (Number(outBytes) + Number(errBytes) > 0) {
      const got: Running = { out: 0, err: 0, fetched: Promise.resolve(), done: true };
      got.onOutput = (out, err) => [stdout, stderr] = [out, err];
      try {
        await this.#fetch(id, got, false);
      } catch (error) {
        waiter?.reject(error as Error);
        return;
      }
    } else this.#send(`dn ${id}`);
    waiter?.resolve({ code: Number(code), stdout, stderr });
  }

  /** Output answers on stdout: `O ID OUTBYTES ERRBYTES\n` and the bytes, in request order. */
  async #readOutput(): Promise<void> {
    let buf: Uint8Array = new Uint8Array(0);
    let need: [number, number] | undefined;
    try {
      for await (const chunk of this.#child.stdout) {
        buf = concat(buf, chunk);
        for (;;) {
          if (need === undefined) {
            const nl = buf.indexOf(0x0a);
            if (nl === -1) break;
            const [, , o, e] = decoder.decode(buf.subarray(0, nl)).split(" ");
            need = [Number(o), Number(e)];
            buf = buf.slice(nl + 1);
          }
          const [o, e] = need;
          if (buf.length < o + e) break;
          this.#outputs.shift()?.resolve([buf.slice(0, o), buf.slice(o, o + e)]);
          buf = buf.slice(o + e);
          need = undefined;
        }
      }
    } catch { /* the session broke: #end says so */ }
  }

  /** The session ended: every waiter learns why, in ssh's words. */
  async #end(code: number): Promise<void> {
    const words = await this.#words(code);
    this.#lost = words;
    const error = new LoopLost(words, this.#host);
    if (this.#ready !== undefined) {
      this.#ready.reject(
        refusedSession(this.#tail.text) ? this.#conn.refused() : new SshError(
          this.#tail.last || this.#conn.lastWords || `ssh exited with code ${code}`,
          this.#host,
        ),
      );
    }
    for (const waiters of [this.#starts, this.#answers, this.#results]) {
      for (const w of waiters.values()) w.reject(error);
      waiters.clear();
    }
    for (const w of this.#outputs.splice(0)) w.reject(error);
    for (const r of this.#running.values()) clearTimeout(r.timer);
    this.#running.clear();
    for (const w of this.#exits.values()) w.resolve({ lost: words });
    this.#exits.clear();
  }

  async #words(code: number): Promise<string> {
    const master = this.#closing && code === 0 ? "" : await this.#conn.settled(1000);
    const why = master || this.#tail.last || `ssh exited with code ${code}`;
    return `the ssh connection to ${this.#host} was lost: ${why}`;
  }
}

function take<T>(map: Map<number, T>, id: number): T | undefined {
  const value = map.get(id);
  map.delete(id);
  return value;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const c = new Uint8Array(a.length + b.length);
  c.set(a);
  c.set(b, a.length);
  return c;
}
