/**
 * The `local` target: this machine. Processes start through `../process/process.ts` (a new
 * process group, posix_spawn where available, cgroups, `user:`); files are Deno's. Registers
 * itself as `local`, the way a remote target (`ssh.ts`) registers under its host's name.
 *
 * @module
 */
import { newSha256, sha256Ready } from "../fetch/sha256.ts";
import { groupAlive, killGroup, spawnGroupAsync } from "../process/process.ts";
import { type FileStat, type FileWriter, registerTarget, type Target } from "../kind.ts";

/** Bytes per read when hashing a file. */
const HASH_CHUNK = 1 << 20;

function statOf(info: Deno.FileInfo): FileStat {
  return {
    type: info.isFile
      ? "file"
      : info.isDirectory
      ? "directory"
      : info.isSymlink
      ? "symlink"
      : "other",
    size: info.size,
    mtimeMs: info.mtime?.getTime() ?? null,
  };
}

function writer(file: Deno.FsFile): FileWriter {
  return {
    async write(chunk: Uint8Array): Promise<void> {
      let offset = 0;
      while (offset < chunk.length) offset += await file.write(chunk.subarray(offset));
    },
    sync: () => file.sync(),
    close: () => Promise.resolve(file.close()),
  };
}

/**
 * This machine as a {@linkcode Target}.
 *
 * @example Land a file, then move it into place
 * ```ts
 * import assert from "node:assert/strict";
 * import { localTarget } from "./local.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await localTarget.mkdir(`${dir}/a/b`);
 * const w = await localTarget.openWrite(`${dir}/a/b/.x.part`);
 * await w.write(new TextEncoder().encode("hello"));
 * await w.close();
 * await localTarget.rename(`${dir}/a/b/.x.part`, `${dir}/a/b/x`);
 * assert.equal((await localTarget.stat(`${dir}/a/b/x`))?.size, 5);
 * assert.equal(
 *   await localTarget.sha256(`${dir}/a/b/x`),
 *   "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
 * );
 * await localTarget.remove(dir);
 * assert.equal(await localTarget.stat(dir), null);
 * ```
 */
export const localTarget: Target = {
  name: "local",

  spawn(cmd) {
    // posix_spawn on a worker thread where it can be: the engine goes on meanwhile.
    return spawnGroupAsync(cmd.shell, cmd.command, {
      cwd: cmd.cwd ?? Deno.cwd(),
      env: cmd.env,
      user: cmd.user,
      log: cmd.log,
      ...(cmd.stdout ? { stdout: cmd.stdout } : {}),
      ...(cmd.stderr ? { stderr: cmd.stderr } : {}),
    });
  },

  killGroup: (pgid, graceMs) => killGroup(pgid, graceMs),

  groupAlive: (pgid) => Promise.resolve(groupAlive(pgid)),

  async stat(path) {
    try {
      return statOf(await Deno.lstat(path));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  },

  async openWrite(path, options = {}) {
    const at = options.offset;
    const file = await Deno.open(path, {
      write: true,
      create: true,
      append: options.append === true,
      truncate: at === undefined && options.append !== true,
    });
    try {
      if (at !== undefined) {
        await file.truncate(at);
        await file.seek(at, Deno.SeekMode.Start);
      }
    } catch (error) {
      file.close();
      throw error;
    }
    return writer(file);
  },

  rename: (from, to) => Deno.rename(from, to),

  async remove(path) {
    try {
      await Deno.remove(path, { recursive: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  },

  mkdir: (path) => Deno.mkdir(path, { recursive: true }),

  async sha256(path, signal) {
    using file = await Deno.open(path, { read: true });
    await sha256Ready();
    const hash = newSha256();
    const buffer = new Uint8Array(HASH_CHUNK);
    for (;;) {
      signal?.throwIfAborted();
      const n = await file.read(buffer);
      if (n === null) return hash.digest("hex");
      hash.update(buffer.subarray(0, n));
    }
  },
};

registerTarget(localTarget);
