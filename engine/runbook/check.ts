/**
 * The checks that need the whole runbook: unique ids, `needs` that exist, no cycles, milestones
 * and drill entries that exist, expressions that resolve.
 *
 * @module
 */
import { parseTemplate, type ReferencePart } from "./expressions.ts";
import type { RunbookInput } from "./schema.ts";
import type { Path } from "./source.ts";
import { didYouMean } from "./suggest.ts";
import type { Problem } from "./validate.ts";

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

  // Names the runbook declares, for references.
  const vars = new Set([...Object.keys(doc.vars ?? {}), ...extraVars]);
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
  const fetchIds = new Set(steps.filter((s) => s.fetch).map((s) => s.id));
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
      const msg = referenceProblem(part, vars, ids, fetchIds, allowSteps);
      if (msg) problems.push({ path, at: "value", message: msg, inner: part.offset });
    }
  };
  for (const [k, v] of Object.entries(doc.env ?? {})) check(["env", k], String(v), false);
  steps.forEach((s, i) => {
    const at = (...p: (string | number)[]): Path => ["steps", i, ...p];
    if (s.run !== undefined) check(at("run"), s.run, true);
    if (s.approval !== undefined) check(at("approval"), s.approval, true);
    for (const [k, v] of Object.entries(s.env ?? {})) check(at("env", k), String(v), true);
    if (s.ready && typeof s.ready === "object") {
      for (const k of ["http", "tcp", "run"] as const) {
        const v = s.ready[k];
        if (v !== undefined) check(at("ready", k), v, true);
      }
    }
    const f = s.fetch;
    if (f && typeof f === "object") {
      if (typeof f.to === "string") check(at("fetch", "to"), f.to, false);
      if (f.run !== undefined) check(at("fetch", "run"), f.run, false);
      const from = f.from === undefined ? [] : typeof f.from === "string" ? [f.from] : f.from;
      from.forEach((src, k) => {
        const p = typeof f.from === "string" ? at("fetch", "from") : at("fetch", "from", k);
        check(p, src, false);
        if (typeof src !== "string") return;
        const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(src)?.[1];
        if (scheme && !["http", "https", "file"].includes(scheme.toLowerCase())) {
          problems.push({
            path: p,
            at: "value",
            message: `unsupported source "${scheme}://": use http(s)://, file://, a path, ` +
              `or fetch.run with a command (for example restic or aws s3 cp)`,
          });
        }
      });
    }
  });
  return problems;
}

function referenceProblem(
  part: ReferencePart,
  vars: Set<string>,
  ids: Map<string, number>,
  fetchIds: Set<string>,
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
    if (!fetchIds.has(r.name)) {
      return `step "${r.name}" is a run step; only fetch steps have a destination (.to)`;
    }
  }
  return undefined;
}

function checkStepShape(s: RunbookInput["steps"][number], i: number, problems: Problem[]): void {
  const at = (...p: (string | number)[]): Path => ["steps", i, ...p];
  const name = `step "${s.id}"`;
  if (s.run !== undefined && s.fetch !== undefined) {
    problems.push({
      path: at("fetch"),
      at: "key",
      message: `${name} has both run and fetch; a step is one or the other`,
    });
  } else if (s.run === undefined && s.fetch === undefined) {
    problems.push({
      path: at(),
      at: "value",
      message: `${name} needs either "run" (a command) or "fetch" (a data set to bring home)`,
    });
  }
  if (s.fetch && typeof s.fetch === "object") {
    for (const k of ["shell", "background", "ready"] as const) {
      if (s[k] !== undefined) {
        problems.push({ path: at(k), at: "key", message: `"${k}" applies to run steps only` });
      }
    }
    const f = s.fetch;
    if ((f.from === undefined) === (f.run === undefined)) {
      problems.push({
        path: at("fetch"),
        at: "value",
        message: f.from === undefined
          ? `the fetch of ${name} needs "from" (a source) or "run" (a command writing under $THAW_TO)`
          : `the fetch of ${name} has both "from" and "run"; use one`,
      });
    }
  }
  if (s.background && !s.ready) {
    problems.push({
      path: at("background"),
      at: "key",
      message: `${name} runs in the background but has no "ready" probe to tell when it is up`,
    });
  }
  if (s.ready && typeof s.ready === "object") {
    const kinds = (["http", "tcp", "run"] as const).filter((k) => s.ready![k] !== undefined);
    if (kinds.length !== 1) {
      problems.push({
        path: at("ready"),
        at: "value",
        message: kinds.length === 0
          ? `the ready probe of ${name} needs one of http, tcp or run`
          : `the ready probe of ${name} has ${kinds.join(" and ")}; use exactly one`,
      });
    }
    const tcp = s.ready.tcp;
    if (
      tcp !== undefined && !tcp.includes("${{") &&
      !/^[^\s:]+:\d{1,5}$|^\[[^\]]+\]:\d{1,5}$/.test(tcp)
    ) {
      problems.push({
        path: at("ready", "tcp"),
        at: "value",
        message: `tcp: expected host:port, got "${tcp}"`,
      });
    }
    const http = s.ready.http;
    if (http !== undefined && !/^(https?:\/\/|\$\{\{)/.test(http)) {
      problems.push({
        path: at("ready", "http"),
        at: "value",
        message: `http: expected an http:// or https:// URL, got "${http}"`,
      });
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
