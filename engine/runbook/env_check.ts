/**
 * `${{ env.NAME }}` before a run starts: every name must be set, in the runbook's `env` or in the
 * engine's environment, or the run is refused with the position of each reference (exit 2). An
 * unset name would otherwise become an empty string: an empty password, a restore into `/`.
 *
 * Inside the runbook's own `env`, `${{ env.NAME }}` names another entry of that `env`, or the
 * engine's environment: `RESTIC_PASSWORD: ${{ env.RESTIC_PASSWORD }}` passes the engine's variable
 * through (and is an error when the engine has none); entries that refer to each other in a
 * circle are an error.
 *
 * @module
 */
import { type KindStep, stepKind } from "../../steps/kind.ts";
import { RunbookErrors } from "./errors.ts";
import type { Reference, Template } from "./expressions.ts";
import { locateProblems } from "./load.ts";
import { notifyEnvUses } from "../notify/resolve.ts";
import type { Runbook } from "./model.ts";
import { parseSource, type Path } from "./source.ts";
import type { Problem } from "./validate.ts";

/** A reference to `env.name` at `path` (offset `inner` in the string there). */
interface EnvUse {
  readonly name: string;
  readonly path: Path;
  readonly inner: number;
  /** The runbook `env` entry it stands in, if any. */
  readonly key?: string;
}

/** Every `${{ env.NAME }}` of `runbook`, where it stands. */
function envUses(runbook: Runbook): EnvUse[] {
  // The source is parsed again only to tell `from: [a, b]` from `from: a` (a big runbook's
  // second parse is tens of ms before the first step), and only when a location uses env.
  let doc: { steps?: { fetch?: { from?: unknown } }[] } | undefined;
  const fromList = (i: number) => {
    const parsed = doc ? undefined : parseSource(runbook.file, runbook.text);
    doc ??= parsed?.ok ? parsed.value as typeof doc : {};
    return Array.isArray(doc?.steps?.[i]?.fetch?.from);
  };
  const usesEnv = (t: Template) => t.parts.some((p) => typeof p !== "string" && p.ref.ns === "env");
  const uses: EnvUse[] = [];
  const add = (t: Template | undefined, path: Path, key?: string) => {
    for (const p of t?.parts ?? []) {
      if (typeof p === "string" || p.ref.ns !== "env") continue;
      uses.push({ name: p.ref.name, path, inner: p.offset, ...(key ? { key } : {}) });
    }
  };
  for (const [k, t] of Object.entries(runbook.env)) add(t, ["env", k], k);
  runbook.steps.forEach((s, i) => {
    for (const [k, t] of Object.entries(s.env)) add(t, ["steps", i, "env", k]);
    add(s.approval, ["steps", i, "approval"]);
    const plugin = s as KindStep;
    if (plugin.kind !== "run" && plugin.kind !== "fetch") {
      // A kind registered by a plug-in says where its templates are.
      for (const u of stepKind(plugin.kind).templates(plugin)) {
        add(u.template, ["steps", i, ...u.path]);
      }
      return;
    }
    if (s.kind === "run") {
      add(s.run, ["steps", i, "run"]);
      if (s.ready) add(s.ready.target, ["steps", i, "ready", s.ready.kind]);
      return;
    }
    add(s.to, ["steps", i, "fetch", "to"]);
    s.from.forEach((src, j) => {
      if (src.kind === "run") add(src.command, ["steps", i, "fetch", "run"]);
      else if (usesEnv(src.location)) {
        add(src.location, ["steps", i, "fetch", "from", ...(fromList(i) ? [j] : [])]);
      }
    });
  });
  uses.push(...notifyEnvUses(runbook.notify));
  return uses;
}

/** Whether `name`, used in the runbook `env` entry `key` (if any), has a value. */
function isSet(
  runbook: Runbook,
  env: Readonly<Record<string, string>>,
  name: string,
  key?: string,
) {
  return Object.hasOwn(env, name) || (name !== key && Object.hasOwn(runbook.env, name));
}

/** Runbook `env` entries that refer to each other in a circle, each named once. */
function circles(runbook: Runbook, uses: EnvUse[]): Set<string> {
  const edges = new Map<string, string[]>();
  for (const u of uses) {
    if (u.key && u.name !== u.key && Object.hasOwn(runbook.env, u.name)) {
      edges.set(u.key, [...(edges.get(u.key) ?? []), u.name]);
    }
  }
  const inCircle = new Set<string>();
  const reaches = (from: string, to: string, seen: Set<string>): boolean =>
    (edges.get(from) ?? []).some((n) =>
      n === to || (!seen.has(n) && seen.add(n) !== undefined && reaches(n, to, seen))
    );
  for (const k of edges.keys()) if (reaches(k, k, new Set())) inCircle.add(k);
  return inCircle;
}

/**
 * Checks that every `${{ env.NAME }}` of `runbook` has a value in `env` (the engine's
 * environment) or the runbook's `env`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkEnv } from "./env_check.ts";
 * import { parseRunbook } from "./load.ts";
 * const rb = parseRunbook(
 *   "runbook: 1\nname: demo\nenv:\n  PW: ${{ env.PW }}\nsteps:\n  - id: a\n    run: echo\n",
 *   "demo.yaml",
 * );
 * checkEnv(rb, { PW: "secret" });
 * assert.throws(() => checkEnv(rb, {}), /demo.yaml:4:7: env.PW is not set/);
 * ```
 * @throws {RunbookErrors} naming each unset variable where it is used.
 */
export function checkEnv(runbook: Runbook, env: Readonly<Record<string, string>>): void {
  const uses = envUses(runbook);
  const loops = circles(runbook, uses);
  const problems: Problem[] = [];
  for (const u of uses) {
    let message: string | undefined;
    if (u.key && loops.has(u.key) && Object.hasOwn(runbook.env, u.name) && u.name !== u.key) {
      message = `env.${u.name}: the runbook's env entries ${u.key} and ${u.name} ` +
        `refer to each other in a circle; one of them must have a value of its own`;
    } else if (!isSet(runbook, env, u.name, u.key)) {
      message = u.key === u.name
        ? `env.${u.name} is not set: the runbook's env passes ${u.name} through from the ` +
          `environment thaw runs in, which has none; export ${u.name} before the run ` +
          `(it would be empty)`
        : `env.${u.name} is not set, neither in the runbook's env nor in the environment thaw ` +
          `runs in: export ${u.name} or add it to env (it would be empty)`;
    }
    if (message) problems.push({ path: u.path, at: "value", message, inner: u.inner });
  }
  if (problems.length) {
    throw new RunbookErrors(runbook.file, locateProblems(runbook, problems));
  }
}

/**
 * The values of the runbook's `env`, each `${{ env.NAME }}` in them read as {@linkcode checkEnv}
 * says: another entry, else the engine's environment. Other references come from `value`.
 */
export function runbookEnv(
  runbook: Runbook,
  env: Readonly<Record<string, string>>,
  value: (ref: Reference) => string,
): Record<string, string> {
  const out: Record<string, string> = {};
  const busy = new Set<string>();
  const get = (key: string): string => {
    if (Object.hasOwn(out, key)) return out[key]!;
    busy.add(key);
    let text = "";
    for (const p of runbook.env[key]!.parts) {
      if (typeof p === "string") text += p;
      else if (p.ref.ns !== "env") text += value(p.ref);
      else if (p.ref.name !== key && Object.hasOwn(runbook.env, p.ref.name)) {
        text += busy.has(p.ref.name) ? "" : get(p.ref.name);
      } else text += env[p.ref.name] ?? "";
    }
    busy.delete(key);
    return out[key] = text;
  };
  for (const key of Object.keys(runbook.env)) get(key);
  return out;
}
