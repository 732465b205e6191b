/**
 * The checks that need the whole runbook: unique ids, `needs` that exist, no cycles, milestones
 * and drill entries that exist, expressions that resolve.
 *
 * @module
 */
import { parseTemplate, type ReferencePart } from "./expressions.ts";
import type { RunbookInput, StepInput } from "./schema.ts";
import type { Path } from "./source.ts";
import { checkHosts } from "./hosts.ts";
import { checkServiceLevel, SL_KINDS } from "../service_level/schema.ts";
import { checkNotify } from "../notify/model.ts";
import { didYouMean } from "./suggest.ts";
import { type Problem, REJECTED } from "./validate.ts";
import { type CheckContext, type StepKind, stepKinds } from "../../steps/kind.ts";

/** Normalises `needs` (a single id or a list) to a list. */
export function needsOf(step: { needs?: string | string[] | undefined }): string[] {
  const n = step.needs;
  return n === undefined
    ? []
    : typeof n === "string"
    ? [n]
    : n.filter((x) => typeof x === "string");
}

/**
 * Runs the whole-document checks on a runbook whose shape is already valid.
 */
export function checkRunbook(doc: RunbookInput, extraVars: Iterable<string>): Problem[] {
  const problems: Problem[] = [];
  const ids = new Map<string, number>();
  const steps = doc.steps;

  steps.forEach((s, i) => {
    if (typeof s?.id !== "string") return; // already reported by the schema
    const first = ids.get(s.id);
    if (first !== undefined) {
      problems.push({
        path: ["steps", i, "id"],
        at: "value",
        message: `duplicate step id "${s.id}" (also step ${first + 1})`,
      });
    } else ids.set(s.id, i);
  });

  steps.forEach((s, i) => checkStepShape(s, i, problems));
  checkNeeds(doc, ids, problems);
  problems.push(...checkHosts(doc));
  problems.push(...checkServiceLevel(doc));

  // Names the runbook declares, for references.
  const vars = new Set([...Object.keys(doc.vars ?? {}), ...extraVars]);
  problems.push(...checkNotify(doc.notify, vars));
  const milestones = new Set(steps.flatMap((s) => (s.milestone ? [s.milestone] : [])));
  for (const [name] of Object.entries(doc.objectives?.milestones ?? {})) {
    if (!milestones.has(name)) {
      const known = milestones.size ? `; milestones: ${[...milestones].join(", ")}` : "";
      problems.push({
        path: ["objectives", "milestones", name],
        at: "key",
        message: `objective for unknown milestone "${name}"${didYouMean(name, milestones)}${
          known || " (no step has a milestone)"
        }`,
      });
    }
  }
  for (const [name] of Object.entries(doc.drill?.vars ?? {})) {
    if (!vars.has(name)) {
      problems.push({
        path: ["drill", "vars", name],
        at: "key",
        message: `drill overrides unknown var "${name}"${didYouMean(name, vars)}`,
      });
    }
  }
  (doc.drill?.skip ?? []).forEach((id, k) => {
    if (!ids.has(id)) {
      problems.push({
        path: ["drill", "skip", k],
        at: "value",
        message: `unknown step "${id}" in drill.skip${didYouMean(id, ids.keys())}`,
      });
    }
  });
  for (const [name, value] of Object.entries(doc.vars ?? {})) {
    if (typeof value === "string" && value.includes("${{")) {
      problems.push({
        path: ["vars", name],
        at: "value",
        message: `var "${name}": expressions are not expanded inside vars; write the value itself`,
      });
    }
  }

  // Every string that may hold expressions.
  const kinds = stepKinds();
  const kindOf = (s: StepInput) => kinds.find((k) => s[k.key] !== undefined);
  // The kind of each step, for `${{ steps.ID.to }}`; a list may have holes here.
  const kindById = new Map<string, StepKind>();
  steps.forEach((s) => kindById.set(s.id, kindOf(s) ?? kinds[0]!));
  const check = (path: Path, text: unknown, allowSteps: boolean) => {
    if (typeof text !== "string" || !text.includes("${{")) return;
    const t = parseTemplate(text);
    if ("problems" in t) {
      for (const p of t.problems) {
        problems.push({ path, at: "value", message: p.message, inner: p.offset });
      }
      return;
    }
    for (const part of t.parts) {
      if (typeof part === "string") continue;
      const msg = referenceProblem(part, vars, ids, kindById, allowSteps);
      if (msg) problems.push({ path, at: "value", message: msg, inner: part.offset });
    }
  };
  for (const [k, v] of Object.entries(doc.env ?? {})) check(["env", k], String(v), false);
  doc.service_level?.forEach((p, i) => {
    for (const k of SL_KINDS) check(["service_level", i, k], p?.[k], k === "run");
  });
  steps.forEach((s, i) => {
    const at = (...p: (string | number)[]): Path => ["steps", i, ...p];
    if (s.approval !== undefined) check(at("approval"), s.approval, true);
    for (const [k, v] of Object.entries(s.env ?? {})) check(at("env", k), String(v), true);
    // Each kind checks its own keys, wherever they are (a fetch with `background` hears both).
    const ctx: CheckContext = {
      name: `step "${s.id}"`,
      problem: (path, where, message) =>
        problems.push({ path: ["steps", i, ...path], at: where, message }),
      expression: (path, text, options) => check(["steps", i, ...path], text, options.steps),
    };
    for (const kind of kinds) kind.check(s, ctx);
  });
  return problems;
}

function referenceProblem(
  part: ReferencePart,
  vars: Set<string>,
  ids: Map<string, number>,
  kindById: Map<string, StepKind>,
  allowSteps: boolean,
): string | undefined {
  const r = part.ref;
  if (r.ns === "vars" && !vars.has(r.name)) {
    return `unknown var "${r.name}"${didYouMean(r.name, vars)}` +
      (vars.size ? "" : " (the runbook has no vars)");
  }
  if (r.ns === "steps") {
    if (!allowSteps) return `"\${{ steps.${r.name}.to }}" cannot be used here, only in commands`;
    if (!ids.has(r.name)) {
      return `unknown step "${r.name}" in expression${didYouMean(r.name, ids.keys())}`;
    }
    const kind = kindById.get(r.name);
    if (kind !== undefined && kind.destination === undefined) {
      const have = kindNames(stepKinds().filter((k) => k.destination !== undefined));
      return `step "${r.name}" is a ${kind.key} step; only ${have} steps have a destination (.to)`;
    }
  }
  return undefined;
}

/** `run`, `run or fetch`, `run, fetch or toy`. */
function kindNames(kinds: readonly StepKind[], or = "or"): string {
  const names = kinds.map((k) => k.key);
  return names.length < 2
    ? names.join("")
    : `${names.slice(0, -1).join(", ")} ${or} ${names.at(-1)}`;
}

/** One kind per step, and no key that belongs to another kind. */
function checkStepShape(s: StepInput, i: number, problems: Problem[]): void {
  const at = (...p: (string | number)[]): Path => ["steps", i, ...p];
  const name = `step "${s.id}"`;
  const kinds = stepKinds();
  const present = kinds.filter((k) => s[k.key] !== undefined);
  if (present.length > 1) {
    problems.push({
      path: at(present[1]!.key),
      at: "key",
      message: `${name} has both ${kindNames(present, "and")}; a step is one or the other`,
    });
  } else if (present.length === 0) {
    const each = kinds.map((k) => `"${k.key}" (${k.summary})`);
    const list = each.length < 2
      ? each.join("")
      : `${each.length > 2 ? "one of" : "either"} ${each.slice(0, -1).join(", ")} or ${
        each.at(-1)
      }`;
    problems.push({ path: at(), at: "value", message: `${name} needs ${list}` });
  }
  for (const kind of present) {
    if (s[kind.key] === REJECTED) continue;
    for (const other of kinds) {
      if (other === kind) continue;
      for (const k of Object.keys(other.schema)) {
        if (k !== other.key && s[k] !== undefined) {
          problems.push({
            path: at(k),
            at: "key",
            message: `"${k}" applies to ${other.key} steps only`,
          });
        }
      }
    }
  }
}

function checkNeeds(doc: RunbookInput, ids: Map<string, number>, problems: Problem[]): void {
  const steps = doc.steps;
  const n = steps.length;
  const needIdx: number[][] = Array.from({ length: n }, () => []);
  steps.forEach((s, i) => {
    const list = needsOf(s);
    const idx: number[] = [];
    list.forEach((need, k) => {
      const path: Path = typeof s.needs === "string"
        ? ["steps", i, "needs"]
        : ["steps", i, "needs", k];
      const j = ids.get(need);
      if (j === undefined) {
        problems.push({
          path,
          at: "value",
          message: `unknown step "${need}" in needs${didYouMean(need, ids.keys())}`,
        });
      } else if (j === i) {
        problems.push({ path, at: "value", message: `step "${s.id}" needs itself` });
      } else if (list.indexOf(need) < k) {
        problems.push({ path, at: "value", message: `"${need}" is listed twice in needs` });
      } else idx.push(j);
    });
    needIdx[i] = idx;
  });
  // Kahn's algorithm; whatever is left sits on or behind a cycle.
  const indeg = new Int32Array(n);
  const dependents: number[][] = Array.from({ length: n }, () => []);
  needIdx.forEach((list, i) => {
    indeg[i] = list.length;
    for (const j of list) dependents[j]!.push(i);
  });
  const queue: number[] = [];
  for (let i = 0; i < n; i++) if (indeg[i] === 0) queue.push(i);
  for (let q = 0; q < queue.length; q++) {
    for (const d of dependents[queue[q]!]!) {
      indeg[d] = indeg[d]! - 1;
      if (indeg[d] === 0) queue.push(d);
    }
  }
  if (queue.length === n) return;
  const reported = new Uint8Array(n);
  for (let start = 0; start < n; start++) {
    if (indeg[start] === 0 || reported[start]) continue;
    const pos = new Map<number, number>();
    const walk: number[] = [];
    let cur = start;
    while (!pos.has(cur) && !reported[cur]) {
      pos.set(cur, walk.length);
      walk.push(cur);
      cur = needIdx[cur]!.find((j) => indeg[j]! > 0)!;
    }
    for (const w of walk) reported[w] = 1;
    if (!pos.has(cur)) continue; // ran into a cycle already reported
    const cycle = walk.slice(pos.get(cur)!);
    // Start the cycle at the step that comes first in the file.
    const first = cycle.indexOf(Math.min(...cycle));
    const ordered = [...cycle.slice(first), ...cycle.slice(0, first)];
    const a = ordered[0]!, b = ordered[1 % ordered.length]!;
    const k = needsOf(steps[a]!).indexOf(steps[b]!.id);
    problems.push({
      path: typeof steps[a]!.needs === "string" ? ["steps", a, "needs"] : ["steps", a, "needs", k],
      at: "value",
      message: `cycle in needs: ${[...ordered, a].map((x) => steps[x]!.id).join(" -> ")}`,
    });
  }
}
