/**
 * The lexer behind `renderCommand` (see `shell.ts`): it follows the quoting context of a `run`
 * command's literal text, character by character, and writes each substituted value as
 * `shell_quoting.ts` says for the place it stands in.
 *
 * @module
 */
import type { Reference, ReferencePart } from "./expressions.ts";
import { readerAfter } from "./shell_brace.ts";
import { type Context, EMPTY, type Quoting, quoting } from "./shell_quoting.ts";

/** A character of the template, or a reference. */
export type Item = string | ReferencePart;
type Bare = {
  kind: "bare";
  sub: boolean; // `$(...)`, which `)` closes
  parens: number;
  cases: number; // open `case`s, whose patterns end with `)`
  word: string; // the current word's plain characters; "\0" stands for anything else
  prev: string; // the previous word
  cmd: boolean; // the current word is in command position
  start: boolean; // at the start of a word
  openAt: number; // where `$(` or `<(` starts in the output
  wordAt: number; // where the current word starts in the output
  skips: [number, number][]; // substitutions in the output, which brace expansion passes over
};
type Param = { kind: "param"; quoted: boolean; head: 0 | 1 | 2 | 3 }; // head: where in `${#name[`
type Arith = { kind: "arith"; close: "))" | "]" | "}"; depth: number };
type Doc = {
  kind: "doc";
  delim: string;
  quoted: boolean;
  strip: boolean; // `<<-`
  lineStart: number; // where the current line starts in the output
  valueAt: number; // where the first value in the current line starts, or -1
  guard?: string; // expands to nothing there
  comsub: boolean; // in `$(...)`, where bash 5.2 also ends it at a line starting the delimiter and holding `)`
  cut?: number; // the item where such a line ends it
};
type Frame = Bare | Param | Arith | Doc | { kind: "dq" | "sq" | "ansi" | "psq" | "comment" };

const RESERVED = new Set(["then", "do", "else", "elif", "if", "while", "until", "!", "{", "time"]);

/** The quoting context of frame `f`. */
function contextOf(f: Frame): Context {
  if (f.kind === "bare" || (f.kind === "param" && !f.quoted)) return "bare";
  if (f.kind === "doc") return f.quoted ? "quoted-doc" : "doc";
  return f.kind;
}

/** Undoes shell quoting in a here-document's delimiter word. */
const unquote = (raw: string) =>
  raw.replace(/'([^']*)'|\\(.)|"/gs, (_, q?: string, e?: string) => q ?? e ?? "");

/** Renders `items` (a template's characters and references) as a command. */
export class Lexer {
  out = "";
  stack: Frame[] = [Lexer.bare(false)];
  esc = false;
  tail: "" | "$" | "name" = "";
  pending: { delim: string; quoted: boolean; strip: boolean }[] = [];
  cap: { frame: Bare; start: number; strip: boolean } | undefined;

  /** `doc`: the here-document around backquotes, whose lines the rendering must not end. */
  constructor(readonly items: Item[], readonly value: (ref: Reference) => string, doc?: Doc) {
    if (doc && !doc.quoted) this.stack.unshift({ ...doc, lineStart: 0, valueAt: -1, cut: -1 });
  }

  static bare(sub: boolean, openAt = 0): Bare {
    return {
      kind: "bare",
      sub,
      parens: 0,
      cases: 0,
      word: "",
      prev: "",
      cmd: true,
      start: true,
      openAt,
      wordAt: openAt,
      skips: [],
    };
  }
  get top(): Frame {
    return this.stack[this.stack.length - 1]!;
  }
  at(k: number): string {
    const x = this.items[k];
    return typeof x === "string" ? x : "";
  }
  /** Whether the current context is within a `${...}` (of the innermost command). */
  inParam(): boolean {
    return this.stack.slice(this.stack.findLastIndex((f) => f.kind === "bare"))
      .some((f) => f.kind === "param");
  }
  doc(): Doc | undefined {
    return this.stack.findLast((f): f is Doc => f.kind === "doc");
  }
  /** The innermost command's frame. */
  command(): Bare {
    return this.stack.findLast((f): f is Bare => f.kind === "bare")!;
  }

  run(): string {
    for (let i = 0; i < this.items.length; i++) {
      const it = this.items[i]!;
      if (typeof it !== "string") this.reference(it.ref);
      else i = this.char(it, i);
    }
    if (this.cap) this.finishCap();
    const h = this.doc();
    if (h) this.endLine(h);
    return this.out;
  }

  reference(ref: Reference): void {
    const v = this.value(ref);
    if (this.esc) this.out += "\\"; // a dangling backslash stands for itself
    else if (this.tail === "$") this.out += "{-+$}"; // so does a dangling "$"
    else if (this.tail === "name") this.out += EMPTY; // ends the name of "$name"
    this.esc = false;
    this.tail = "";
    if (this.cap && this.cap.start < 0) this.cap.start = this.out.length;
    const f = this.top;
    this.mark(f);
    if (f.kind === "param") f.head = 3;
    const cmd = this.command();
    const reader = readerAfter(this.out, cmd.wordAt, cmd.skips); // brace expansion, so far
    this.lines(quoting(contextOf(f), this.inParam(), reader), v);
  }

  /** Appends a value as `q` writes it, minding the lines of a here-document it stands in. */
  lines({ open, body, close, guard, joins: sqJoins }: Quoting, text: string): void {
    const h = this.doc();
    const lines = body(text).split("\n");
    this.out += open;
    lines.forEach((line, k) => {
      if (k) {
        if (h) this.endLine(h);
        this.out += "\n";
        if (h) [h.lineStart, h.valueAt] = [this.out.length, -1];
      }
      if (h && h.valueAt < 0) [h.valueAt, h.guard] = [this.out.length, guard];
      // in a here-document, bash joins a line ending in `\` to the next, even within '...'
      const joins = h && sqJoins && k < lines.length - 1 && line.endsWith("\\");
      this.out += joins ? line + "''" : line;
    });
    this.out += close;
  }

  /** Ends a line of a here-document: true when it is the delimiter (and no value is in it). */
  endLine(h: Doc): boolean {
    const full = this.out.slice(h.lineStart);
    const cont = !h.quoted && full.includes("\\\n");
    const forms = cont ? [full.replaceAll("\\\n", ""), ...full.split("\\\n")] : [full];
    const tabs = (l: string) => (h.strip ? /^\t*/.exec(l)![0].length : 0);
    const end = tabs(full) + h.delim.length;
    const exact = (l: string) =>
      l.startsWith(h.delim, tabs(l)) && l.length === tabs(l) + h.delim.length;
    const cut = (l: string) => h.comsub && l.startsWith(h.delim, tabs(l)) && l.includes(")");
    if (h.valueAt < 0) return exact(forms[0]!);
    if (!forms.some((l) => exact(l) || cut(l))) return false;
    if (h.guard === undefined || cont || (cut(full) && h.valueAt >= h.lineStart + end)) {
      throw new Error(`a value would end the here-document early: a line starting "${h.delim}"`);
    }
    this.out = this.out.slice(0, h.valueAt) + h.guard + this.out.slice(h.valueAt);
    return false;
  }

  /** At the start of a line of `h`: notes where bash 5.2 ends `h` early, if it does. */
  scanLine(h: Doc, i: number): void {
    let line = "", k = i + 1;
    for (; k < this.items.length && this.at(k) !== "\n"; k++) {
      if (!this.at(k)) break; // a value: `endLine` checks the rest
      if (this.at(k) === "\\" && this.at(k + 1) === "\n" && !h.quoted) k++;
      else line += this.at(k);
    }
    const tabs = h.strip ? /^\t*/.exec(line)![0].length : 0;
    const prefix = line.startsWith(h.delim, tabs) && line.length > tabs + h.delim.length;
    if (h.comsub && prefix && line.includes(")")) h.cut = i + 1 + tabs + h.delim.length;
  }

  finishCap(): void {
    const cap = this.cap!;
    this.cap = undefined;
    if (cap.start < 0) return;
    const raw = this.out.slice(cap.start);
    this.pending.push({ delim: unquote(raw), quoted: /['"\\]/.test(raw), strip: cap.strip });
  }

  /** Lexes the character `c` at `i`; returns the index of the last item consumed. */
  char(c: string, i: number): number {
    const d = this.doc();
    if (d?.cut === i && d !== this.stack[0]) this.stack.length = this.stack.indexOf(d);
    let f = this.top;
    if (this.esc) {
      this.esc = false;
      if (c !== "\n") this.mark(f);
      return this.put(c, i);
    }
    const tail = this.tail;
    this.tail = "";
    if (tail && (/[A-Za-z_]/.test(c) || (tail === "name" && /\d/.test(c)))) this.tail = "name";
    const cap = this.cap;
    if (cap && f === cap.frame && /[\s;&|()<>]/.test(c)) {
      if (cap.start >= 0 || !/[ \t]/.test(c)) this.finishCap(); // blanks may precede the word
    } else if (cap && cap.start < 0) cap.start = this.out.length;
    if (c !== "\n") return this.dispatch(f, c, i);
    if (f.kind === "comment") this.stack.pop(), f = this.top;
    const h = this.doc();
    const ends = h !== undefined && this.endLine(h) && h !== this.stack[0];
    if (ends) this.stack.length = this.stack.indexOf(h);
    if (ends) this.command().wordAt = this.out.length + 1; // after the delimiter's line
    i = ends ? this.put(c, i) : this.dispatch(f, c, i);
    const next = this.doc(); // after a delimiter, the next here-document starts
    if (next && (ends || next === h)) [next.lineStart, next.valueAt] = [this.out.length, -1];
    if (next) this.scanLine(next, i);
    return i;
  }

  put(text: string, i: number): number {
    this.out += text;
    return i;
  }

  /** Notes that the current bare word holds more than plain characters. */
  mark(f: Frame): void {
    if (f.kind === "bare") [f.start, f.word] = [false, f.word + "\0"];
  }

  dispatch(f: Frame, c: string, i: number): number {
    if (f.kind === "bare") {
      const end = this.bareChar(f, c, i);
      if (/[\s;&|()<>]/.test(c)) f.wordAt = this.out.length; // a new word starts
      return end;
    }
    if (f.kind === "param") return this.paramChar(f, c, i);
    if (f.kind === "arith") {
      if (c === { "))": "(", "]": "[", "}": "{" }[f.close]) f.depth++;
      else if (c !== f.close[0]) return this.expansion(f, c, i);
      else if (f.depth) f.depth--;
      else if (this.stack.pop() && f.close === "))" && this.at(i + 1) === ")") {
        return this.put("))", i + 1);
      } else if (f.close === "}") this.stack.pop(); // ends the `${name:...}` too
      return this.put(c, i);
    }
    if (f.kind === "comment" || (f.kind === "doc" && f.quoted)) return this.put(c, i);
    if (f.kind === "doc" || (f.kind === "dq" && c !== '"')) return this.expansion(f, c, i);
    if (f.kind === "dq") this.stack.pop();
    // in `sq`, `ansi`, `psq`: bash pairs the quotes of `psq` minding no backslash, but expands in it
    else if (c === "'") this.stack.pop();
    else if (c === "\\") {
      this.esc = f.kind === "ansi" || (f.kind === "psq" && this.at(i + 1) !== "'");
    } else if (f.kind === "psq") return this.expansion(f, c, i);
    return this.put(c, i);
  }

  /** `\`, `$...` and backquotes, where they are special; anything else is plain. */
  expansion(f: Frame, c: string, i: number): number {
    if (c === "`") return this.backquote(f, i);
    if (c === "$") return this.dollar(f, i);
    if (c === "\\") this.esc = true;
    return this.put(c, i);
  }

  dollar(f: Frame, i: number): number {
    const n = this.at(i + 1);
    const quoted = !(f.kind === "bare" || (f.kind === "param" && !f.quoted));
    const push = (fr: Frame | undefined, text: string) => {
      if (fr) this.stack.push(fr);
      return this.put(text, i + text.length - 1);
    };
    if (!quoted && n === "'") return push({ kind: "ansi" }, "$'");
    if (!quoted && n === '"') return push({ kind: "dq" }, '$"');
    if (n === "(" && this.at(i + 2) === "(") return push(arith("))"), "$((");
    if (n === "(") return push(Lexer.bare(true, this.out.length), "$(");
    if (n === "{") return push({ kind: "param", quoted, head: 0 }, "${");
    if (n === "[") return push(arith("]"), "$[");
    if (/[$@*#?!\-\d]/.test(n)) return push(undefined, "$" + n); // `$$`, `$#`, `$1`...
    this.tail = "$";
    return this.put("$", i);
  }

  /** A backquoted command: rendered on its own, then escaped for the backquotes around it. */
  backquote(f: Frame, i: number): number {
    // bash removes the backslash of `\"` only when the backquotes stand in "..." outside ${...}
    const inDq = f.kind === "dq" && !this.inParam();
    let j = i + 1;
    while (j < this.items.length && this.at(j) !== "`") j += this.at(j) === "\\" ? 2 : 1;
    const inner: Item[] = [];
    for (let k = i + 1; k < Math.min(j, this.items.length); k++) {
      const n = this.at(k + 1);
      const unescape = this.at(k) === "\\" && n && (/[\\`$]/.test(n) || (inDq && n === '"'));
      inner.push(unescape ? this.items[++k]! : this.items[k]!);
    }
    const text = new Lexer(inner, this.value, this.doc()).run();
    this.mark(f);
    const enc = text.replace(inDq ? /[\\`$"]/g : /[\\`$]/g, "\\$&");
    this.lines({ open: "`", body: (s) => s, close: j < this.items.length ? "`" : "" }, enc);
    return j;
  }

  paramChar(f: Param, c: string, i: number): number {
    if (f.head < 3 && c !== "}") {
      const name = f.head < 2 && /\w/.test(c);
      const special = f.head === 0 && /[@*?$-]/.test(c);
      const sub = c === "[" || (c === ":" && !/[-=?+]/.test(this.at(i + 1)));
      if (sub) this.stack.push(arith(c === "[" ? "]" : "}"));
      if (name || special || sub || (f.head === 0 && /[#!]/.test(c))) {
        f.head = name ? 1 : special || c === "[" ? 2 : c === ":" ? 3 : f.head;
        return this.put(c, i);
      }
      f.head = 3;
    }
    if (c === "}") this.stack.pop();
    // bash pairs `'` in "${...}", other shells do not: without a pair, bash fails, so follow them
    else if (c === "'" && f.quoted && !this.items.includes("'", i + 1)) return this.put(c, i);
    else if (c === "'") this.stack.push({ kind: f.quoted ? "psq" : "sq" });
    else if (c === '"') this.stack.push({ kind: "dq" });
    else return this.expansion(f, c, i);
    return this.put(c, i);
  }

  bareChar(f: Bare, c: string, i: number): number {
    const n = this.at(i + 1);
    if (/[\s;&|()<>]/.test(c)) this.endWord(f);
    if (c === "\n") {
      f.cmd = true;
      this.out += c;
      for (const p of this.pending.reverse()) {
        const comsub = this.stack.some((f) => f.kind === "bare" && f.sub);
        this.stack.push({ kind: "doc", ...p, lineStart: this.out.length, valueAt: -1, comsub });
      }
      this.pending = [];
      return i;
    }
    if (c === "<" && n === "<") {
      const here = this.at(i + 2) !== "<";
      const strip = here && this.at(i + 2) === "-";
      if (here) this.cap = { frame: f, start: -1, strip };
      return this.put(here ? (strip ? "<<-" : "<<") : "<<<", i + (strip || !here ? 2 : 1));
    }
    if ((c === "<" || c === ">") && n === "(") { // a process substitution: parsed as `$(...)`
      this.stack.push(Lexer.bare(true, this.out.length));
      return this.put(c + n, i + 1);
    }
    if (c === "(" && n === "(" && f.start && (f.cmd || f.prev === "for")) {
      this.stack.push(arith("))"));
      return this.put("((", i + 1);
    }
    if (c === "\\" || c === "$" || c === "`") return this.mark(f), this.expansion(f, c, i);
    if (c === "#" && f.start) this.stack.push({ kind: "comment" });
    else if (c === ")" && f.sub && !f.parens && !f.cases) {
      this.stack.pop();
      this.command().skips.push([f.openAt, this.out.length + 1]); // passed over whole
    } else if (c === "(" || c === ")") f.parens = Math.max(0, f.parens + (c === "(" ? 1 : -1));
    else if (c === "'" || c === '"') this.stack.push({ kind: c === "'" ? "sq" : "dq" });
    else if (c === "[" && /^[A-Za-z_]\w*$/.test(f.word)) this.stack.push(arith("]"));
    else if (!/[\s<>;&|]/.test(c)) [f.start, f.word] = [false, f.word + c];
    if (/['"[]/.test(c)) this.mark(f);
    if (/[;&|()]/.test(c)) f.cmd = true;
    return this.put(c, i);
  }

  endWord(f: Bare): void {
    f.start = true;
    if (!f.word) return;
    if (f.cmd && f.word === "case") f.cases++;
    if (f.cmd && f.word === "esac" && f.cases) f.cases--;
    [f.cmd, f.prev, f.word] = [RESERVED.has(f.word), f.word, ""];
  }
}

const arith = (close: Arith["close"]): Arith => ({ kind: "arith", close, depth: 0 });
