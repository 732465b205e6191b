/**
 * A model of how bash's brace expansion reads a word, so that a substituted value can never add
 * a brace expression (`{touch,/tmp/x}`) to a command.
 *
 * Brace expansion runs on the raw text of a word before any other expansion, with a quoting
 * model much cruder than the parser's (bash's `brace_gobbler`): a `"`, `'` or `` ` `` opens a
 * quote that the same character closes, a backslash hides the next character (except inside
 * `'...'`), `${` is passed over like `\{` (and nests one level when unquoted), and `$(`, `<(` and
 * `>(` are skipped whole. Inside `"${x:-...}"` that model and the parser disagree: a value the
 * parser reads inside `"..."` may be unquoted to brace expansion. {@linkcode BraceReader} follows
 * the model character by character; the quoting in `shell_quoting.ts` asks it, for each `{`, `}`,
 * `,` and `.` of a value, whether brace expansion would see it, and writes it another way if so.
 *
 * @module
 */

/** The characters of a value that brace expansion must never see: `{a,b}`, `{1..9}`. */
export const BRACE_CHARS = new Set(["{", "}", ",", "."]);

/** Where bash's brace expansion stands in a word. */
export class BraceReader {
  /** The open quote (`"`, `'` or `` ` ``), or "" outside quotes. */
  quoted: "" | '"' | "'" | "`" = "";
  /** Unquoted `${` and `{` not yet closed. */
  level = 0;
  /** The previous character was a backslash (or the `{` of `${` comes next). */
  pass = false;

  /** A copy, to try a text without reading it. */
  clone(): BraceReader {
    return Object.assign(new BraceReader(), this);
  }

  /**
   * Reads `text`; true when brace expansion sees one of {@linkcode BRACE_CHARS} in it, unquoted
   * and unescaped.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BraceReader } from "./shell_brace.ts";
   * const r = new BraceReader();
   * assert.equal(r.read('"${x:-'), false);
   * assert.equal(r.clone().read('"{a,b}"'), true); // the parser quotes it, brace expansion does not
   * assert.equal(r.clone().read("{a,b\\}"), false);
   * ```
   */
  read(text: string): boolean {
    let seen = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (this.pass) {
        this.pass = false;
        continue;
      }
      if (c === "\\" && this.quoted !== "'") {
        this.pass = true;
        continue;
      }
      if (c === "$" && text[i + 1] === "{" && this.quoted !== "'") {
        this.pass = true;
        if (this.quoted === "") this.level++;
        continue;
      }
      if (this.quoted !== "") {
        if (c === this.quoted) this.quoted = "";
        continue;
      }
      if (c === '"' || c === "'" || c === "`") {
        this.quoted = c;
        continue;
      }
      if (!BRACE_CHARS.has(c)) continue;
      seen = true;
      if (c === "{") this.level++;
      else if (c === "}" && this.level) this.level--;
    }
    return seen;
  }
}

/**
 * The reader at the end of `text`, the word so far, without the ranges in `skips` (command and
 * process substitutions, which brace expansion passes over whole).
 */
export function readerAfter(text: string, from: number, skips: readonly [number, number][]) {
  const r = new BraceReader();
  let at = from;
  for (const [start, end] of skips) {
    if (end <= at) continue;
    if (start > at) r.read(text.slice(at, start));
    at = Math.max(at, end);
  }
  r.read(text.slice(at));
  return r;
}
