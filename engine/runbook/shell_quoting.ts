/**
 * How a substituted value is written in each quoting context of a `run` command (see
 * `shell.ts` for the contexts): text the shell reads back as exactly the value, where brace
 * expansion (modelled by {@linkcode BraceReader}) never sees a `{`, `}`, `,` or `.` of it.
 *
 * @module
 */
import { BRACE_CHARS, BraceReader } from "./shell_brace.ts";

/** Expands to nothing, in every shell: ends a name, guards a line. */
export const EMPTY = "${-:+}";

/** The quoting contexts a value can stand in. */
export type Context =
  | "bare" // also `${x:-...}` outside double quotes
  | "param" // directly in `${...}` within double quotes or a here-document
  | "dq" // in "..." (`inParam`: within a `${...}`)
  | "psq" // in '...' within "${...}", which bash pairs yet expands inside
  | "sq"
  | "ansi" // $'...'
  | "arith"
  | "doc" // an unquoted here-document
  | "quoted-doc"
  | "comment";

/** How a value is written in a context: opening text, the value, closing text, a guard. */
export interface Quoting {
  readonly open: string;
  readonly body: (value: string) => string;
  readonly close: string;
  /** Expands to nothing where the value stands (to keep a here-document's line from ending it). */
  readonly guard?: string;
  /** A line of the value ending in `\` is joined to the next by a here-document around it. */
  readonly joins?: boolean;
}

/** `\`, `"`, `$` and `` ` `` escaped, as in double quotes. */
export const dq = (s: string) => s.replace(/[\\"$`]/g, "\\$&");
/** Each `'` written `'\''`, as in single quotes. */
export const sq = (s: string) => s.replaceAll("'", "'\\''");
// bash's parser takes `<(` inside `${...}` for a process substitution, even within "..."
const dqp = (s: string) => dq(s).replace(/[<>]\(/g, (m) => m[0] + EMPTY + "(");
const arithmetic = (s: string) =>
  s.replaceAll("\n", "").replace(/[^\w.+\-\u0080-\u{10FFFF}]/gu, "\\$&");
const ansi = (s: string) => s.replaceAll("\\", "\\\\").replaceAll("'", () => "'\\'$'");
/**
 * A character as the output of `printf` (`$(printf \\047)` for `'`): for `'...'` within
 * `"${x:-...}"`, where bash pairs the quotes minding no backslash, and keeps them in the value.
 */
const octal = (c: string) => `$(printf \\\\${c.charCodeAt(0).toString(8).padStart(3, "0")})`;
/** Characters written as they are directly in `"${x:-...}"`, outside inner quotes. */
const WORD_SAFE = /^[A-Za-z0-9_:=@+-]$/;

/** The value's characters, with `<(` and `>(` kept together (they need a guard in `${...}`). */
function units(s: string): string[] {
  return s.match(/[<>]\(|[\s\S]/gu) ?? [];
}

/**
 * Writes `value` one character at a time: `plain(c)`, or `hide(c)` for a `{`, `}`, `,` or `.`
 * that brace expansion would see written plainly. `reader` follows what is written.
 */
function guarded(
  value: string,
  reader: BraceReader,
  plain: (c: string) => string,
  hide: (c: string) => string,
): string {
  let out = "";
  for (const c of units(value)) {
    let text = plain(c);
    if (BRACE_CHARS.has(c) && reader.clone().read(text)) text = hide(c);
    reader.read(text);
    out += text;
  }
  return out;
}

/** A bare word, each character escaped (a newline quoted): hidden from brace expansion in any state. */
function escapeEach(value: string): string {
  if (value === "") return "''";
  return value.replace(/[\s\S]/gu, (c) => (c === "\n" ? '"\n"' : "\\" + c));
}

/**
 * Directly in `"${x:-...}"`: characters that mean nothing there as they are, `}` as `\}`, the
 * rest in inner double quotes (bash pairs `'` there; quoted, a pattern is literal), and each
 * `{`, `}`, `,` and `.` where brace expansion is inside a quote.
 */
function param(value: string, reader: BraceReader): string {
  let out = "";
  let inner = false;
  const put = (text: string) => {
    reader.read(text);
    out += text;
  };
  for (const [k, c] of units(value).entries()) {
    const brace = BRACE_CHARS.has(c);
    const here = brace ? (inner ? c : c === "}" ? "\\}" : c) : "";
    // Brace expansion reads a `"` as opening where the parser closes one, or the other way round.
    const toggle = brace && reader.clone().read(here);
    const atWord = brace ? inner === toggle : !inner && WORD_SAFE.test(c);
    // A first `,` or `%` written as it is would change the operator before it (`${x,,}`).
    if (k === 0 && atWord && !/^\w$/.test(c)) put(EMPTY);
    if (brace) {
      if (toggle) put('"'), inner = !inner;
      put(inner ? c : c === "}" ? "\\}" : c);
    } else if (atWord) put(c);
    else {
      if (!inner) put('"');
      inner = true;
      put(dqp(c));
    }
  }
  if (inner) put('"');
  return out === "" ? '""' : out;
}

/**
 * The quoting of `context` for a value; `reader` is brace expansion's state where it starts (in
 * the word around it).
 */
export function quoting(context: Context, inParam: boolean, reader: BraceReader): Quoting {
  const closeAround = (c: string) => `"${c === "}" ? "\\}" : c}"`;
  switch (context) {
    case "bare":
      // `'...'`, unless brace expansion stands in a quote here: then each character escaped.
      return reader.quoted === ""
        ? { open: "'", body: sq, close: "'", guard: `'${EMPTY}'`, joins: true }
        : { open: "", body: escapeEach, close: "", guard: EMPTY };
    case "param":
      return { open: "", body: (v) => param(v, reader), close: "", guard: EMPTY };
    case "dq":
      return {
        open: "",
        body: (v) => guarded(v, reader, inParam ? dqp : dq, closeAround),
        close: "",
        guard: EMPTY,
      };
    case "psq":
      return {
        open: "",
        body: (v) => guarded(v, reader, (c) => (c === "'" ? octal(c) : dq(c)), octal),
        close: "",
        guard: EMPTY,
      };
    case "sq":
      return {
        open: "",
        body: (v) => guarded(v, reader, sq, (c) => `'"${c}"'`),
        close: "",
        guard: `'${EMPTY}'`,
        joins: true,
      };
    case "ansi":
      return {
        open: "",
        body: (v) => guarded(v, reader, ansi, (c) => `'"${c}"$'`),
        close: "",
        guard: `'${EMPTY}$'`,
      };
    case "arith":
      return { open: "", body: arithmetic, close: "" };
    case "quoted-doc":
      return { open: "", body: (s) => s, close: "" };
    case "doc":
      return { open: "", body: (s) => s.replace(/[\\$`]/g, "\\$&"), close: "", guard: EMPTY };
    case "comment":
      return { open: "'", body: (s) => sq(s).replaceAll("\n", () => "'$'\\n''"), close: "'" };
  }
}
