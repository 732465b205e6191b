/**
 * The interface between the live engine and the step kinds.
 *
 * A step kind is a function of an explicit context (signal, clock, env, log, and for fetches the
 * link) that reports what it did as data. The engine resolves expressions, picks temporary names
 * and decides when a step may run and how fast a fetch may go; the step kind does the work.
 *
 * @module
 */
import type { Target } from "./kind.ts";
import type { LazyHooks } from "./fetch/lazy/hooks.ts";

/** Time, injected so tests can control it. Milliseconds. */
export interface Clock {
  /** Milliseconds since some fixed origin (monotonic). */
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The longest single timer: a longer one fires at once (the 2^31 ms, 24.8-day timer limit). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The real clock. A sleep longer than {@linkcode MAX_TIMER_MS} waits in several timers. */
export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const end = performance.now() + ms;
      let timer: ReturnType<typeof setTimeout>;
      const arm = (left: number) => {
        timer = setTimeout(() => {
          const rest = end - performance.now();
          if (rest > 0 && left >= MAX_TIMER_MS) return arm(rest);
          signal?.removeEventListener("abort", onAbort);
          resolve();
        }, Math.min(Math.max(left, 0), MAX_TIMER_MS));
      };
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal!.reason);
      };
      arm(ms);
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};

/** What every step kind gets. */
export interface StepContext {
  /** Aborted when the run is cancelled or the step must stop: stop at once, leave nothing half-written. */
  readonly signal: AbortSignal;
  readonly clock: Clock;
  /** The complete environment of commands (process env, runbook env, step env, THAW_*). */
  readonly env: Readonly<Record<string, string>>;
  /**
   * Absolute directory commands run in: the runbook's; absent for a step on a host (`on:`), whose
   * commands run in the login directory there (see `Resolver.cwd`).
   */
  readonly cwd?: string | undefined;
  /** One line for the step's log (not stdout). */
  readonly log: (line: string) => void;
  /** Where the step's processes run and its data lands (default: this machine, `local`). */
  readonly target?: Target;
}

/** A readiness probe, resolved. Times in milliseconds. */
export interface ProbeSpec {
  readonly kind: "http" | "tcp" | "run";
  /** URL (`http`), `host:port` (`tcp`) or a shell command (`run`). */
  readonly target: string;
  readonly timeoutMs: number;
  readonly intervalMs: number;
}

/** A run step, resolved: its command already has every expression substituted and quoted. */
export interface RunSpec {
  readonly command: string;
  /** `bash` by default; `sh` or another shell on PATH. Run as `SHELL -c COMMAND`. */
  readonly shell: string;
  /** Kills the whole process group after this long (per attempt). */
  readonly timeoutMs?: number;
  /** Attempts after the first, with exponential backoff. */
  readonly retries: number;
  /** First backoff delay; doubled after each failed attempt (default 1000). */
  readonly backoffMs?: number;
  /** Keeps running once `ready` passes. */
  readonly background: boolean;
  readonly ready?: ProbeSpec;
  /** Run the command and `run:` probes as this system user (`user:`). */
  readonly user?: string;
}

/** A process the engine started and must be able to stop, even from another engine later. */
export interface Spawned {
  readonly pid: number;
  /** The process group (the process leads its own group): kill `-pgid` to stop it all. */
  readonly pgid: number;
}

/** A background service left running by a run step. */
export interface Service extends Spawned {
  /** Stops the whole process group: SIGTERM, then SIGKILL after a grace period. */
  stop(graceMs?: number): Promise<void>;
  /** Settles when the process exits. */
  readonly exited: Promise<number>;
  /**
   * Settles, with why (`exit code 1 after it was ready: <its last line>`), when the service
   * exits on its own; never once `stop()` was called.
   */
  readonly lost: Promise<string>;
}

/** What a run step did. */
export type RunEffect =
  | { readonly ok: true; readonly attempts: number; readonly service?: Service }
  | {
    readonly ok: false;
    readonly attempts: number;
    /** For the SRE: `exit code 3`, `timed out after 10s (process group killed)`, ... */
    readonly reason: string;
    readonly exitCode?: number;
  };

/** What the engine gives a run step beyond the common context. */
export interface RunContext extends StepContext {
  /** Called for each process started, so the store can record it (to clean up after a crash). */
  readonly onSpawn?: (p: Spawned) => void;
  /** Where the command's stdout and stderr go (default: discarded). */
  readonly output?: (chunk: Uint8Array) => void;
  /**
   * The step's log file: a `background` service appends its output there itself (not through
   * `output`), so it keeps working once the engine has exited.
   */
  readonly logFile?: string;
  /** A drill: a `http`/`tcp` ready probe that passes before the step starts fails it. */
  readonly drill?: boolean;
}

/** A fetch source, resolved. */
export type SourceSpec =
  /** `http(s)://...`, `file://...` or a plain absolute path. */
  | { readonly kind: "location"; readonly location: string }
  /** A shell command that writes under `$THAW_TO`. */
  | {
    readonly kind: "run";
    readonly command: string;
    readonly shell: string;
    /** Run as this system user (the step's `user:`). */
    readonly user?: string;
  };

/** A fetch step, resolved. */
export interface FetchSpec {
  /** Tried in order: the next one when one fails (backup tiers). */
  readonly sources: readonly SourceSpec[];
  /** Absolute destination. Holds either nothing or the complete, checked data. */
  readonly to: string;
  /**
   * Absolute temporary path beside `to` (same directory, so the rename is atomic). If it exists
   * when the fetch starts, it holds bytes of an interrupted attempt: continue after them.
   */
  readonly tmp: string;
  /** Expected size, bytes, when known. */
  readonly size?: number;
  /** Lower-case hex; checked while streaming, before the rename. */
  readonly sha256?: string;
  /** Retries of each source after its first attempt, with exponential backoff. */
  readonly retries: number;
  readonly backoffMs?: number;
  /** Per-attempt timeout. */
  readonly timeoutMs?: number;
  /** The system user that owns what the fetch writes at `to` (the step's `user:`). */
  readonly user?: string;
  /** A lazy fetch (revision 5): attached at `to`, streamed home (`fetch/lazy/execute.ts`). */
  readonly lazy?: { readonly writable: boolean };
}

/** The fetch's share of the shared link. */
export interface Link {
  /**
   * Waits until `bytes` more may cross the link (pacing to the share the scheduler gave this
   * fetch; blocks while the share is 0). Call after reading each chunk, before the next read.
   */
  take(bytes: number, signal: AbortSignal): Promise<void>;
}

/** A link without limit. */
export const unlimitedLink: Link = { take: () => Promise.resolve() };

/** What the engine gives a fetch beyond the common context. */
export interface FetchContext extends StepContext {
  readonly link: Link;
  /**
   * Progress: bytes of the data set now under the temporary name (or under `$THAW_TO` for a
   * `run:` source), and the total when known. Cheap; call per chunk.
   */
  readonly progress: (bytes: number, total?: number) => void;
  readonly onSpawn?: (p: Spawned) => void;
  /** A lazy fetch's side of the engine (attach, share, demand); see `fetch/lazy/hooks.ts`. */
  readonly lazy?: LazyHooks;
}

/** What a fetch did. */
export type FetchEffect =
  | {
    readonly ok: true;
    /** Size of the data set at `to`. */
    readonly bytes: number;
    /** Bytes that crossed the link in this call (a resumed fetch transfers less than `bytes`). */
    readonly transferred: number;
    /** Index of the source that delivered it. */
    readonly source: number;
    /** What was at `to` before and was replaced at the final rename (thaw's own directory). */
    readonly replaced?: "file" | "directory";
  }
  | {
    readonly ok: false;
    /** For the SRE, one line per source tried: `http://…/db.dump: sha256 mismatch (got …)`. */
    readonly reason: string;
    readonly transferred: number;
  };
