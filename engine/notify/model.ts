/**
 * The typed model of `notify:` (see `schema.ts`) and the checks it needs at load time (its
 * expressions): the runbook loader calls {@linkcode checkNotify} (`engine/runbook/check.ts`) and
 * {@linkcode notifyModel} (`engine/runbook/load.ts`) with the rest of the file.
 *
 * `url` and header values may hold `${{ env.NAME }}` (a secret from the environment thaw runs in,
 * or from the runbook's `env`), `${{ vars.NAME }}` (so `drill.vars` or `--var` can point a drill
 * at another channel) and `${{ run.id }}`; `${{ steps.ID.to }}` means nothing here.
 *
 * @module
 */
import { RunbookError } from "../runbook/errors.ts";
import { parseTemplate, type Template } from "../runbook/expressions.ts";
import { parseSource, type Path, pathKey } from "../runbook/source.ts";
import { didYouMean } from "../runbook/suggest.ts";
import { parseDuration } from "../runbook/units.ts";
import type { Problem } from "../runbook/validate.ts";
import {
  DEFAULT_RETRIES,
  DEFAULT_TIMEOUT_S,
  NOTIFY_EVENTS,
  type NotifyEvent,
  type NotifyInput,
} from "./schema.ts";

/** A webhook of a loaded runbook. */
export interface Webhook {
  /** Position in `notify` (for messages: `notify[0]`). */
  readonly index: number;
  readonly url: Template;
  /** The events it is sent, in {@link NOTIFY_EVENTS} order. */
  readonly on: readonly NotifyEvent[];
  /** Header name (as written) → value. Values are secret. */
  readonly headers: Readonly<Record<string, Template>>;
  /** Per request, seconds. */
  readonly timeout: number;
  /** Attempts after the first. */
  readonly retries: number;
}

/** A string as a template (a broken one only happens alongside a reported problem). */
function template(source: string): Template {
  if (!source.includes("${{")) return { source, parts: [source] };
  const parsed = parseTemplate(source);
  return "parts" in parsed ? parsed : { source, parts: [source] };
}

/**
 * The webhooks of a `notify` key whose shape and expressions are valid (none when absent).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notifyModel } from "./model.ts";
 * const [hook] = notifyModel([{ url: "https://h.example/x", on: ["end"], timeout: "5s" }]);
 * assert.deepEqual([hook!.on, hook!.timeout, hook!.retries], [["end"], 5, 5]);
 * ```
 */
export function notifyModel(input: NotifyInput | undefined): Webhook[] {
  return (input ?? []).map((w, index) => {
    const on = new Set(w.on ?? NOTIFY_EVENTS);
    const headers: Record<string, Template> = {};
    for (const [k, v] of Object.entries(w.headers ?? {})) headers[k] = template(v);
    return {
      index,
      url: template(w.url),
      on: NOTIFY_EVENTS.filter((e) => on.has(e)),
      headers,
      timeout: w.timeout === undefined ? DEFAULT_TIMEOUT_S : parseDuration(w.timeout),
      retries: w.retries ?? DEFAULT_RETRIES,
    };
  });
}

/** What is wrong with one template of `notify`, if anything. */
function templateProblems(path: Path, text: string, vars: ReadonlySet<string>): Problem[] {
  const t = parseTemplate(text);
  if ("problems" in t) {
    return t.problems.map((p) => ({ path, at: "value", message: p.message, inner: p.offset }));
  }
  const out: Problem[] = [];
  for (const part of t.parts) {
    if (typeof part === "string") continue;
    const r = part.ref;
    let message: string | undefined;
    if (r.ns === "vars" && !vars.has(r.name)) {
      message = `unknown var "${r.name}"${didYouMean(r.name, vars)}` +
        (vars.size ? "" : " (the runbook has no vars)");
    } else if (r.ns === "steps") {
      message = `"\${{ steps.${r.name}.to }}" cannot be used in notify; ` +
        "use env.NAME, vars.NAME or run.id";
    }
    if (message) out.push({ path, at: "value", message, inner: part.offset });
  }
  return out;
}

/**
 * The load-time problems of a `notify` key whose shape is valid: its expressions (`vars` are the
 * runbook's var names), and a `url` written without expressions that is not an http(s) URL.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkNotify } from "./model.ts";
 * const problems = checkNotify([{ url: "https://h.example/${{ vars.chanel }}" }], ["channel"]);
 * assert.match(problems[0]!.message, /unknown var "chanel" \(did you mean "channel"\?\)/);
 * ```
 */
export function checkNotify(input: NotifyInput | undefined, vars: Iterable<string>): Problem[] {
  const names = new Set(vars);
  const problems: Problem[] = [];
  (input ?? []).forEach((w, i) => {
    problems.push(...templateProblems(["notify", i, "url"], w.url, names));
    if (!w.url.includes("${{")) {
      const problem = urlProblem(w.url);
      if (problem) problems.push({ path: ["notify", i, "url"], at: "value", message: problem });
    }
    for (const [k, v] of Object.entries(w.headers ?? {})) {
      problems.push(...templateProblems(["notify", i, "headers", k], v, names));
    }
  });
  return problems;
}

/**
 * Why `url` cannot be a webhook's address (undefined when it can). Never repeats the URL: it
 * may hold a secret.
 */
export function urlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "url: not a URL; write the full address, such as https://hooks.example.com/thaw";
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return `url: ${parsed.protocol.slice(0, -1)}: is not http or https; webhooks are POSTed ` +
      "over HTTP(S)";
  }
  return undefined;
}

/**
 * Gives problems at paths of the runbook in `text` their line and column.
 *
 * @returns the problems as positioned errors (all at 1:1 when the text does not parse).
 */
export function locate(file: string, text: string, problems: readonly Problem[]): RunbookError[] {
  const parsed = parseSource(file, text);
  if (!parsed.ok) return parsed.errors;
  const where = parsed.locator.locateAll(problems.map((p) => p.path));
  return problems.map((p) => {
    const loc = where.get(pathKey(p.path))!;
    let offset = p.at === "key" ? loc.key : loc.value;
    if (offset < 0) offset = 0;
    if (p.inner !== undefined && p.at === "value" && loc.literal) offset += p.inner;
    const { line, column } = parsed.locator.lines.position(offset);
    return new RunbookError(p.message, file, line, column);
  });
}
