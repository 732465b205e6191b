/**
 * The temporary file of a streamed fetch that lands on a {@linkcode Target} other than this
 * machine (a host over ssh, `on:`): the same contract as {@linkcode TmpFile}, through the target's
 * file operations only (`stat`, `mkdir`, `remove`, `openWrite` at an offset, `sha256`). With
 * `place.ts` (checks of `to`, rename, the mark of a directory thaw placed) it is the one way a
 * fetch lands on a host.
 *
 * - Continues after the bytes an interrupted attempt (or a killed engine) left under the
 *   temporary name on the target: `openWrite` cuts the file at the size it had, so nothing is
 *   written twice.
 * - Hashes the bytes as they stream when it saw them all (a fresh start, or a retry of this same
 *   call); after bytes it did not see (a resumed run), the digest is computed on the target
 *   (`sha256sum` on a host) once the data is complete.
 * - The target's writer takes each chunk before the next is read (an ssh host's gathers them
 *   into large writes, one on its way while the next is gathered, and applies back-pressure).
 * - At the end: flushed to the target's disk (once), then its size checked on the target against
 *   the bytes written (a byte lost on the way, or another writer, fails the attempt).
 *
 * @module
 */

import type { Hash } from "node:crypto";
import { newSha256 } from "./sha256.ts";
import type { FileWriter, Target } from "../kind.ts";
import type { Attempt } from "./attempt.ts";
import type { Sink } from "./sink.ts";

/** A temporary file on a target, filled by a streamed transfer. */
export class TargetTmpFile implements Sink {
  readonly #attempt: Attempt;
  readonly #target: Target;
  #writer: FileWriter;
  /** The digest of every byte under tmp, when this process saw them all. */
  #hash: Hash | undefined;
  #written = 0;
  #accepted = 0;
  #error: unknown;
  #closed = false;
  /** Whether the data continues bytes of an earlier attempt or run. */
  resumed = false;
  /** The size of the whole data set when known, for progress. */
  total: number | undefined;

  private constructor(attempt: Attempt, target: Target, writer: FileWriter) {
    this.#attempt = attempt;
    this.#target = target;
    this.#writer = writer;
    this.total = attempt.spec.size;
  }

  /**
   * Opens `spec.tmp` on `target` (creating its directory). With `resume`, continues after the
   * bytes already there, unless there are more than `spec.size`; else starts empty. Anything but
   * a file there (a directory a `run:` source left) is removed. Its directory exists (the fetch
   * made it).
   */
  static async open(attempt: Attempt, target: Target, resume: boolean): Promise<TargetTmpFile> {
    const { spec, ctx } = attempt;
    const old = await target.stat(spec.tmp);
    if (old !== null && old.type !== "file") await target.remove(spec.tmp);
    let offset = resume && old?.type === "file" ? old.size : 0;
    if (offset > 0 && spec.size !== undefined && offset > spec.size) {
      ctx.log(
        `${target.name}:${spec.tmp} holds ${offset} bytes, more than the ${spec.size} ` +
          `expected: restart`,
      );
      offset = 0;
    }
    const writer = await target.openWrite(spec.tmp, { offset });
    const sink = new TargetTmpFile(attempt, target, writer);
    const cached = attempt.call.prefix;
    attempt.call.prefix = undefined;
    if (spec.sha256 !== undefined) {
      if (offset === 0) sink.#hash = newSha256();
      else if (cached?.bytes === offset && cached.mtime === (old?.mtimeMs ?? -1)) {
        sink.#hash = cached.hash.copy(); // this call wrote them: no need to read them again
      }
    }
    sink.#written = sink.#accepted = offset;
    sink.resumed = offset > 0;
    ctx.progress(offset, sink.total);
    return sink;
  }

  /** Bytes of the data set received so far (written, or about to be): where to continue. */
  get bytes(): number {
    return this.#accepted;
  }

  /**
   * Appends a chunk that crossed the link. The target's writer takes it (copies it into its
   * buffer, or writes it) before this resolves, so the caller may reuse the chunk's memory; the
   * writer keeps a write on its way to the target while the next chunks are received.
   */
  async push(chunk: Uint8Array): Promise<void> {
    if (this.#error !== undefined) throw this.#error;
    this.#hash?.update(chunk);
    this.#accepted += chunk.length;
    this.#attempt.call.transferred += chunk.length;
    try {
      await this.#writer.write(chunk);
    } catch (error) {
      this.#error ??= error;
      throw error;
    }
    this.#written += chunk.length;
    this.#attempt.ctx.progress(this.#written, this.total);
  }

  /** Waits until everything received is written; throws the write error if one happened. */
  drain(): Promise<void> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    this.#attempt.ctx.progress(this.#written, this.total);
    return Promise.resolve();
  }

  /** Empties the file to start over from byte 0. */
  async reset(): Promise<void> {
    await this.drain();
    await this.#writer.close();
    this.#writer = await this.#target.openWrite(this.#attempt.spec.tmp, { offset: 0 });
    this.#hash = this.#attempt.spec.sha256 === undefined ? undefined : newSha256();
    this.#written = this.#accepted = 0;
    this.resumed = false;
    this.#attempt.ctx.progress(0, this.total);
  }

  /**
   * Writes what is left, flushes it to the target's disk and closes: the size, and the digest
   * when `spec.sha256` is set (computed on the target when this process did not see every byte).
   */
  async finish(): Promise<{ bytes: number; digest?: string }> {
    await this.drain();
    await this.#writer.sync();
    this.#closed = true;
    await this.#writer.close();
    const { spec, timer, signal } = this.#attempt;
    // What the target holds, not what was sent: a byte lost on the way fails here.
    const info = await this.#target.stat(spec.tmp);
    if (info?.type !== "file" || info.size !== this.#written) {
      const held = info === null
        ? "nothing"
        : info.type !== "file"
        ? `a ${info.type}`
        : `${info.size} bytes`;
      throw new Error(
        `${this.#target.name}:${spec.tmp} holds ${held} after ${this.#written} bytes were ` +
          `written to it: something else writes there, or the disk dropped them`,
      );
    }
    let digest = this.#hash?.digest("hex");
    if (digest === undefined && spec.sha256 !== undefined) {
      timer.pause(); // a read on the target: not the transfer the timeout is for
      try {
        digest = await this.#target.sha256(spec.tmp, signal);
      } finally {
        timer.resume();
      }
    }
    return { bytes: this.#written, ...(digest !== undefined ? { digest } : {}) };
  }

  /** Writes what it can of what was received (so a later run continues after it) and closes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.drain();
      await this.#writer.close();
      await this.#remember();
    } catch {
      // Closing after a failure: the bytes written so far stay, the data after them is lost.
      await this.#writer.close().catch(() => {});
    }
  }

  /** Leaves the digest state of the bytes written for the next attempt of this call. */
  async #remember(): Promise<void> {
    if (this.#hash === undefined || this.#written !== this.#accepted) return;
    const info = await this.#target.stat(this.#attempt.spec.tmp);
    if (info?.type !== "file" || info.size !== this.#written) return;
    const hash = this.#hash.copy();
    this.#attempt.call.prefix = { bytes: this.#written, mtime: info.mtimeMs ?? -1, hash };
  }
}
