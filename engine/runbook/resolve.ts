/**
 * Turning a loaded runbook's steps into what the step kinds run: expressions substituted (quoted
 * for the shell inside commands), paths made absolute, environments assembled.
 *
 * @module
 */
import { dirname, isAbsolute, resolve } from "node:path";
import type { Reference, Template } from "./expressions.ts";
import { renderTemplate } from "./expressions.ts";
import type { FetchStep, Probe, Runbook, RunStep, Step } from "./model.ts";
import { renderCommand } from "./shell.ts";
import { UsageError } from "./errors.ts";
import { runbookEnv } from "./env_check.ts";
import type { FetchSpec, ProbeSpec, RunSpec } from "../../steps/types.ts";
import { type SpecContext, stepKind } from "../../steps/kind.ts";
import { probeSpec, runKind } from "../../steps/run/kind.ts";
import { fetchKind, temporaryName } from "../../steps/fetch/kind.ts";

/** The directory of the Deno running thaw. */
const DENO_DIR = dirname(Deno.execPath());

/** Resolves the steps of one run of a runbook. */
export class Resolver implements SpecContext {
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
      for (const { template } of stepKind(s.kind).templates(s)) check(template);
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
      case "steps": {
        const step = this.#index.get(ref.name);
        return step ? stepKind(step.kind).destination?.(step, this) ?? "" : "";
      }
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
    return fetchKind.destination!(step, this);
  }

  /** A path resolved against the runbook's directory. */
  path(p: string): string {
    return isAbsolute(p) ? p : resolve(this.runbook.dir, p);
  }

  /** The temporary name a fetch writes to before the rename, beside `to`. */
  tmp(step: FetchStep): string {
    return temporaryName(this.to(step), this.run);
  }

  /**
   * The directory a step's commands run in: the runbook's; none for a step on a host (`on:`),
   * whose commands run in the login directory there (the runbook's directory is this machine's).
   */
  cwd(step: Step): string | undefined {
    return step.on === undefined ? this.runbook.dir : undefined;
  }

  /**
   * The environment of a step's commands. On a host (`on:`), only what the runbook sets (its
   * `env`, the step's `env`, `THAW_RUN_ID`, `THAW_STEP`): the host's login environment gives the
   * rest (PATH, HOME), never this machine's.
   */
  env(step: Step): Record<string, string> {
    if (step.on !== undefined) {
      const env: Record<string, string> = { ...this.#env };
      for (const [k, t] of Object.entries(step.env)) env[k] = this.text(t);
      env.THAW_RUN_ID = this.run;
      env.THAW_STEP = step.id;
      return env;
    }
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

  /**
   * What one run of `step` does, its expressions resolved: what its kind's `execute` takes.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { parseRunbook } from "./load.ts";
   * import { Resolver } from "./resolve.ts";
   * const text = "runbook: 1\nname: x\nsteps:\n  - id: a\n    run: echo ${{ run.id }}\n";
   * const rb = parseRunbook(text, "/srv/x.yaml", { dir: "/srv" });
   * const spec = new Resolver(rb, "r1", {}).spec(rb.steps[0]!) as { command: string };
   * assert.match(spec.command, /^echo '?r1'?$/);
   * ```
   */
  spec(step: Step): unknown {
    return stepKind(step.kind).spec(step, this);
  }

  /** What a run step runs. */
  runSpec(step: RunStep): RunSpec {
    return runKind.spec(step, this);
  }

  /** A readiness probe. */
  probe(p: Probe): ProbeSpec {
    return probeSpec(p, this);
  }

  /** What a fetch step fetches. */
  fetchSpec(step: FetchStep): FetchSpec {
    return fetchKind.spec(step, this);
  }

  /** The approval text of a step, if it waits for one. */
  approval(step: Step): string | undefined {
    return step.approval ? this.text(step.approval) : undefined;
  }
}
