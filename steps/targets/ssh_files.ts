/**
 * Files on a host over the shared ssh connection: what is at a path, and a file written by a
 * stream of bytes (`cat` on the host, fed through the connection in 1 MiB writes from two
 * buffers, with back-pressure: a write waits while one buffer is full and the other still in the
 * pipe to ssh, so a fast source waits for the link). ssh's mux client hands its pipes to the
 * master, which reads them itself: the bytes cross no extra process. When its input ends (close,
 * sync, or the engine gone), the writer flushes the file to the host's disk.
 *
 * A writer holds an exclusive `flock` on its file on the host for as long as it writes: after a
 * `kill -9` of thaw, the `cat` of the dead engine may still be emptying its buffers into the
 * file; a new writer waits for it, then cuts the file at the offset it was asked for, so no byte
 * is written twice.
 *
 * @module
 */

import type { FileStat, FileWriter } from "../kind.ts";
import { lastLine, shq } from "./ssh_args.ts";
import { refusedSession, type SshConnection } from "./ssh_master.ts";
import type { SshPool } from "./ssh_pool.ts";
import { MarkerFilter, nonce } from "./ssh_script.ts";

const decoder = new TextDecoder();
/** Bytes gathered into one write to the pipe that feeds ssh. */
const GATHER = 1 << 20;

/** A file operation on the host failed: the host's words. */
export class RemoteFileError extends Error {
  /** Makes one. */
  constructor(message: string) {
    super(message);
    this.name = "RemoteFileError";
  }
}

/** How a short sh program on the host ended, and what it wrote. */
export interface ShResult {
  readonly code: number;
  readonly stdout: Uint8Array;
  readonly stderr: Uint8Array | string;
}

/** Where a short sh program runs: the host's command loop (`ssh_loop.ts`). */
export interface ShRunner {
  /** The host, as ssh is told (the first words of an error). */
  readonly host: string;
  run(program: string): Promise<ShResult>;
}

/** Runs a short sh program on the host; its stdout, or a {@linkcode RemoteFileError}. */
export async function remoteSh(sh: ShRunner, program: string): Promise<string> {
  const out = await sh.run(program);
  if (out.code !== 0) {
    throw new RemoteFileError(`${sh.host}: ${lastLine(out.stderr) || `exit ${out.code}`}`);
  }
  return decoder.decode(out.stdout);
}

/** What is at `path` on the host (a final symbolic link not followed); null when nothing. */
export async function remoteStat(sh: ShRunner, path: string): Promise<FileStat | null> {
  const p = shq(path);
  const out = await remoteSh(
    sh,
    `if [ -e ${p} ] || [ -L ${p} ]; then stat -c '%F|%s|%Y' -- ${p}; else echo none; fi`,
  );
  const line = out.trim();
  if (line === "none") return null;
  const [kind = "", size = "0", mtime = ""] = line.split("|");
  const type = kind.includes("regular")
    ? "file"
    : kind === "directory"
    ? "directory"
    : kind === "symbolic link"
    ? "symlink"
    : "other";
  const seconds = Number(mtime);
  return { type, size: Number(size), mtimeMs: Number.isFinite(seconds) ? seconds * 1000 : null };
}

/** How {@linkcode openRemoteWrite} opens its file. */
export interface WriteMode {
  /** Cut the file at this byte and write after it (it must hold at least as many). */
  readonly offset?: number | undefined;
  /** Write after whatever the file holds. */
  readonly append?: boolean | undefined;
}

/** The program that takes the file's lock, places it as `mode` asks, says ready, then copies. */
function writeProgram(path: string, mode: WriteMode, id: string): string {
  if (mode.offset !== undefined && !(Number.isSafeInteger(mode.offset) && mode.offset >= 0)) {
    throw new RangeError(`not a file offset: ${mode.offset}`);
  }
  const f = shq(path);
  const lines = [
    `exec 9>>${f} || exit 1`,
    `if command -v flock >/dev/null 2>&1; then flock 9 || exit 1; fi`,
  ];
  if (mode.offset !== undefined) {
    lines.push(
      `n=$(stat -c %s -- ${f}) || exit 1`,
      `[ "$n" -ge ${mode.offset} ] || { printf '%s holds %s bytes, fewer than the %s to continue after\\n' ${f} "$n" ${mode.offset} >&2; exit 1; }`,
      `truncate -s ${mode.offset} -- ${f} || exit 1`,
    );
  } else if (mode.append !== true) lines.push(`truncate -s 0 -- ${f} || exit 1`);
  // Once its input ends, the data is flushed to the host's disk (what a landing needs).
  lines.push(`printf '\\036%s pid %s\\n' ${id} "$$" >&2`, `cat >&9 && sync -- ${f}`);
  return lines.join("\n");
}

/**
 * Opens `path` on the host for writing (see {@linkcode WriteMode}); resolves once the host has
 * the file open and locked, or rejects with the host's words.
 */
export async function openRemoteWrite(
  pool: SshPool,
  path: string,
  mode: WriteMode = {},
): Promise<FileWriter> {
  const open = (m: WriteMode) => pool.session((conn) => RemoteStream.open(conn, path, m));
  let session: RemoteStream | undefined = await open(mode);
  return {
    async write(chunk) {
      session ??= await open({ append: true });
      await session.write(chunk);
    },
    async sync() {
      // A writer flushes its file on the host when its input ends: end it (the next write, if
      // any, opens another that appends).
      if (session !== undefined) await session.close();
      session = undefined;
    },
    async close() {
      if (session !== undefined) await session.close();
      session = undefined;
    },
  };
}

/** One `cat` on the host and the pipe that feeds it. */
class RemoteStream {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #stderr: Promise<string>;
  readonly #path: string;
  readonly #host: string;
  #stage: Uint8Array = new Uint8Array(GATHER);
  /** The other buffer: in the pipe's hands while a write is in flight. */
  #spare: Uint8Array | undefined;
  #staged = 0;
  #inFlight: Promise<void> = Promise.resolve();

  private constructor(
    child: Deno.ChildProcess,
    stderr: Promise<string>,
    path: string,
    host: string,
  ) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#stderr = stderr;
    this.#path = path;
    this.#host = host;
  }

  static async open(conn: SshConnection, path: string, mode: WriteMode): Promise<RemoteStream> {
    const id = nonce();
    const child = await conn.spawn(`exec sh -c ${shq(writeProgram(path, mode, id))}`, {
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    });
    let ready!: () => void;
    const opened = new Promise<void>((r) => ready = r);
    let text = "";
    const filter = new MarkerFilter(id, () => ready(), (c) => text += decoder.decode(c));
    const stderr = child.stderr.pipeTo(
      new WritableStream({ write: (c) => filter.push(c), close: () => filter.end() }),
    ).catch(() => {}).then(() => text);
    const early = await Promise.race([opened.then(() => undefined), child.status]);
    if (early !== undefined) {
      const text = await stderr;
      if (early.code === 255 && refusedSession(text)) throw conn.refused();
      const words = lastLine(text) || conn.lastWords || `exit ${early.code}`;
      throw new RemoteFileError(`${conn.host.ssh}: cannot write ${path}: ${words}`);
    }
    return new RemoteStream(child, stderr, path, conn.host.ssh);
  }

  /**
   * Writes `chunk`: copies it into the buffer being gathered (a write per network chunk costs
   * more than copying it). A full buffer goes to the pipe that feeds ssh while the next one is
   * gathered, so the source and ssh both keep moving; two buffers, reused, never more. Resolves
   * once the chunk is copied: the caller may reuse its memory. Back-pressure comes from waiting
   * for the write before.
   */
  async write(chunk: Uint8Array): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      if (this.#staged === GATHER) await this.flush(false);
      const n = Math.min(GATHER - this.#staged, chunk.length - at);
      this.#stage.set(chunk.subarray(at, at + n), this.#staged);
      this.#staged += n;
      at += n;
    }
  }

  /** Sends what was gathered; with `wait`, resolves once everything sent is in the pipe. */
  async flush(wait = true): Promise<void> {
    await this.#inFlight; // one write at a time: its failure is thrown here
    if (this.#staged > 0) {
      const data = this.#stage.subarray(0, this.#staged);
      // The pipe holds a view of this buffer until its write ends: gather into the other one.
      [this.#stage, this.#spare] = [this.#spare ?? new Uint8Array(GATHER), this.#stage];
      this.#staged = 0;
      this.#inFlight = this.#start(data);
    }
    if (wait) await this.#inFlight;
  }

  /** Starts a write; its failure is thrown by the next write, flush or close. */
  #start(data: Uint8Array): Promise<void> {
    const sending = this.#send(data);
    sending.catch(() => {}); // seen when awaited, never unhandled
    return sending;
  }

  async #send(data: Uint8Array): Promise<void> {
    try {
      await this.#writer.write(data);
    } catch {
      await this.#fail();
    }
  }

  async #fail(): Promise<never> {
    const status = await this.#child.status;
    const words = lastLine(await this.#stderr) || `exit ${status.code}`;
    throw new RemoteFileError(`${this.#host}: writing ${this.#path} failed: ${words}`);
  }

  async close(): Promise<void> {
    await this.flush();
    await this.#writer.close().catch(() => {});
    const status = await this.#child.status;
    if (!status.success) await this.#fail();
  }
}
