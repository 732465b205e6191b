/**
 * The temporary file a streamed fetch writes: it continues after the bytes an interrupted attempt
 * left (hashing them first, by a local read), hashes every chunk as it arrives, and writes behind
 * the transfer through a single file handle: while one write is on its way to the disk, the next
 * chunks are gathered and go down in one larger write, so the disk never holds up the network
 * for long (at most {@linkcode MAX_STAGED} bytes wait in memory).
 *
 * @module
 */

import type { Hash } from "node:crypto";
import { newSha256, sha256Ready } from "./sha256.ts";
import { ensureParent, lstatOrNull, removeQuietly } from "./atomic.ts";
import type { Attempt } from "./attempt.ts";
import { remoteTargetOf } from "./place.ts";
import { TargetTmpFile } from "./target_sink.ts";

/**
 * The temporary file a streamed transfer fills: {@linkcode TmpFile} on this machine,
 * {@linkcode TargetTmpFile} on another target (a host, `on:`).
 */
export interface Sink {
  /** Bytes of the data set received so far: where to continue. */
  readonly bytes: number;
  /** Whether the data continues bytes of an earlier attempt or run. */
  resumed: boolean;
  /** The size of the whole data set when known, for progress. */
  total: number | undefined;
  /**
   * Appends a chunk that crossed the link. The sink copies or writes it before the promise
   * resolves: the caller may then reuse its memory (a source reads into one buffer, over and over).
   */
  push(chunk: Uint8Array): Promise<void>;
  /** Waits until everything received is written; throws the write error if one happened. */
  drain(): Promise<void>;
  /** Empties the file to start over from byte 0. */
  reset(): Promise<void>;
  /** Writes what is left, flushes it and closes: the size and the digest, if hashed. */
  finish(): Promise<{ bytes: number; digest?: string }>;
  /** Writes what it can of what was received (a later run continues after it) and closes. */
  close(): Promise<void>;
}

/**
 * Opens `spec.tmp` of the attempt's fetch where its data lands: this machine, or the target of
 * `attempt.ctx` (see {@linkcode TmpFile.open}).
 */
export async function openSink(attempt: Attempt, resume: boolean): Promise<Sink> {
  await sha256Ready();
  const target = remoteTargetOf(attempt.ctx);
  return await (target === undefined
    ? TmpFile.open(attempt, resume)
    : TargetTmpFile.open(attempt, target, resume));
}

/** Bytes received but not yet written beyond which receiving waits for the disk. */
export const MAX_STAGED = 8 << 20;
const READ_SIZE = 1 << 20;
/** Bytes gathered into one write, at most (plus one chunk): larger writes were slower. */
const WRITE_SIZE = 1 << 20;

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await file.write(data.subarray(offset));
}

/** A temporary file being filled by a streamed transfer. */
export class TmpFile implements Sink {
  readonly #attempt: Attempt;
  readonly #file: Deno.FsFile;
  #hash: Hash | undefined;
  #written = 0;
  #accepted = 0;
  #staged: Uint8Array[] = [];
  #stagedBytes = 0;
  #buffer: Uint8Array | undefined;
  #pumping: Promise<void> | undefined;
  #writing: Promise<void> | undefined;
  #error: unknown;
  #closed = false;
  /** Whether the data continues bytes of an earlier attempt or run. */
  resumed = false;
  /** The size of the whole data set when known, for progress. */
  total: number | undefined;

  private constructor(attempt: Attempt, file: Deno.FsFile) {
    this.#attempt = attempt;
    this.#file = file;
    this.#hash = attempt.spec.sha256 === undefined ? undefined : newSha256();
    this.total = attempt.spec.size;
  }

  /**
   * Opens `spec.tmp` (creating its directory). With `resume`, continues after the bytes already
   * there (hashed first when `spec.sha256` is set), unless there are more than `spec.size`; else
   * starts empty. Anything but a file there (a directory a `run:` source left) is removed.
   */
  static async open(attempt: Attempt, resume: boolean): Promise<TmpFile> {
    const { spec, ctx } = attempt;
    const old = await lstatOrNull(spec.tmp);
    if (old !== null && !old.isFile) await removeQuietly(spec.tmp);
    else if (old === null) await ensureParent(spec.tmp);
    let keep = resume && old !== null && old.isFile && old.size > 0;
    if (keep && spec.size !== undefined && old!.size > spec.size) {
      ctx.log(`${spec.tmp} holds ${old!.size} bytes, more than the ${spec.size} expected: restart`);
      keep = false;
    }
    const file = await Deno.open(spec.tmp, {
      read: true,
      write: true,
      create: true,
      truncate: !keep,
    });
    const sink = new TmpFile(attempt, file);
    const cached = attempt.call.prefix;
    attempt.call.prefix = undefined;
    const mtime = old?.mtime?.getTime() ?? -1;
    try {
      if (keep && cached?.bytes === old!.size && cached.mtime === mtime && sink.#hash) {
        sink.#hash = cached.hash.copy(); // what the last attempt left: no need to read it again
        await sink.#readPrefix(false);
      } else if (keep) {
        attempt.timer.pause(); // a local read: not the transfer the timeout is for
        try {
          await sink.#readPrefix(sink.#hash !== undefined);
        } finally {
          attempt.timer.resume();
        }
      }
    } catch (error) {
      file.close();
      throw error;
    }
    return sink;
  }

  async #readPrefix(hashing: boolean): Promise<void> {
    let bytes = 0;
    if (!hashing || this.#hash === undefined) {
      bytes = await this.#file.seek(0, Deno.SeekMode.End);
    } else {
      const buffer = new Uint8Array(READ_SIZE);
      for (;;) {
        this.#attempt.signal.throwIfAborted();
        const n = await this.#file.read(buffer);
        if (n === null) break;
        this.#hash.update(buffer.subarray(0, n));
        bytes += n;
      }
    }
    this.#written = this.#accepted = bytes;
    this.resumed = bytes > 0;
    this.#attempt.ctx.progress(bytes, this.total);
  }

  /** Bytes of the data set received so far (written, or about to be): where to continue. */
  get bytes(): number {
    return this.#accepted;
  }

  /**
   * Appends a chunk that crossed the link (the caller took it on the link already). The sink keeps
   * a copy: the caller may reuse the chunk's memory once this resolves.
   */
  async push(chunk: Uint8Array): Promise<void> {
    if (this.#error !== undefined) throw this.#error;
    this.#hash?.update(chunk);
    this.#accepted += chunk.length;
    this.#attempt.call.transferred += chunk.length;
    this.#staged.push(chunk.slice());
    this.#stagedBytes += chunk.length;
    if (this.#pumping === undefined) this.#pumping = this.#pump();
    else if (this.#stagedBytes >= MAX_STAGED) await this.#writing;
    this.#attempt.ctx.progress(this.#written, this.total);
  }

  async #pump(): Promise<void> {
    try {
      while (this.#stagedBytes > 0) {
        const data = this.#gather();
        this.#writing = writeAll(this.#file, data);
        await this.#writing;
        this.#written += data.length;
      }
    } catch (error) {
      this.#error ??= error;
      this.#staged = [];
      this.#stagedBytes = 0;
    } finally {
      this.#writing = undefined;
      this.#pumping = undefined;
    }
  }

  /**
   * The next staged chunks, about {@linkcode WRITE_SIZE} bytes of them, as one array (copied into
   * a reused buffer when there are several).
   */
  #gather(): Uint8Array {
    const first = this.#staged[0]!;
    let count = 1;
    let size = first.length;
    while (size < WRITE_SIZE && count < this.#staged.length) size += this.#staged[count++]!.length;
    const chunks = this.#staged.splice(0, count);
    this.#stagedBytes -= size;
    if (count === 1) return first;
    if (this.#buffer === undefined || this.#buffer.length < size) {
      this.#buffer = new Uint8Array(Math.max(size, 2 * WRITE_SIZE));
    }
    let offset = 0;
    for (const chunk of chunks) {
      this.#buffer.set(chunk, offset);
      offset += chunk.length;
    }
    return this.#buffer.subarray(0, size);
  }

  /** Waits until everything received is written; throws the write error if one happened. */
  async drain(): Promise<void> {
    while (this.#pumping !== undefined) await this.#pumping;
    if (this.#error !== undefined) throw this.#error;
    this.#attempt.ctx.progress(this.#written, this.total);
  }

  /** Empties the file to start over from byte 0. */
  async reset(): Promise<void> {
    await this.drain();
    await this.#file.truncate(0);
    await this.#file.seek(0, Deno.SeekMode.Start);
    if (this.#hash !== undefined) this.#hash = newSha256();
    this.#written = this.#accepted = 0;
    this.resumed = false;
    this.#attempt.ctx.progress(0, this.total);
  }

  /** Leaves the digest state of the bytes written for the next attempt of this call. */
  async #remember(): Promise<void> {
    if (this.#hash === undefined || this.#error !== undefined) return;
    if (this.#written !== this.#accepted) return;
    const info = await this.#file.stat();
    if (info.size !== this.#written) return;
    const mtime = info.mtime?.getTime() ?? -1;
    this.#attempt.call.prefix = { bytes: this.#written, mtime, hash: this.#hash.copy() };
  }

  /** Writes what is left, flushes it to disk and closes: the size and the digest, if hashed. */
  async finish(): Promise<{ bytes: number; digest?: string }> {
    await this.drain();
    await this.#file.syncData();
    this.#closed = true;
    this.#file.close();
    return { bytes: this.#written, digest: this.#hash?.digest("hex") };
  }

  /** Writes what it can of what was received (so a later run continues after it) and closes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.drain();
      await this.#remember();
    } catch {
      // Closing after a failure: the bytes written so far stay, the data after them is lost.
    }
    this.#file.close();
  }
}

/** The sha256 of a local file (lower-case hex), read in large chunks; stops when `signal` aborts. */
export async function hashFile(path: string, signal: AbortSignal): Promise<string> {
  await sha256Ready();
  using file = await Deno.open(path, { read: true });
  const hash = newSha256();
  const buffer = new Uint8Array(READ_SIZE);
  for (;;) {
    signal.throwIfAborted();
    const n = await file.read(buffer);
    if (n === null) return hash.digest("hex");
    hash.update(buffer.subarray(0, n));
  }
}
