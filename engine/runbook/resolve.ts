/**
 * Turning a loaded runbook's steps into what the step kinds run: expressions substituted (quoted
 * for the shell inside commands), paths made absolute, environments assembled.
 *
 * @module
 */
import { basename, dirname, isAbsolute, resolve } from "node:path";
import type { Reference, Template } from "./expressions.ts";
import { renderTemplate } from "./expressions.ts";
import type { FetchStep, Probe, Runbook, RunStep, Step } from "./model.ts";
import { renderCommand } from "./shell.ts";
import { UsageError } from "./errors.ts";
import { runbookEnv } from "./env_check.ts";
import type { FetchSpec, ProbeSpec, RunSpec, SourceSpec } from "../../steps/types.ts";

/** The directory of the Deno running thaw. */
const DENO_DIR = dirname(Deno.execPath());

/** Resolves the steps of one run of a runbook. */
export class Resolver {
  readonly runbook: Runbook;
  readonly run: string;
  /** The environment of the engine's process, as given. */
  readonly processEnv: Readonly<Record<string, string>>;
  readonly #env: Record<string, string> = {};
  readonly #index = new Map<string, Step>();

  /**
   * A resolver for run `run` of `runbook`, with the environment of the engine's process.
   *
   * @throws {UsageError} when an `${{ env.NAME }}` is set neither in the runbook nor outside.
   */
  constructor(runbook: Runbook, run: string, processEnv: Readonly<Record<string, string>>) {
    this.runbook = runbook;
    this.run = run;
    this.processEnv = processEnv;
    for (const s of runbook.steps) this.#index.set(s.id, s);
    const missing = new Set<string>();
    const check = (t: Template) => {
      for (const p of t.parts) {
        if (typeof p !== "string" && p.ref.ns === "env" && !this.#hasEnv(p.ref.name)) {
          missing.add(p.ref.name);
        }
      }
    };
    for (const t of Object.values(runbook.env)) check(t);
    for (const s of runbook.steps) {
      for (const t of Object.values(s.env)) check(t);
      if (s.kind === "run") {
        check(s.run);
        if (s.ready) check(s.ready.target);
      } else {
        check(s.to);
        for (const src of s.from) check(src.kind === "run" ? src.command : src.location);
      }
    }
    if (missing.size) {
      const names = [...missing].sort().map((n) => `env.${n}`).join(", ");
      throw new UsageError(
        `${runbook.file}: ${names} ${missing.size > 1 ? "are" : "is"} not set, neither in the ` +
          `runbook's env nor in the environment`,
      );
    }
    Object.assign(this.#env, runbookEnv(runbook, processEnv, this.value));
  }

  #hasEnv(name: string): boolean {
    return name in this.runbook.env || name in this.processEnv;
  }

  /** The value of a reference. */
  value = (ref: Reference): string => {
    switch (ref.ns) {
      case "vars":
        return this.runbook.vars[ref.name] ?? "";
      case "env":
        return this.#env[ref.name] ?? this.processEnv[ref.name] ?? "";
      case "steps":
        return this.to(this.#index.get(ref.name) as FetchStep);
      case "run":
        return this.run;
    }
  };

  /** A template as plain text (no quoting: a path, a URL, an env value). */
  text(t: Template): string {
    return renderTemplate(t, this.value);
  }

  /** A template as a shell command: every value quoted for where it stands. */
  command(t: Template): string {
    return renderCommand(t, this.value);
  }

  /** The absolute destination of a fetch. */
  to(step: FetchStep): string {
    return this.path(this.text(step.to));
  }

  /** A path resolved against the runbook's directory. */
  path(p: string): string {
    return isAbsolute(p) ? p : resolve(this.runbook.dir, p);
  }

  /** The temporary name a fetch writes to before the rename, beside `to`. */
  tmp(step: FetchStep): string {
    const to = this.to(step);
    return resolve(dirname(to), `.${basename(to)}.thaw-${this.run}.part`);
  }

  /** The environment of a step's commands. */
  env(step: Step): Record<string, string> {
    const env: Record<string, string> = { ...this.processEnv, ...this.#env };
    for (const [k, t] of Object.entries(step.env)) env[k] = this.text(t);
    // The Deno that runs thaw is on PATH for steps, even when thaw was started through npx.
    const denoDir = DENO_DIR;
    const path = env.PATH ?? "/usr/local/bin:/usr/bin:/bin";
    if (!path.split(":").includes(denoDir)) env.PATH = `${path}:${denoDir}`;
    env.THAW_RUN_ID = this.run;
    env.THAW_STEP = step.id;
    return env;
  }

  /** What a run step runs. */
  runSpec(step: RunStep): RunSpec {
    const spec: RunSpec = {
      command: this.command(step.run),
      shell: step.shell,
      retries: step.retries,
      background: step.background,
    };
    return {
      ...spec,
      ...(step.timeout !== undefined ? { timeoutMs: step.timeout * 1000 } : {}),
      ...(step.ready ? { ready: this.probe(step.ready) } : {}),
      ...(step.user !== undefined ? { user: step.user } : {}),
    };
  }

  /** A readiness probe. */
  probe(p: Probe): ProbeSpec {
    return {
      kind: p.kind,
      target: p.kind === "run" ? this.command(p.target) : this.text(p.target),
      timeoutMs: p.timeout * 1000,
      intervalMs: p.interval * 1000,
    };
  }

  /** What a fetch step fetches. */
  fetchSpec(step: FetchStep): FetchSpec {
    const sources: SourceSpec[] = step.from.map((s) => {
      if (s.kind === "run") {
        const user = step.user !== undefined ? { user: step.user } : {};
        return { kind: "run", command: this.command(s.command), shell: "bash", ...user };
      }
      const loc = this.text(s.location);
      return {
        kind: "location",
        location: /^[a-z][a-z0-9+.-]*:\/\//i.test(loc) ? loc : this.path(loc),
      };
    });
    return {
      sources,
      to: this.to(step),
      tmp: this.tmp(step),
      retries: step.retries,
      ...(step.size !== undefined ? { size: step.size } : {}),
      ...(step.sha256 !== undefined ? { sha256: step.sha256.toLowerCase() } : {}),
      ...(step.timeout !== undefined ? { timeoutMs: step.timeout * 1000 } : {}),
      ...(step.user !== undefined ? { user: step.user } : {}),
    };
  }

  /** The approval text of a step, if it waits for one. */
  approval(step: Step): string | undefined {
    return step.approval ? this.text(step.approval) : undefined;
  }
}
