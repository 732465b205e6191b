/**
 * Reading a runbook file into a plain value, keeping enough of the YAML to point at any key or
 * value later.
 *
 * js-yaml's event parser is fast (a 100,000-step runbook in about half a second) and its events
 * carry source offsets. Validation works on the plain value; only when something is wrong does
 * {@link Locator} walk the events again to find where each problem is, so the happy path pays
 * nothing for exact positions.
 *
 * @module
 */
import { constructFromEvents, type Event, getScalarValue, parseEvents } from "js-yaml";
import { RunbookError } from "./errors.ts";

/** A path into the document: mapping keys and sequence indexes. */
export type Path = readonly (string | number)[];

/** Deepest nesting a runbook may have; the format needs six. */
const MAX_DEPTH = 64;

/** The result of reading a YAML text: the value and a locator, or the problems. */
export type ParsedSource =
  | { ok: true; value: unknown; locator: Locator }
  | { ok: false; errors: RunbookError[] };

/**
 * Parses `text` (the contents of `file`) as a single YAML document.
 *
 * Never throws for bad input: a binary file, an empty file, a syntax error or a document nested
 * too deep all come back as positioned errors.
 *
 * @example
 * ```ts
 * import { parseSource } from "./source.ts";
 * import assert from "node:assert/strict";
 * const r = parseSource("x.yaml", "a: [1, 2");
 * assert(!r.ok);
 * assert.equal(r.errors[0]!.line, 1);
 * ```
 */
export function parseSource(file: string, text: string): ParsedSource {
  const fail = (reason: string, offset = 0): ParsedSource => {
    const { line, column } = new LineIndex(text).position(offset);
    return { ok: false, errors: [new RunbookError(reason, file, line, column)] };
  };
  const nul = text.indexOf("\0");
  if (nul >= 0 || text.includes("\uFFFD")) {
    return fail("not a text file (binary data); a runbook is UTF-8 YAML", Math.max(0, nul));
  }
  if (text.trim() === "") {
    return fail("empty file: a runbook needs at least `runbook: 1`, `name` and `steps`");
  }
  let events: Event[];
  try {
    events = parseEvents(text, { maxDepth: MAX_DEPTH });
  } catch (e) {
    return yamlError(file, text, e);
  }
  const documents = events.filter((e) => e.type === 1).length;
  if (documents !== 1) {
    if (documents === 0) return fail("empty file: the YAML holds only comments");
    const second = findDocument(events, 1);
    return fail(
      `a runbook file holds one YAML document, this one holds ${documents}`,
      second,
    );
  }
  let value: unknown;
  try {
    value = constructFromEvents(events, { source: text, filename: file, maxAliases: 1000 })[0];
  } catch (e) {
    return yamlError(file, text, e);
  }
  return { ok: true, value, locator: new Locator(text, events) };
}

function findDocument(events: Event[], n: number): number {
  let seen = -1;
  for (let i = 0; i < events.length; i++) {
    if (events[i]!.type === 1 && ++seen === n) {
      const next = events[i + 1];
      if (next && "start" in next) return next.start;
      if (next && "valueStart" in next) return Math.max(0, next.valueStart);
    }
  }
  return 0;
}

function yamlError(file: string, text: string, e: unknown): ParsedSource {
  const err = e as { reason?: string; message?: string; mark?: { position?: number } };
  let reason = err.reason ?? String(err.message ?? e).split("\n")[0]!;
  let at = err.mark?.position ?? 0;
  if (/maxDepth/.test(reason)) reason = `nested more than ${MAX_DEPTH} levels deep`;
  else if (reason === "duplicated mapping key") reason = "duplicate key";
  else if (/maxAliases/.test(reason)) reason = "too many aliases (*name): at most 1000";
  else if (
    /flow collection|end of the stream|indentation|quoted scalar|missed comma/.test(reason)
  ) {
    // The parser notices late; point at the bracket or quote that was never closed.
    const open = unclosed(text, Math.min(at, text.length));
    if (open) {
      at = open.offset;
      reason = open.char === '"' || open.char === "'"
        ? `unclosed quoted string (missing the closing ${open.char})`
        : `unclosed "${open.char}" (missing "${open.char === "[" ? "]" : "}"}")`;
    }
  }
  const { line, column } = new LineIndex(text).position(at);
  return { ok: false, errors: [new RunbookError(`invalid YAML: ${reason}`, file, line, column)] };
}

/**
 * The bracket or quote opened before `end` and not closed, if any, by a rough scan that knows
 * where YAML lets a flow collection or a quoted scalar begin.
 */
function unclosed(text: string, end: number): { char: string; offset: number } | undefined {
  const stack: { char: string; offset: number }[] = [];
  let quote: { char: string; offset: number } | undefined;
  let lastSignificant = "\n";
  for (let i = 0; i < end; i++) {
    const c = text[i]!;
    if (quote) {
      if (quote.char === '"' && c === "\\") i++;
      else if (c === quote.char) {
        if (c === "'" && text[i + 1] === "'") i++;
        else {
          quote = undefined;
          lastSignificant = "x";
        }
      }
      continue;
    }
    if (c === "#" && (i === 0 || /\s/.test(text[i - 1]!))) {
      while (i < end && text[i] !== "\n") i++;
      lastSignificant = "\n";
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") continue;
    const canStart = "\n[{,:-?".includes(lastSignificant);
    if ((c === '"' || c === "'") && canStart) quote = { char: c, offset: i };
    else if ((c === "[" || c === "{") && canStart) stack.push({ char: c, offset: i });
    else if ((c === "]" || c === "}") && stack.length) stack.pop();
    lastSignificant = c === ":" || c === "-" ? (/\s/.test(text[i + 1] ?? " ") ? c : "x") : c;
  }
  return quote ?? stack[stack.length - 1];
}

/** Turns offsets into 1-based line and column. */
export class LineIndex {
  #starts: number[] | undefined;
  readonly #text: string;

  /** Indexes `text` (lazily, on the first lookup). */
  constructor(text: string) {
    this.#text = text;
  }

  /** The 1-based line and column of `offset`. */
  position(offset: number): { line: number; column: number } {
    if (!this.#starts) {
      const starts = [0];
      const t = this.#text;
      for (let i = t.indexOf("\n"); i >= 0; i = t.indexOf("\n", i + 1)) starts.push(i + 1);
      this.#starts = starts;
    }
    const starts = this.#starts;
    let lo = 0, hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - starts[lo]! + 1 };
  }
}

/** Where a key or value stands in the source. */
export interface Location {
  /** Offset of the key (for mapping entries) or of the item (for sequence items). */
  key: number;
  /** Offset of the value; for an empty value, the key's offset. */
  value: number;
  /** The raw source text of a scalar value (between quotes for quoted ones). */
  raw?: string;
  /** True when `raw` is exactly the parsed value, so offsets inside it are exact. */
  literal?: boolean;
}

interface Frame {
  kind: "map" | "seq";
  index: number;
  expectKey: boolean;
  key: string | number;
  keyOffset: number;
  prefix: string;
}

/**
 * Finds where paths of the document stand in its source, walking only the parts that lead to
 * the paths asked for.
 */
export class Locator {
  readonly #text: string;
  readonly #events: Event[];
  readonly lines: LineIndex;

  /** A locator over `events` parsed from `text`. */
  constructor(text: string, events: Event[]) {
    this.#text = text;
    this.#events = events;
    this.lines = new LineIndex(text);
  }

  /**
   * Locates each of `paths`; a path that does not exist resolves to its deepest existing
   * ancestor.
   */
  locateAll(paths: Path[]): Map<string, Location> {
    const wanted = new Set(paths.map(pathKey));
    const prefixes = new Set<string>([""]);
    for (const p of paths) {
      for (let i = 1; i <= p.length; i++) prefixes.add(pathKey(p.slice(0, i)));
    }
    const found = new Map<string, Location>();
    const text = this.#text;
    const stack: Frame[] = [];
    let skipDepth = 0;
    const events = this.#events;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      if (skipDepth > 0) {
        if (ev.type === 2 || ev.type === 3) skipDepth++;
        else if (ev.type === 6) skipDepth--;
        if (skipDepth > 0 || ev.type !== 6) continue;
        afterNode(stack);
        continue;
      }
      if (ev.type === 1) continue;
      if (ev.type === 6) {
        stack.pop();
        afterNode(stack);
        continue;
      }
      const start = ev.type === 4
        ? (ev.valueStart >= 0 ? ev.valueStart : -1)
        : ev.type === 5
        ? ev.anchorStart - 1
        : ev.start;
      const parent = stack[stack.length - 1];
      let key: string;
      let keyOffset = start;
      if (!parent) key = "";
      else if (parent.kind === "map" && parent.expectKey) {
        // A key: remember it; the value comes next.
        parent.key = ev.type === 4 ? getScalarValue(text, ev) : "?";
        parent.keyOffset = start;
        parent.expectKey = false;
        if (ev.type === 2 || ev.type === 3) skipDepth = 1;
        continue;
      } else if (parent.kind === "map") {
        key = parent.prefix + "\u0000" + parent.key;
        keyOffset = parent.keyOffset;
      } else {
        key = parent.prefix + "\u0000" + parent.index;
      }
      if (wanted.has(key)) {
        const loc: Location = { key: keyOffset, value: start >= 0 ? start : keyOffset };
        if (ev.type === 4 && ev.valueStart >= 0) {
          loc.raw = text.slice(ev.valueStart, ev.valueEnd);
          loc.literal = ev.style <= 3 && loc.raw === getScalarValue(text, ev);
        }
        found.set(key, loc);
      }
      if (ev.type === 2 || ev.type === 3) {
        if (!prefixes.has(key)) {
          skipDepth = 1;
          continue;
        }
        stack.push({
          kind: ev.type === 3 ? "map" : "seq",
          index: 0,
          expectKey: true,
          key: "",
          keyOffset: start,
          prefix: key,
        });
      } else {
        afterNode(stack);
      }
    }
    // Paths that do not exist fall back to their deepest existing ancestor.
    for (const p of paths) {
      const k = pathKey(p);
      if (found.has(k)) continue;
      for (let n = p.length - 1; n >= 0; n--) {
        const anc = found.get(pathKey(p.slice(0, n)));
        if (anc) {
          found.set(k, { key: anc.key, value: anc.value });
          break;
        }
      }
      if (!found.has(k)) found.set(k, { key: 0, value: 0 });
    }
    return found;
  }
}

function afterNode(stack: Frame[]): void {
  const parent = stack[stack.length - 1];
  if (!parent) return;
  if (parent.kind === "seq") parent.index++;
  else parent.expectKey = true;
}

/** A string key for a path, used to match located paths. */
export function pathKey(path: Path): string {
  let k = "";
  for (const p of path) k += "\u0000" + p;
  return k;
}
