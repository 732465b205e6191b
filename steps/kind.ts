/**
 * The plug-in interfaces of thaw and their registries, in the spirit of Kysely's `Dialect`:
 *
 * - a {@linkcode StepKind}: what a step does — the keys it adds to a runbook step (a zod schema
 *   fragment, merged into the runbook schema), its checks and model (positions kept for errors),
 *   its spec for one run (expressions resolved), its figures for the plan, and its execution, a
 *   function of an explicit context that reports effects as data;
 * - a {@linkcode Source}: where a fetch's bytes come from (`http(s)://`, a path, `run:`, …);
 * - a {@linkcode Target}: where a step's processes run and its data lands (this machine, or a host
 *   over OpenSSH).
 *
 * The built-ins (`run` and `fetch`; `http`, `file` and `run` sources; the `local` target) register
 * themselves with the same functions a third party calls (see `builtin.ts`; importing `mod.ts`,
 * this directory's or the top one, or the runbook schema registers them). Registering returns a
 * {@linkcode Registration}: dispose of it to take the plug-in out again (tests).
 *
 * @example A source of your own
 * ```ts
 * import assert from "node:assert/strict";
 * import { registerSource, sourceFor, streamedSource } from "./mod.ts";
 *
 * using _toy = registerSource(streamedSource({
 *   key: "toy",
 *   label: "toy://",
 *   schemes: ["toy"],
 *   open: (from) => Promise.resolve({ body: [new TextEncoder().encode(from.slice(6))] }),
 * }));
 * assert.equal(sourceFor("toy://hello")?.key, "toy");
 * assert.equal(sourceFor("https://example.org/x")?.key, "http");
 * ```
 *
 * @module
 */
import type { z } from "zod";
import type { Template } from "../engine/runbook/expressions.ts";
import type { StepBase } from "../engine/runbook/model.ts";
import type { Path } from "../engine/runbook/source.ts";
import { type Registration, Registry, RegistryError } from "./registry.ts";
import type { Attempt, Outcome } from "./fetch/attempt.ts";
import type { ExitStatus, KillOutcome } from "./process/process.ts";
import type { FetchContext, RunContext, Service, Spawned } from "./types.ts";

export type { Path } from "../engine/runbook/source.ts";
export { type Registration, RegistryError } from "./registry.ts";

// ---------------------------------------------------------------------------------------------
// Step kinds

/** What every typed step of a kind has: the common fields, and the kind's key. */
export type KindStep = StepBase & { readonly kind: string };

/** A step as written, once the schema accepted its shape (keys of every kind, unparsed). */
export type RawStep = Readonly<Record<string, unknown>>;

/** What a kind's {@linkcode StepKind.check} reports through. Paths are relative to the step. */
export interface CheckContext {
  /** `step "restore-db"`, for messages. */
  readonly name: string;
  /** Reports a problem at `path` (its key, or its value). */
  problem(path: Path, at: "key" | "value", message: string): void;
  /**
   * Checks the expressions in `text` (if it is a string): syntax, and that every reference
   * exists. `steps`: whether `${{ steps.ID.to }}` may be used there (commands only).
   */
  expression(path: Path, text: unknown, options: { readonly steps: boolean }): void;
}

/** What a kind's {@linkcode StepKind.model} builds with. Paths are relative to the step. */
export interface ModelContext {
  /** A text as a template (its expressions parsed; they were checked already). */
  template(text: string | number | boolean): Template;
  /** Seconds; a value out of range is reported at `path` and gives `undefined`. */
  duration(path: Path, text: string | undefined): number | undefined;
  /** Bytes; as {@linkcode ModelContext.duration}. */
  size(path: Path, text: string | undefined): number | undefined;
  /** Bytes per second; as {@linkcode ModelContext.duration}. */
  bandwidth(path: Path, text: string | undefined): number | undefined;
}

/** What a kind's {@linkcode StepKind.spec} resolves with, for one run (the `Resolver`). */
export interface SpecContext {
  /** The run id. */
  readonly run: string;
  /** A template as plain text (a path, a URL). */
  text(t: Template): string;
  /** A template as a shell command: every value quoted for where it stands. */
  command(t: Template): string;
  /** A path resolved against the runbook's directory. */
  path(p: string): string;
}

/** A template of a step and where it is written (relative to the step), for messages. */
export interface Located {
  /** Where it is written, relative to the step: `["fetch", "to"]`. */
  readonly path: Path;
  /** The template. */
  readonly template: Template;
}

/** What the plan needs of a step: the time it takes, or the bytes it moves. */
export type Figures =
  /** Takes time on a run slot; `seconds` when estimated. */
  | { readonly type: "time"; readonly seconds?: number | undefined }
  /** Moves bytes, over the shared link unless `local`. */
  | {
    readonly type: "data";
    /** The size of the data set, when known. */
    readonly bytes?: number | undefined;
    /** How fast the source delivers on its own, bytes per second. */
    readonly rate?: number | undefined;
    /** Crosses no link: not paced, not in the link's bounds. */
    readonly local: boolean;
    /**
     * Revision 5: attached first (the steps that need it start then), read on demand, the
     * rest streamed over the link as a prefetch; done (home) when every byte is local.
     */
    readonly lazy?: boolean;
  };

/**
 * What every effect says: done, or why not; and what the engine handles the same way for any
 * kind: the bytes a step left at its destination, a service that outlives it.
 */
export interface StepEffect {
  /** Whether the step is done. */
  readonly ok: boolean;
  /** One line for the SRE when not ok. */
  readonly reason?: string;
  /** Bytes of the data set the step left at its destination (a fetch), for the report. */
  readonly bytes?: number;
  /** A process group that outlives the step (a background service), for the engine to watch. */
  readonly service?: Service;
}

/**
 * What the engine gives any step's execution: the common context (signal, clock, env, cwd, log,
 * target) and what kinds may use of it (run steps: output, log file, drill; fetches: the link and
 * progress, defaulting to no limit and no report).
 */
export interface ExecuteContext
  extends RunContext, Partial<Pick<FetchContext, "link" | "progress" | "lazy">> {}

/**
 * A kind of step. `S` is its typed step (the model), `Spec` what one run of it does (expressions
 * resolved), `Effect` what it did.
 */
export interface StepKind<
  S extends KindStep = KindStep,
  Spec = unknown,
  Effect extends StepEffect = StepEffect,
> {
  /** The step key that makes a step of this kind, and the kind's name: `run`, `fetch`. */
  readonly key: string;
  /** What such a step is, for messages: `a command`, `a data set to bring home`. */
  readonly summary: string;
  /**
   * The keys this kind adds to a step, merged into the runbook schema (and so into `thaw
   * schema`); it holds `key`. The other keys apply to steps of this kind only.
   */
  readonly schema: Readonly<Record<string, z.ZodType>>;
  /**
   * The absolute path a step of this kind leaves its data at, which `${{ steps.ID.to }}` names
   * in other steps' commands; kinds whose steps leave none have no such method.
   */
  destination?(step: S, ctx: SpecContext): string;
  /**
   * Checks a step of this kind that needs more than its shape (a key that needs another, a probe
   * with exactly one target) and names the strings that may hold expressions. The step may hold
   * values the schema rejected (missing, or stand-ins): check the type of what you read.
   */
  check(raw: RawStep, ctx: CheckContext): void;
  /** The kind's fields of the typed step (units parsed, defaults applied). */
  model(raw: RawStep, ctx: ModelContext): Omit<S, keyof StepBase>;
  /** Every template of the step's kind fields and where it is written (the env check). */
  templates(step: S): Iterable<Located>;
  /** What one run of the step does, its expressions resolved. */
  spec(step: S, ctx: SpecContext): Spec;
  /** Its figures for the plan. */
  figures(step: S): Figures;
  /** Does the work. Never throws for a failed step: the effect says what happened. */
  execute(spec: Spec, ctx: ExecuteContext): Promise<Effect>;
}

// ---------------------------------------------------------------------------------------------
// Sources

/**
 * Where a fetch's bytes come from. The fetch kind asks each registered source, in the order they
 * were registered, whether it {@linkcode Source.matches} a location; `fetch.run:` commands go to
 * the source registered as `run`.
 */
export interface Source {
  /** Its name: `http`, `file`, `run`, `s3`. */
  readonly key: string;
  /**
   * How a runbook writes it, for the message on an unknown source (`http(s)://`, `file://, a
   * path`); empty when it is not written in `from` (`run`).
   */
  readonly label: string;
  /** The URL schemes it serves, lower case, for "did you mean" on an unknown one. */
  readonly schemes: readonly string[];
  /** Runs a process group: a timeout kills it, and its partial data is never continued. */
  readonly spawns?: boolean;
  /** Whether it serves `from`: a location as written (expressions substituted). */
  matches(from: string): boolean;
  /**
   * One attempt to bring `from` under `attempt.spec.tmp`. Throws a `SourceFailure` (or the abort
   * reason of `attempt.signal`) when it fails. See `streamedSource` for a simpler shape.
   */
  fetch(from: string, attempt: Attempt): Promise<Outcome>;
  /** `from` for logs and messages, without secrets (default: as written). */
  describe?(from: string): string;
}

// ---------------------------------------------------------------------------------------------
// Targets

/** A command to start on a target, as the leader of a new process group. */
export interface Command {
  /** The shell, run as `SHELL -c COMMAND`. */
  readonly shell: string;
  /** The command. */
  readonly command: string;
  /**
   * Absolute directory on the target; absent: the target's own default (this machine: thaw's
   * working directory; a host: the login directory, as with `ssh HOST COMMAND`).
   */
  readonly cwd?: string | undefined;
  /** The complete environment: nothing else is inherited. */
  readonly env: Readonly<Record<string, string>>;
  /** Run as this system user of the target. */
  readonly user?: string | undefined;
  /** Receives stdout (discarded when absent). */
  readonly stdout?: ((chunk: Uint8Array) => void) | undefined;
  /** Receives stderr (discarded when absent). */
  readonly stderr?: ((chunk: Uint8Array) => void) | undefined;
  /** Append stdout and stderr to this file on the target instead, so the group outlives thaw. */
  readonly log?: string | undefined;
}

/** A process group started on a target. */
export interface Process extends Spawned {
  /** Settles when the leader exits (other members of the group may still run). */
  readonly status: Promise<ExitStatus>;
  /** Settles when stdout and stderr have both closed. */
  readonly drained: Promise<void>;
  /** Stops reading stdout and stderr (a daemon that left the group may hold them open). */
  closeOutput(): Promise<void>;
}

/** What is at a path on a target (a final symbolic link is not followed). */
export interface FileStat {
  /** What it is. */
  readonly type: "file" | "directory" | "symlink" | "other";
  /** Bytes (of the entry itself). */
  readonly size: number;
  /** Last modification, milliseconds since the epoch, when known. */
  readonly mtimeMs: number | null;
}

/** A file open for writing on a target. */
export interface FileWriter {
  /** Writes all of `chunk` at the current position. */
  write(chunk: Uint8Array): Promise<void>;
  /** Flushes what was written to the target's disk. */
  sync(): Promise<void>;
  /** Closes the file (after a sync if the data must survive a crash). */
  close(): Promise<void>;
}

/**
 * Where a step's processes run and a fetch's data lands: this machine (`local`), or a host
 * reached over OpenSSH. Every member is async, so a remote target fits; paths are the target's.
 */
export interface Target {
  /** Its name: `local`, or the host's name in the runbook (what `on:` will give). */
  readonly name: string;
  /** Starts `cmd` as the leader of a new process group; rejects when it cannot start at all. */
  spawn(cmd: Command): Promise<Process>;
  /**
   * Stops the process group `pgid`: SIGTERM, then SIGKILL after `graceMs` if any member is left
   * (0: SIGKILL at once). Says what it found.
   */
  killGroup(pgid: number, graceMs: number): Promise<KillOutcome>;
  /** Whether any live member of process group `pgid` is left. */
  groupAlive(pgid: number): Promise<boolean>;
  /** What is at `path`, or `null` when nothing is. */
  stat(path: string): Promise<FileStat | null>;
  /**
   * Opens a file for writing, creating it: at byte `offset` (what follows is cut off), or at its
   * end with `append`; from byte 0, truncated, when neither is given.
   */
  openWrite(path: string, options?: { offset?: number; append?: boolean }): Promise<FileWriter>;
  /** Renames `from` to `to` (same file system: atomic), replacing a file at `to`. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file or a directory tree; nothing there is not an error. */
  remove(path: string): Promise<void>;
  /** Creates a directory and its parents (`mkdir -p`). */
  mkdir(path: string): Promise<void>;
  /** The sha256 of a file, lower-case hex. */
  sha256(path: string, signal?: AbortSignal): Promise<string>;
}

// ---------------------------------------------------------------------------------------------
// Registries

const kinds = new Registry<StepKind>("step kind");
const sourceRegistry = new Registry<Source>("source");
const targetRegistry = new Registry<Target>("target");
/** Step keys no kind may bring (every step has them): set by the runbook schema. */
const reservedStepKeys = new Set<string>();

/** Reserves step keys every step has, so that no step kind registered later brings one. */
export function reserveStepKeys(keys: Iterable<string>): void {
  for (const k of keys) reservedStepKeys.add(k);
}

/**
 * Registers a step kind. Its key and every key of its schema fragment must be new: not a key of
 * another kind, not a key every step has (`id`, `needs`, `timeout`, …).
 *
 * @throws {RegistryError} when the key or a schema key is taken, or the fragment lacks the key.
 */
export function registerStepKind<S extends KindStep, Spec, Effect extends StepEffect>(
  kind: StepKind<S, Spec, Effect>,
): Registration {
  if (!Object.hasOwn(kind.schema, kind.key)) {
    throw new RegistryError(`step kind "${kind.key}": its schema must have the key "${kind.key}"`);
  }
  const common = Object.keys(kind.schema).find((k) => reservedStepKeys.has(k));
  if (common !== undefined) {
    throw new RegistryError(`step kind "${kind.key}": "${common}" is a key every step has`);
  }
  for (const other of kinds.all()) {
    const clash = Object.keys(kind.schema).find((k) => Object.hasOwn(other.schema, k));
    if (clash !== undefined && other.key !== kind.key) {
      throw new RegistryError(
        `step kind "${kind.key}": the step key "${clash}" belongs to step kind "${other.key}"`,
      );
    }
  }
  return kinds.register(kind.key, kind as unknown as StepKind);
}

/**
 * The step kind registered as `key`.
 *
 * @throws {RegistryError} when there is none (with the closest key, if one is close).
 */
export function stepKind(key: string): StepKind {
  return kinds.require(key);
}

/** The registered step kinds, in the order they were registered. */
export function stepKinds(): StepKind[] {
  return kinds.all();
}

/** Registers a source. @throws {RegistryError} when its key is taken. */
export function registerSource(source: Source): Registration {
  return sourceRegistry.register(source.key, source);
}

/** The source registered as `key`. @throws {RegistryError} when there is none. */
export function source(key: string): Source {
  return sourceRegistry.require(key);
}

/** The registered sources, in the order they were registered. */
export function sources(): Source[] {
  return sourceRegistry.all();
}

/** The first registered source that serves the location `from`, if any. */
export function sourceFor(from: string): Source | undefined {
  return sourceRegistry.all().find((s) => s.matches(from));
}

/** Registers a target under its name. @throws {RegistryError} when the name is taken. */
export function registerTarget(target: Target): Registration {
  return targetRegistry.register(target.name, target);
}

/**
 * The target named `name` (what `on:` will give). @throws {RegistryError} when there is none.
 */
export function target(name: string): Target {
  return targetRegistry.require(name);
}

/** The registered targets. */
export function targets(): Target[] {
  return targetRegistry.all();
}

/** Changes each time a step kind is registered or taken out (the schema is rebuilt then). */
export function stepKindsVersion(): number {
  return kinds.version;
}
