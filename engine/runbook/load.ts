/**
 * Loading runbooks: YAML in, a typed {@link Runbook} out, or every problem of the file at once.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { checkRunbook, needsOf } from "./check.ts";
import { RunbookError, RunbookErrors, UsageError } from "./errors.ts";
import { parseTemplate, type Template } from "./expressions.ts";
import { modelHosts } from "./hosts.ts";
import { serviceLevelModel } from "../service_level/schema.ts";
import { notifyModel } from "../notify/model.ts";
import type { Runbook, Step, StepBase } from "./model.ts";
import { type RunbookInput, runbookSchema } from "./schema.ts";
import { type ModelContext, stepKinds } from "../../steps/kind.ts";
import { type Locator, parseSource, type Path, pathKey } from "./source.ts";
import { didYouMean } from "./suggest.ts";
import { parseBandwidth, parseDuration, parseSize, UnitError } from "./units.ts";
import { type Problem, problemsFromIssues, withoutRejected } from "./validate.ts";

/** Largest runbook file thaw reads. */
export const MAX_FILE_BYTES = 256 * 1024 * 1024;

/** How to load a runbook. */
export interface LoadOptions {
  /** `--var NAME=VALUE` overrides; each name must be a var of the runbook. */
  vars?: Record<string, string>;
  /** Apply the runbook's `drill` overrides (vars, skip). */
  drill?: boolean;
  /** Directory of the runbook, for relative paths; defaults to the file's directory. */
  dir?: string;
}

/**
 * Reads and loads the runbook at `path` (as the user typed it; relative to `cwd`).
 *
 * @example
 * ```ts
 * import { readRunbook } from "./load.ts";
 * import assert from "node:assert/strict";
 * const rb = await readRunbook("runbooks/instant-recovery.yaml");
 * assert(rb.steps.length > 0);
 * ```
 * @throws {RunbookErrors} with every problem of the file.
 * @throws {UsageError} when the file cannot be read or a `--var` names no var.
 */
export async function readRunbook(
  path: string,
  options: LoadOptions & { cwd?: string } = {},
): Promise<Runbook> {
  const full = isAbsolute(path) ? path : resolve(options.cwd ?? Deno.cwd(), path);
  let bytes: Uint8Array;
  try {
    const info = await Deno.stat(full);
    if (info.isDirectory) throw new UsageError(`${path}: is a directory, not a runbook file`);
    if (info.size > MAX_FILE_BYTES) {
      throw new UsageError(
        `${path}: ${info.size} bytes is larger than the ${
          MAX_FILE_BYTES / 2 ** 20
        }MiB a runbook may be`,
      );
    }
    bytes = await Deno.readFile(full);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const reason = e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message;
    throw new UsageError(`${path}: cannot read: ${reason}`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new RunbookErrors(path, [
      new RunbookError("not a text file (binary data); a runbook is UTF-8 YAML", path, 1, 1),
    ]);
  }
  return parseRunbook(text, path, { ...options, dir: options.dir ?? resolve(full, "..") });
}

/**
 * Loads a runbook from its text. `file` names it in messages.
 *
 * @example
 * ```ts
 * import { parseRunbook } from "./load.ts";
 * import assert from "node:assert/strict";
 * const rb = parseRunbook("runbook: 1\nname: demo\nsteps:\n  - id: hello\n    run: echo hi\n", "demo.yaml");
 * assert.equal(rb.steps[0]!.kind, "run");
 * ```
 * @throws {RunbookErrors} with every problem of the file.
 */
export function parseRunbook(text: string, file: string, options: LoadOptions = {}): Runbook {
  const parsed = parseSource(file, text);
  if (!parsed.ok) throw new RunbookErrors(file, parsed.errors);
  const { value, locator } = parsed;
  const fail = (problems: Problem[]): never => {
    throw new RunbookErrors(file, locate(file, locator, problems));
  };
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    fail([{
      path: [],
      at: "value",
      message: Array.isArray(value)
        ? "a runbook is a mapping (runbook, name, steps), not a list"
        : `a runbook is a mapping (runbook, name, steps), not ${
          typeof value === "string" ? "a string" : String(value)
        }`,
    }]);
  }
  const result = runbookSchema().safeParse(value);
  if (!result.success) {
    // Report the whole-document problems too, on what the schema did accept.
    const issues = result.error.issues;
    const rest = withoutRejected(value, issues) as RunbookInput;
    const more = Array.isArray(rest.steps) ? checkRunbook(rest, []) : [];
    fail([...problemsFromIssues(value, issues), ...more]);
  }
  const doc = result.data as RunbookInput;
  for (const name of Object.keys(options.vars ?? {})) {
    if (!Object.hasOwn(doc.vars ?? {}, name)) {
      throw new UsageError(
        `--var ${name}: ${file} has no var "${name}"${
          didYouMean(name, Object.keys(doc.vars ?? {}))
        }`,
      );
    }
  }
  const problems = checkRunbook(doc, []);
  const model = buildModel(doc, text, file, options, problems);
  if (problems.length) fail(problems);
  return model;
}

/** Gives problems found after loading (by the planner, say) their positions in `runbook`. */
export function locateProblems(runbook: Runbook, problems: Problem[]): RunbookError[] {
  const parsed = parseSource(runbook.file, runbook.text);
  if (!parsed.ok) return parsed.errors;
  return locate(runbook.file, parsed.locator, problems);
}

function locate(file: string, locator: Locator, problems: Problem[]): RunbookError[] {
  const parents = problems.map((p) => p.path.slice(0, -1));
  const where = locator.locateAll([...problems.map((p) => p.path), ...parents]);
  return problems.map((p, k) => {
    const loc = where.get(pathKey(p.path))!;
    let offset = p.at === "key" ? loc.key : loc.value;
    // An empty list item (`-` and nothing) has no offset of its own: point at its list.
    if (offset < 0) offset = Math.max(0, where.get(pathKey(parents[k]!))!.value);
    if (p.inner !== undefined && p.at === "value" && loc.raw !== undefined) {
      // Inside a string: exact when the source spells the value literally.
      offset += loc.literal ? p.inner : 0;
    }
    const { line, column } = locator.lines.position(offset);
    return new RunbookError(p.message, file, line, column);
  });
}

function buildModel(
  doc: RunbookInput,
  text: string,
  file: string,
  options: LoadOptions,
  problems: Problem[],
): Runbook {
  const unit = (path: () => Path, parse: (s: string) => number, v: string | undefined) => {
    if (v === undefined) return undefined;
    try {
      return parse(v);
    } catch (e) {
      if (!(e instanceof UnitError)) throw e;
      const p = path();
      problems.push({ path: p, at: "value", message: `${p[p.length - 1]}: ${e.message}` });
      return undefined;
    }
  };
  // Templates were checked already; a broken one only happens alongside a problem.
  const t = (text: string | number | boolean): Template => {
    const source = String(text);
    if (!source.includes("${{")) return { source, parts: [source] };
    const parsed = parseTemplate(source);
    return "parts" in parsed ? parsed : { source, parts: [source] };
  };
  const str = (v: string | number | boolean) => String(v);
  const drill = options.drill === true;
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc.vars ?? {})) vars[k] = str(v);
  if (drill) { for (const [k, v] of Object.entries(doc.drill?.vars ?? {})) vars[k] = str(v); }
  Object.assign(vars, options.vars ?? {});
  const skip = new Set(drill ? doc.drill?.skip ?? [] : []);
  const env: Record<string, Template> = {};
  for (const [k, v] of Object.entries(doc.env ?? {})) env[k] = t(v);

  const kinds = stepKinds();
  const steps: Step[] = doc.steps.map((s, i) => {
    const at = (...p: (string | number)[]) => (): Path => ["steps", i, ...p];
    const stepEnv: Record<string, Template> = {};
    for (const [k, v] of Object.entries(s.env ?? {})) stepEnv[k] = t(v);
    const base: StepBase = {
      id: s.id,
      index: i,
      needs: needsOf(s),
      timeout: unit(at("timeout"), parseDuration, s.timeout),
      retries: s.retries ?? 0,
      env: stepEnv,
      estimate: unit(at("estimate"), parseDuration, s.estimate),
      milestone: s.milestone,
      onFailure: s["on-failure"] ?? "abort",
      approval: s.approval === undefined ? undefined : t(s.approval),
      skip: skip.has(s.id),
      user: s.user,
      idempotent: s.idempotent ?? false,
      ...(s.on !== undefined ? { on: s.on } : {}),
    };
    const ctx: ModelContext = {
      template: t,
      duration: (path, v) => unit(at(...path), parseDuration, v),
      size: (path, v) => unit(at(...path), parseSize, v),
      bandwidth: (path, v) => unit(at(...path), parseBandwidth, v),
    };
    // A valid step has exactly one kind. Otherwise problems were reported, and each kind present
    // (or the first, with none) still models its keys, for the problems of their values.
    const present = kinds.filter((k) => s[k.key] !== undefined);
    const fields = (present.length ? present : kinds.slice(0, 1)).map((k) => k.model(s, ctx));
    return { ...base, ...fields[0] } as Step;
  });

  const milestones: Record<string, number> = {};
  for (const [k, v] of Object.entries(doc.objectives?.milestones ?? {})) {
    const d = unit(() => ["objectives", "milestones", k], parseDuration, v);
    if (d !== undefined) milestones[k] = d;
  }
  return {
    file,
    dir: options.dir ?? ".",
    name: doc.name,
    description: doc.description,
    objectives: {
      rto: unit(() => ["objectives", "rto"], parseDuration, doc.objectives?.rto),
      btn: unit(() => ["objectives", "btn"], parseDuration, doc.objectives?.btn),
      milestones,
    },
    strategy: doc.strategy ?? "aggressive",
    bandwidth: unit(() => ["bandwidth"], parseBandwidth, doc.bandwidth) ?? Infinity,
    parallelism: doc.parallelism ?? 8,
    vars,
    env,
    drill,
    hosts: modelHosts(doc.hosts, (path, v) => unit(() => path, parseBandwidth, v)),
    serviceLevel: serviceLevelModel(doc.service_level),
    notify: notifyModel(doc.notify),
    steps,
    text,
  };
}
