/**
 * Substituting `${{ ... }}` values into shell commands, quoted for the place each one stands in.
 *
 * {@linkcode renderCommand} runs a small lexer over the literal text of a `run` command to know
 * the quoting context at each reference, then writes the value so that the shell reads it back as
 * exactly that text, never as syntax. The lexer follows bash, the engine's shell:
 *
 * - **Bare** (also in `${x:-...}` outside quotes): one single-quoted word, each `'` written `'\''`
 *   (each character backslash-escaped where brace expansion stands inside a quote there);
 *   the empty value is `''`. Glued to other text (`--root=${{ vars.root }}/x`) it stays one word.
 *   In a comment (`#` starting a bare word) the same, with newlines as `'$'\n''`, so that the
 *   comment stays on its line.
 * - **Brace expansion** (bash) reads a word with a cruder quoting model than the parser: inside
 *   `"${x:-...}"` it may see a value's `{`, `}`, `,` or `.` unquoted and turn `{touch,/tmp/x}` into
 *   two words. Every value's brace characters are written where brace expansion sees them quoted
 *   or escaped (`shell_brace.ts` models it); in `"${x:-...}"` that can mean `"/srv/db".dump`.
 * - **Double quotes** and **unquoted here-documents**: `\`, `$`, `` ` `` (and `"` in double quotes)
 *   get a backslash; newlines stay. Directly in `${...}` within double quotes or a here-document,
 *   letters, digits and `_:=@+-` stand as they are, `}` as `\}`, the rest in inner `"..."` with
 *   those escapes (bash pairs `'` there, and takes `<(` for a process substitution: `<(` is written
 *   `<${-:+}(`); a first character that could join the operator (`${x,,}`) follows a `${-:+}`.
 *   In `'...'` within such a `${...}`, which bash pairs (minding no backslash) yet expands inside
 *   and keeps in the value, `'` is written `$(printf \\047)`.
 * - **Single quotes**: each `'` is written `'\''`. In **`$'...'`**, `\` is written `\\` and `'` is
 *   written `'\'$'` (which `sh`, lacking `$'...'`, also reads safely).
 * - **Arithmetic** (`$((...))`, `((...))`, `for ((...))`, `$[...]`, the subscript in `name[...]`
 *   and `${name[...]}`, the offset in `${name:...}`): bash expands `$(...)` there even inside
 *   `'...'`, so every character but letters, digits, `_.+-` and non-ASCII gets a backslash and
 *   newlines are dropped: a number stays a number, anything else is an arithmetic error.
 * - `$(...)` and `` `...` `` open a fresh bare context at any depth, in double quotes too. The text
 *   in backquotes is rendered on its own, then escaped for the backquotes around it.
 * - Text that would change what a value means is neutralized: a dangling `\` before a reference
 *   becomes `\\` (a literal backslash), a dangling `$` becomes `${-+$}` (a literal `$`), and
 *   `$name` right before a reference is ended with `${-:+}` (which expands to nothing).
 * - A here-document ends at a line equal to its delimiter (in `$(...)`, bash 5.2 ends it also at a
 *   line starting with the delimiter and holding a `)`). If a value would form such a line, a
 *   `${-:+}` goes into it before the delimiter; where nothing can (a quoted here-document like
 *   `<<'EOF'`, a line the template starts with the delimiter), `renderCommand` throws: the one
 *   case it refuses.
 *
 * The lexer is in `shell_lexer.ts`, the writing of values in `shell_quoting.ts`.
 *
 * Unknown text is plain text of its context; nothing is rejected. POSIX `sh` reads all of this the
 * same, except bash-only syntax (`$'...'`, `$[...]`, `((...))`, arrays, a here-document in `$(...)`
 * ended by a line like `EOF)`) and `'` within `"${...}"`, which `sh` takes literally: keep those out
 * of commands run by `sh`. Quoting keeps a value one literal word; it cannot stop a command that
 * runs its arguments as code (`eval`, `bash -c`, `ssh host cmd`, bash's `[[ x -eq y ]]`, `let`).
 *
 * @module
 */
import type { Reference, Template } from "./expressions.ts";
import { type Item, Lexer } from "./shell_lexer.ts";
import { sq } from "./shell_quoting.ts";

/**
 * Quotes `value` as one literal shell word: `'...'`, each `'` written `'\''`.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { shellQuote } from "./shell.ts";
 * equal(shellQuote("it's"), "'it'\\''s'");
 * equal(shellQuote(""), "''");
 * ```
 */
export function shellQuote(value: string): string {
  return `'${sq(value)}'`;
}

/**
 * Renders a `run` command: literal text as written, each reference quoted for where it stands.
 * Throws an `Error` only when a value would end a here-document early and nothing can prevent it.
 *
 * @example
 * ```ts
 * import { equal } from "node:assert/strict";
 * import { parseTemplate } from "./expressions.ts";
 * import { renderCommand } from "./shell.ts";
 * const t = parseTemplate(`pg_restore "\${{ vars.root }}/db.dump" --role=\${{ vars.role }}`);
 * if (!("parts" in t)) throw new Error("bad template");
 * const values: Record<string, string> = { root: "/srv/$HOME", role: "it's; rm" };
 * const cmd = renderCommand(t, (ref) => values[ref.name] ?? "");
 * equal(cmd, `pg_restore "/srv/\\$HOME/db.dump" --role='it'\\''s; rm'`);
 * ```
 */
export function renderCommand(template: Template, value: (ref: Reference) => string): string {
  const items: Item[] = [];
  for (const p of template.parts) typeof p === "string" ? items.push(...p) : items.push(p);
  return new Lexer(items, value).run();
}
