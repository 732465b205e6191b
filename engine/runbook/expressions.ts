/**
 * `${{ ... }}` expressions in runbook strings.
 *
 * Four forms exist: `vars.NAME`, `env.NAME`, `steps.ID.to` (a fetch step's destination) and
 * `run.id`. A template is parsed once, at load time, into literal text and references.
 *
 * @module
 */

/** A reference inside a template. */
export type Reference =
  | { ns: "vars" | "env"; name: string }
  | { ns: "steps"; name: string; field: "to" }
  | { ns: "run"; name: "id" };

/** A parsed template: literal text alternating with references. */
export interface Template {
  /** The text as written. */
  readonly source: string;
  /** Literal parts and references in order. */
  readonly parts: readonly (string | ReferencePart)[];
}

/** A reference and where it stands in the template's text. */
export interface ReferencePart {
  readonly ref: Reference;
  /** Offset of `${{` in the template. */
  readonly offset: number;
  /** Length of the whole `${{ ... }}`. */
  readonly length: number;
}

/** A problem in a template, at an offset in its text. */
export interface ExpressionProblem {
  readonly message: string;
  readonly offset: number;
}

const NAME = String.raw`[A-Za-z_][A-Za-z0-9_-]*`;
const FORMS: [RegExp, (m: RegExpExecArray) => Reference][] = [
  [new RegExp(`^(vars|env)\\.(${NAME})$`), (m) => ({ ns: m[1] as "vars", name: m[2]! })],
  [/^steps\.([a-z0-9][a-z0-9_-]*)\.to$/, (m) => ({ ns: "steps", name: m[1]!, field: "to" })],
  [/^run\.id$/, () => ({ ns: "run", name: "id" })],
];
const HINT = "expected vars.NAME, env.NAME, steps.ID.to or run.id";

/**
 * Parses `text` into a template, or returns the problems in it.
 *
 * @example
 * ```ts
 * import { parseTemplate } from "./expressions.ts";
 * import assert from "node:assert/strict";
 * const t = parseTemplate("${{ vars.root }}/db.dump");
 * assert("parts" in t);
 * assert.equal(t.parts.length, 2);
 * ```
 */
export function parseTemplate(text: string): Template | { problems: ExpressionProblem[] } {
  const parts: (string | ReferencePart)[] = [];
  const problems: ExpressionProblem[] = [];
  let at = 0;
  for (let open = text.indexOf("${{"); open >= 0; open = text.indexOf("${{", at)) {
    if (open > at) parts.push(text.slice(at, open));
    const close = text.indexOf("}}", open + 3);
    if (close < 0) {
      problems.push({ offset: open, message: `unclosed "\${{" (missing "}}")` });
      at = text.length;
      break;
    }
    const inner = text.slice(open + 3, close).trim();
    const form = FORMS.map(([re, make]) => {
      const m = re.exec(inner);
      return m ? make(m) : undefined;
    }).find((r) => r !== undefined);
    if (form) {
      parts.push({ ref: form, offset: open, length: close + 2 - open });
    } else {
      const shown = inner.length > 40 ? inner.slice(0, 40) + "..." : inner;
      const steps = /^steps\.([^.\s]+)\.(\S+)$/.exec(inner);
      problems.push({
        offset: open,
        message: steps
          ? `unknown field "${steps[2]}" in "\${{ ${shown} }}": a step offers only .to`
          : `unknown expression "\${{ ${shown} }}": ${HINT}`,
      });
    }
    at = close + 2;
  }
  if (at < text.length) parts.push(text.slice(at));
  return problems.length ? { problems } : { source: text, parts };
}

/** True when `text` holds an expression. */
export function hasExpression(text: string): boolean {
  return text.includes("${{");
}

/**
 * Replaces the references in `template` with their values, as plain text.
 *
 * @example
 * ```ts
 * import { parseTemplate, renderTemplate } from "./expressions.ts";
 * import assert from "node:assert/strict";
 * const t = parseTemplate("${{ vars.root }}/x");
 * assert("parts" in t);
 * assert(renderTemplate(t, (r) => r.name === "root" ? "/r" : "") === "/r/x");
 * ```
 */
export function renderTemplate(template: Template, value: (ref: Reference) => string): string {
  let out = "";
  for (const p of template.parts) out += typeof p === "string" ? p : value(p.ref);
  return out;
}
