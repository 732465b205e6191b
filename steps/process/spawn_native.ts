/**
 * Starting a step's command as the leader of a new session and process group without an extra
 * program: glibc's `posix_spawn` with `POSIX_SPAWN_SETSID`, called through Deno's FFI; the exit
 * status comes from `waitpid` once `SIGCHLD` says so (`reaper.ts`: no worker thread waits for an
 * exit), the output from `poll` and `read` (`spawn_watch.ts`: on a worker thread once the command
 * has run 20 ms). A command whose output goes to a file ({@linkcode NativeOptions.output}: the
 * child opens it, no wrapper shell) or nowhere holds no worker thread at all.
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
 * {@linkcode NativeSpawner.spawnAsync} calls `posix_spawn` on a worker thread: glibc returns only
 * once the child has exec'd (`CLONE_VFORK`), which on a busy machine waits for a CPU; the engine's
 * one thread goes on with other steps meanwhile. Only for a command that places itself in its
 * cgroup (`self_place.ts`): while the engine has moved into a cgroup for a spawn, it must spawn
 * at once and move back before it does anything else.
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
  /**
   * The same, with `posix_spawn` on a worker thread: the calling thread goes on while the child
   * is being started. {@linkcode NativeOptions.cgroupFd} is not honoured: a command started this
   * way must place itself in its cgroup (`self_place.ts`).
   */
  spawnAsync(argv: readonly string[], options: NativeOptions): Promise<NativeChild>;
  /** Whether {@linkcode NativeOptions.cgroupFd} is honoured here (glibc 2.39 or later). */
  readonly placesInCgroups: boolean;
  /** Opens a directory (close-on-exec) for {@linkcode NativeOptions.cgroupFd}; -1 on failure. */
  openDirectory(path: string): number;
  /** Opens a file for reading (close-on-exec); -1 on failure. */
  openRead(path: string): number;
  /** Reads from the start of `fd` into `buffer` (one `pread`); the bytes read, -1 on failure. */
  readStart(fd: number, buffer: Uint8Array): number;
  /** Closes what {@linkcode NativeSpawner.openDirectory} or `openRead` opened. */
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
   * Append stdout and stderr to this file instead (created readable by its owner only), opened
   * by the child before its program runs: nothing is piped through the engine, so the command
   * outlives it, and its exit is waited for without a worker thread (`reaper.ts`).
   */
  readonly output?: string | undefined;
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
  /** The same on a worker thread: the engine goes on while the child is being started. */
  posix_spawn_async: {
    name: "posix_spawn",
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
    nonblocking: true,
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
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  /** The same with a zero timeout: what is ready now, no worker thread. */
  poll_now: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32" },
  /** The same, for a child known to have exited (`WNOHANG`): no worker thread. */
  waitpid_now: { name: "waitpid", parameters: ["i32", "buffer", "i32"], result: "i32" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

// glibc's values (the same on every Linux architecture).
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
const POSIX_SPAWN_SETCGROUP = 0x100;
const O_RDONLY = 0, O_DIRECTORY = 0o200000, O_CLOEXEC = 0o2000000;
/** `O_WRONLY | O_CREAT | O_APPEND`. */
const O_APPEND_CREATE = 0o1 | 0o100 | 0o2000;
const ENOENT = 2, EACCES = 13, ENOTDIR = 20;

const encoder = new TextEncoder();
/** Room for a `posix_spawn_file_actions_t` (80 bytes on glibc x86-64). */
const ACTIONS_SIZE = 1024;

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

const envStrings = new Map<string, Map<string, CString>>();
/** `NAME=value` as a C string, found without building the string again (steps share most). */
function envString(name: string, value: string): CString {
  let values = envStrings.get(name);
  if (values === undefined) envStrings.set(name, values = new Map());
  let c = values.get(value);
  if (c === undefined) {
    c = cString(`${name}=${value}`);
    if (values.size >= 256) values.clear(); // a value of each step's own (THAW_STEP)
    values.set(value, c);
  }
  return c;
}

/** File actions and where the pid goes, for one spawn; reused once it returned. */
interface Slot {
  readonly actions: Uint8Array;
  /** Over 64 bytes: off V8's heap, where a worker thread may write while the engine goes on. */
  readonly pid: Int32Array;
  readonly pidBytes: Uint8Array;
}
const slots: Slot[] = [];
function takeSlot(): Slot {
  const slot = slots.pop();
  if (slot) return slot;
  const pid = new Int32Array(32);
  return { actions: new Uint8Array(ACTIONS_SIZE), pid, pidBytes: new Uint8Array(pid.buffer) };
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
  readonly #devNull = cString("/dev/null");
  /** Where `pipe2` puts its two fds (read at once). */
  readonly #fds = new Int32Array(2);
  readonly #fdsBytes = new Uint8Array(this.#fds.buffer);

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

  openRead(path: string): number {
    return this.#c.open(cString(path).bytes, O_RDONLY | O_CLOEXEC, 0);
  }

  readStart(fd: number, buffer: Uint8Array): number {
    return Number(this.#c.pread(fd, buffer, BigInt(buffer.length), 0n));
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
    const call = this.#prepare(argv, options);
    const rc = this.#c.posix_spawn(...call.args(this.#attributes(options.cgroupFd)));
    return call.finish(rc);
  }

  spawnAsync(argv: readonly string[], options: NativeOptions): Promise<NativeChild> {
    // Other spawns may be under way on other threads: each has a slot of its own. The attributes
    // without a cgroup are only read.
    const call = this.#prepare(argv, options);
    return this.#c.posix_spawn_async(...call.args(this.#attr)).then((rc) => call.finish(rc));
  }

  /**
   * The arguments of one `posix_spawn` (its file actions filled in), and what to do once it
   * returned: close the pipes' write ends, watch the child.
   */
  #prepare(argv: readonly string[], options: NativeOptions): Prepared {
    const c = this.#c;
    const path = resolveProgram(
      argv[0]!,
      options.env.PATH ?? Deno.env.get("PATH") ?? "",
      options.cwd,
    );
    if (path === undefined) throw spawnError(ENOENT, argv[0]!);
    const slot = takeSlot(), { actions } = slot;
    c.posix_spawn_file_actions_init(actions);
    const devNull = this.#devNull.bytes;
    c.posix_spawn_file_actions_addopen(actions, 0, devNull, O_RDONLY, 0);
    const pipes: number[] = [];
    const fds = this.#fds;
    const sinks: ((chunk: Uint8Array) => void)[] = [];
    const output = options.output === undefined ? undefined : cString(options.output);
    if (output) {
      c.posix_spawn_file_actions_addopen(actions, 1, output.bytes, O_APPEND_CREATE, 0o600);
      c.posix_spawn_file_actions_adddup2(actions, 1, 2);
    }
    for (const [fd, sink] of [[1, options.stdout], [2, options.stderr]] as const) {
      if (output) break;
      if (!sink) {
        c.posix_spawn_file_actions_addopen(actions, fd, devNull, 1, 0);
        continue;
      }
      if (c.pipe2(this.#fdsBytes, O_CLOEXEC) !== 0) {
        pipes.forEach((p) => c.close(p));
        c.posix_spawn_file_actions_destroy(actions);
        slots.push(slot);
        throw new Error("cannot create a pipe for the command's output");
      }
      c.posix_spawn_file_actions_adddup2(actions, fds[1]!, fd);
      pipes.push(fds[0]!, fds[1]!);
      sinks.push(sink);
    }
    const cwd = cString(options.cwd), program = cString(path);
    c.posix_spawn_file_actions_addchdir_np(actions, cwd.bytes);
    // Kept referenced until `finish`: a worker thread may read them meanwhile.
    const args = argv.map(cString);
    const env: CString[] = [];
    for (const k in options.env) env.push(envString(k, options.env[k]!));
    const argvArray = pointers(args), envArray = pointers(env);
    return {
      args: (attr) => [slot.pidBytes, program.bytes, actions, attr, argvArray, envArray] as const,
      finish: (rc) => {
        c.posix_spawn_file_actions_destroy(actions);
        const pid = slot.pid[0]!;
        if (slots.length < 16) slots.push(slot);
        for (let i = 1; i < pipes.length; i += 2) c.close(pipes[i]!);
        const reads = pipes.filter((_, i) => i % 2 === 0);
        if (rc !== 0) {
          reads.forEach((fd) => c.close(fd));
          if (options.output !== undefined) checkOutput(options.output);
          throw spawnError(rc, argv[0]!);
        }
        keep(args, env, cwd, output);
        return new Watch(this.#c, pid, reads.map((fd, i) => new Output(fd, sinks[i]!)));
      },
    };
  }
}

/** A `posix_spawn` ready to call. */
interface Prepared {
  args(
    attr: Uint8Array,
  ): readonly [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  /** Takes `posix_spawn`'s result: the child, watched, or the error it reported. */
  finish(rc: number): NativeChild;
}

/** Throws what keeps `path` from being opened for the output, if that is why a spawn failed. */
function checkOutput(path: string): void {
  try {
    Deno.openSync(path, { append: true, create: true, mode: 0o600 }).close();
  } catch (e) {
    throw new Error(`cannot open the log ${path}: ${(e as Error).message}`);
  }
}

/** Keeps the C strings of a spawn alive until it returned (the cache may drop them meanwhile). */
function keep(..._strings: unknown[]): void {}

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
