/**
 * Starting a step's command as the leader of a new session and process group without an extra
 * program: glibc's `posix_spawn` with `POSIX_SPAWN_SETSID`, called through Deno's FFI; the exit
 * status comes from `waitpid` and the output from `poll` on worker threads, `read` once data is
 * there.
 *
 * Going through `setsid(1)` instead costs a second exec per step (dynamic loading, locale files,
 * a `PATH` search): about half a millisecond of CPU, as much as the step's own `sh -c true`.
 *
 * Used where it can be: Linux with glibc 2.29 or later, and FFI allowed (`--allow-ffi`, given by
 * `-A`). Elsewhere {@linkcode nativeSpawner} answers undefined and the caller starts the command
 * through `setsid`. `THAW_SPAWN=setsid` in the engine's environment turns it off.
 *
 * With glibc 2.39 or later (`posix_spawnattr_setcgroup_np`: `clone3` with `CLONE_INTO_CGROUP`,
 * Linux 5.7), a command can be started inside a step's cgroup ({@linkcode NativeOptions.cgroupFd})
 * instead of the engine moving itself there and back for the spawn (`cgroup.ts`).
 *
 * @module
 */

import type { ExitStatus } from "./process.ts";
import { decode, Output, Watch } from "./spawn_watch.ts";

/** A command started by {@linkcode NativeSpawner.spawn}. */
export interface NativeChild {
  readonly pid: number;
  readonly status: Promise<ExitStatus>;
  /** Settles when stdout and stderr have both ended (at once if neither was read). */
  readonly drained: Promise<void>;
  /** Stops reading stdout and stderr; settles once their pipes are closed. */
  closeOutput(): Promise<void>;
}

/** Starts programs in a new session; see {@linkcode nativeSpawner}. */
export interface NativeSpawner {
  /**
   * Runs `argv` (its first word looked up on `env.PATH`, as a shell would) in `cwd` with exactly
   * `env`, stdin from `/dev/null`, as the leader of a new session and process group. Throws
   * `Deno.errors.NotFound` for a missing program or directory, as `Deno.Command` does.
   */
  spawn(argv: readonly string[], options: NativeOptions): NativeChild;
  /** Whether {@linkcode NativeOptions.cgroupFd} is honoured here (glibc 2.39 or later). */
  readonly placesInCgroups: boolean;
  /** Opens a directory (close-on-exec) for {@linkcode NativeOptions.cgroupFd}; -1 on failure. */
  openDirectory(path: string): number;
  /** Closes what {@linkcode NativeSpawner.openDirectory} opened. */
  closeFd(fd: number): void;
}

/** Where and how to run. */
export interface NativeOptions {
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  /** Receives stdout (to `/dev/null` when absent); what it throws is ignored. */
  readonly stdout?: ((chunk: Uint8Array) => void) | undefined;
  /** Receives stderr (to `/dev/null` when absent); what it throws is ignored. */
  readonly stderr?: ((chunk: Uint8Array) => void) | undefined;
  /**
   * Start the command inside this cgroup (a directory fd from
   * {@linkcode NativeSpawner.openDirectory}); only where {@linkcode NativeSpawner.placesInCgroups}.
   */
  readonly cgroupFd?: number | undefined;
}

const SYMBOLS = {
  posix_spawn: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  posix_spawnattr_setsigdefault: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawnattr_setsigmask: { parameters: ["buffer", "buffer"], result: "i32" },
  /** glibc 2.39: the cgroup (a directory fd) `POSIX_SPAWN_SETCGROUP` starts the child in. */
  posix_spawnattr_setcgroup_np: { parameters: ["buffer", "i32"], result: "i32", optional: true },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_addopen: {
    parameters: ["buffer", "i32", "buffer", "i32", "u32"],
    result: "i32",
  },
  posix_spawn_file_actions_adddup2: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  posix_spawn_file_actions_addchdir_np: { parameters: ["buffer", "buffer"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  /** The same with a zero timeout: what is ready now, no worker thread. */
  poll_now: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32" },
  waitpid: { parameters: ["i32", "buffer", "i32"], result: "i32", nonblocking: true },
  /** The same, for a child known to have exited (`WNOHANG`): no worker thread. */
  waitpid_now: { name: "waitpid", parameters: ["i32", "buffer", "i32"], result: "i32" },
  /** glibc 2.36: an fd that polls readable once the process has exited. */
  pidfd_open: { parameters: ["i32", "u32"], result: "i32", optional: true },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

// glibc's values (the same on every Linux architecture).
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
const POSIX_SPAWN_SETCGROUP = 0x100;
const O_RDONLY = 0, O_DIRECTORY = 0o200000, O_CLOEXEC = 0o2000000;
const ENOENT = 2, EACCES = 13, ENOTDIR = 20;

const encoder = new TextEncoder();

const programs = new Map<string, string>();
/**
 * Where `name` is: itself when it holds a slash (relative to `cwd`), else the first on `path`.
 * What was found is remembered (most steps run the same shell).
 */
function resolveProgram(name: string, path: string, cwd: string): string | undefined {
  const key = `${name}\0${path}\0${name.includes("/") ? cwd : ""}`;
  const known = programs.get(key);
  if (known !== undefined) return known;
  const found = lookUp(name, path, cwd);
  if (found !== undefined) programs.set(key, found);
  return found;
}

function lookUp(name: string, path: string, cwd: string): string | undefined {
  const candidates = name.includes("/")
    ? [name.startsWith("/") ? name : `${cwd}/${name}`]
    : path.split(":").filter(Boolean).map((dir) => `${dir}/${name}`);
  for (const c of candidates) {
    try {
      const info = Deno.statSync(c);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return c;
    } catch { /* not here */ }
  }
  return undefined;
}

function spawnError(errno: number, what: string): Error {
  const message = `Failed to spawn '${what}': ${
    errno === ENOENT || errno === ENOTDIR ? "entity not found" : `errno ${errno}`
  }`;
  if (errno === ENOENT || errno === ENOTDIR) return new Deno.errors.NotFound(message);
  if (errno === EACCES) return new Deno.errors.PermissionDenied(message);
  return new Error(message);
}

/** A C string and where it is (a buffer's memory does not move while it lives). */
interface CString {
  readonly bytes: Uint8Array;
  readonly pointer: bigint;
}

const MAX_CACHED = 4096;
const cStrings = new Map<string, CString>();
/** `s` as a C string; the short ones (environment entries, paths) are encoded once. */
function cString(s: string): CString {
  let c = cStrings.get(s);
  if (c === undefined) {
    const bytes = encoder.encode(s + "\0");
    c = { bytes, pointer: BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes))) };
    if (s.length <= 1024) {
      if (cStrings.size >= MAX_CACHED) cStrings.clear();
      cStrings.set(s, c);
    }
  }
  return c;
}

/** A NULL-terminated array of pointers to `strings` (which must outlive its use). */
function pointers(strings: readonly CString[]): Uint8Array {
  const array = new BigUint64Array(strings.length + 1);
  for (let i = 0; i < strings.length; i++) array[i] = strings[i]!.pointer;
  return new Uint8Array(array.buffer);
}

class Spawner implements NativeSpawner {
  readonly #c: Libc;
  /** Spawn attributes, the same for every command: a new session, default signals, no mask. */
  readonly #attr = new Uint8Array(1024);
  /** The same, and a cgroup to start in (set for each command), where glibc can. */
  readonly #attrInCgroup = new Uint8Array(1024);
  readonly placesInCgroups: boolean;
  /** File actions, filled for each command (spawning is synchronous). */
  readonly #actions = new Uint8Array(1024);
  readonly #devNull = cString("/dev/null");

  constructor(c: Libc) {
    this.#c = c;
    const flags = POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
    if (!this.#initAttr(this.#attr, flags)) throw new Error("this libc has no POSIX_SPAWN_SETSID");
    this.placesInCgroups = c.posix_spawnattr_setcgroup_np !== null &&
      this.#initAttr(this.#attrInCgroup, flags | POSIX_SPAWN_SETCGROUP);
  }

  #initAttr(attr: Uint8Array, flags: number): boolean {
    const c = this.#c;
    c.posix_spawnattr_init(attr);
    c.posix_spawnattr_setsigdefault(attr, new Uint8Array(128).fill(0xff));
    c.posix_spawnattr_setsigmask(attr, new Uint8Array(128));
    return c.posix_spawnattr_setflags(attr, flags) === 0;
  }

  openDirectory(path: string): number {
    return this.#c.open(cString(path).bytes, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  }

  closeFd(fd: number): void {
    this.#c.close(fd);
  }

  /** The attributes for a command started in cgroup `fd`, or in the engine's own. */
  #attributes(fd: number | undefined): Uint8Array {
    if (fd === undefined || !this.placesInCgroups) return this.#attr;
    this.#c.posix_spawnattr_setcgroup_np!(this.#attrInCgroup, fd);
    return this.#attrInCgroup;
  }

  spawn(argv: readonly string[], options: NativeOptions): NativeChild {
    const c = this.#c;
    const path = resolveProgram(
      argv[0]!,
      options.env.PATH ?? Deno.env.get("PATH") ?? "",
      options.cwd,
    );
    if (path === undefined) throw spawnError(ENOENT, argv[0]!);
    const actions = this.#actions;
    c.posix_spawn_file_actions_init(actions);
    const devNull = this.#devNull.bytes;
    c.posix_spawn_file_actions_addopen(actions, 0, devNull, O_RDONLY, 0);
    const pipes: number[] = [];
    const fds = new Int32Array(2);
    const sinks: ((chunk: Uint8Array) => void)[] = [];
    for (const [fd, sink] of [[1, options.stdout], [2, options.stderr]] as const) {
      if (!sink) {
        c.posix_spawn_file_actions_addopen(actions, fd, devNull, 1, 0);
        continue;
      }
      if (c.pipe2(new Uint8Array(fds.buffer), O_CLOEXEC) !== 0) {
        pipes.forEach((p) => c.close(p));
        c.posix_spawn_file_actions_destroy(actions);
        throw new Error("cannot create a pipe for the command's output");
      }
      c.posix_spawn_file_actions_adddup2(actions, fds[1]!, fd);
      pipes.push(fds[0]!, fds[1]!);
      sinks.push(sink);
    }
    const cwd = cString(options.cwd), program = cString(path);
    c.posix_spawn_file_actions_addchdir_np(actions, cwd.bytes);
    const args = argv.map(cString);
    const env: CString[] = [];
    for (const k in options.env) env.push(cString(`${k}=${options.env[k]}`));
    const pid = new Int32Array(1);
    const rc = c.posix_spawn(
      new Uint8Array(pid.buffer),
      program.bytes,
      actions,
      this.#attributes(options.cgroupFd),
      pointers(args),
      pointers(env),
    );
    c.posix_spawn_file_actions_destroy(actions);
    for (let i = 1; i < pipes.length; i += 2) c.close(pipes[i]!);
    const reads = pipes.filter((_, i) => i % 2 === 0);
    if (rc !== 0) {
      reads.forEach((fd) => c.close(fd));
      throw spawnError(rc, argv[0]!);
    }
    return new Watch(this.#c, pid[0]!, reads.map((fd, i) => new Output(fd, sinks[i]!)));
  }
}

export { decode as _decode, resolveProgram as _resolveProgram, Spawner as _Spawner };

let spawner: NativeSpawner | null | undefined;

/** The native spawner, or undefined where it cannot be used (looked up once). */
export function nativeSpawner(): NativeSpawner | undefined {
  if (spawner === undefined) {
    spawner = null;
    try {
      if (
        Deno.build.os === "linux" && Deno.env.get("THAW_SPAWN") !== "setsid" &&
        Deno.permissions.querySync({ name: "ffi" }).state === "granted"
      ) {
        spawner = new Spawner(Deno.dlopen("libc.so.6", SYMBOLS).symbols);
      }
    } catch {
      spawner = null; // musl, an old glibc, no FFI: setsid it is.
    }
  }
  return spawner ?? undefined;
}
