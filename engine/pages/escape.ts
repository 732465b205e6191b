/**
 * Escaping for the pages thaw draws: every string a runbook or a run provides (step ids, details,
 * names) goes through one of these before it reaches HTML, SVG or an inline script.
 *
 * @module
 */

const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Text safe in HTML or SVG content and in quoted attribute values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { esc } from "./escape.ts";
 * assert.equal(esc(`<b title="x">&'`), "&lt;b title=&quot;x&quot;&gt;&amp;&#39;");
 * ```
 */
export function esc(text: unknown): string {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/**
 * JSON safe inside `<script type="application/json">`: no `<` (so no `</script>`), and no line
 * separators a JavaScript parser would choke on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scriptJson } from "./escape.ts";
 * const text = scriptJson({ id: "</script><b>" });
 * assert(!text.includes("<"));
 * assert.equal(JSON.parse(text).id, "</script><b>");
 * ```
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}
