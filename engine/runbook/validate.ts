/**
 * Turns the schema's findings into messages an SRE can act on at 3 a.m.
 *
 * @module
 */
import type { z } from "zod";
import { keysAt } from "./schema.ts";
import { stepKinds } from "../../steps/kind.ts";
import type { Path } from "./source.ts";
import { didYouMean } from "./suggest.ts";
import { parseBandwidth, parseDuration, parseSize } from "./units.ts";

/** A problem at a path of the document, before it is given a line and column. */
export interface Problem {
  readonly path: Path;
  /** Point at the key of the entry (unknown keys) or at its value. */
  readonly at: "key" | "value";
  readonly message: string;
  /** Offset inside the scalar value, when the problem is part of a string. */
  readonly inner?: number;
}

/** The value found at `path` in `input`, or undefined. */
export function valueAt(input: unknown, path: Path): unknown {
  let v = input;
  for (const p of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[p];
  }
  return v;
}

/** A value as a message shows it: strings quoted, others by kind. */
export function shown(v: unknown): string {
  return typeof v === "string"
    ? JSON.stringify(v.length > 60 ? v.slice(0, 60) + "..." : v)
    : kindOf(v);
}

/** How to name the kind of a value in a message. */
export function kindOf(v: unknown): string {
  if (v === null || v === undefined) return "nothing";
  if (Array.isArray(v)) return "a list";
  switch (typeof v) {
    case "object":
      return "a mapping";
    case "string":
      return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "..." : v)}`;
    case "number":
      return `the number ${v}`;
    case "boolean":
      return String(v);
    default:
      return typeof v;
  }
}

const EXPECTED: Record<string, string> = {
  object: "a mapping",
  array: "a list",
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
};

const PATTERNS: Record<string, string> = {
  "step id": 'lowercase letters, digits, "-" and "_", starting with a letter or digit',
  name: 'lowercase letters, digits and "-", starting with a letter or digit',
  milestone: 'lowercase letters, digits, "-" and "_"',
  "var name": 'letters, digits, "_" and "-", not starting with a digit',
  "env name": 'letters, digits and "_", not starting with a digit',
  sha256: "64 lowercase hexadecimal digits",
  shell: "a program name or path, without spaces",
  user: 'a system user name (letters, digits, "_", ".", "-")',
  "host name": 'lowercase letters, digits, "-" and "_", starting with a letter or digit',
  "ssh destination": 'USER@HOST or a host, without spaces, not starting with "-"',
  "header name": 'an HTTP header name (letters, digits, "-")',
};

/** Where a mapping at `path` is, for messages: "in step \"restore-db\"". */
export function whereIs(input: unknown, path: Path): string {
  const stepName = (i: number) => {
    const id = valueAt(input, ["steps", i, "id"]);
    return typeof id === "string" ? `step "${id}"` : `step ${i + 1}`;
  };
  if (path.length === 0) return "at the top level";
  if (path[0] === "hosts" && typeof path[1] === "string" && path.length === 2) {
    return `in host "${path[1]}"`;
  }
  if (path[0] === "steps" && typeof path[1] === "number") {
    if (path.length === 2) return `in ${stepName(path[1])}`;
    if (path[2] === "fetch") return `in the fetch of ${stepName(path[1])}`;
    if (path[2] === "ready") return `in the ready probe of ${stepName(path[1])}`;
  }
  return `in ${path.filter((p) => typeof p === "string").join(".")}`;
}

function keysFor(path: Path): readonly string[] {
  return keysAt(path);
}

function keyName(path: Path): string {
  const last = path[path.length - 1];
  if (typeof last === "number") {
    const parent = path[path.length - 2];
    return typeof parent === "string" ? `${parent}[${last}]` : `item ${last + 1}`;
  }
  return String(last ?? "document");
}

type Unit = "duration" | "size" | "bandwidth";
/** The keys whose values are written in a unit, and which unit. */
export const UNIT_KEYS: Readonly<Record<string, Unit>> = {
  timeout: "duration",
  estimate: "duration",
  interval: "duration",
  rto: "duration",
  btn: "duration",
  every: "duration", // service_level
  normal: "duration",
  p95: "duration",
  size: "size",
  rate: "bandwidth",
  bandwidth: "bandwidth",
};

/** The unit a value at `path` is written in, if any. */
function unitOf(path: Path): Unit | undefined {
  if (path[0] === "objectives" && path[1] === "milestones" && path.length === 3) return "duration";
  return UNIT_KEYS[String(path[path.length - 1])];
}

/** What is wrong with `text` as a `unit`. */
function unitProblem(unit: Unit, text: string): string {
  const parse = { duration: parseDuration, size: parseSize, bandwidth: parseBandwidth }[unit];
  try {
    parse(text);
    return `invalid ${unit} "${text}"`;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Stands in for a value the schema rejected, so later checks see the key as present. */
export const REJECTED = "\u0000rejected";

/**
 * A copy of `input` without the values the schema rejected, so the whole-document checks can
 * still run and report their problems in the same pass.
 */
export function withoutRejected(input: unknown, issues: z.core.$ZodIssue[]): unknown {
  const copy = structuredClone(input) as Record<string, unknown>;
  for (const issue of issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
    const keys = issue.code === "unrecognized_keys" ? issue.keys.map((k) => [...path, k]) : [path];
    for (const p of keys) {
      if (p.length === 0) continue;
      const parent = valueAt(copy, p.slice(0, -1));
      if (parent === null || typeof parent !== "object") continue;
      const last = p[p.length - 1]!;
      // Unknown keys and whole steps go; a present key with a bad value stays, as a marker.
      const keep = issue.code !== "unrecognized_keys" && typeof last === "string" &&
        (["from", "to", "ready", "background"].includes(last) ||
          stepKinds().some((k) => k.key === last) || (p.length === 2 && p[0] === "hosts"));
      if (keep) (parent as Record<string, unknown>)[last] = REJECTED;
      else delete (parent as Record<string | number, unknown>)[last];
    }
  }
  return copy;
}

/**
 * Converts zod issues about `input` into problems with messages and paths.
 */
export function problemsFromIssues(input: unknown, issues: z.core.$ZodIssue[]): Problem[] {
  const out: Problem[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
    const value = valueAt(input, path);
    const key = keyName(path);
    switch (issue.code) {
      case "unrecognized_keys":
        for (const k of issue.keys) {
          const where = whereIs(input, path);
          out.push({
            path: [...path, k],
            at: "key",
            message: `unknown key "${k}" ${where}${didYouMean(k, keysFor(path))}`,
          });
        }
        break;
      case "invalid_type": {
        if (value === undefined) {
          const parent = path.slice(0, -1);
          const hint = key === "runbook" ? ' (add "runbook: 1")' : "";
          out.push({
            path: parent,
            at: "value",
            message: `missing key "${key}" ${whereIs(input, parent)}${hint}`,
          });
        } else if (typeof value === "number" && unitOf(path)) {
          // `timeout: 600`: say which unit is missing rather than "expected a string".
          out.push({
            path,
            at: "value",
            message: `${key}: ${unitProblem(unitOf(path)!, String(value))}`,
          });
        } else {
          const expected = EXPECTED[issue.expected] ?? issue.expected;
          out.push({
            path,
            at: "value",
            message: `${key}: expected ${expected}, got ${kindOf(value)}`,
          });
        }
        break;
      }
      case "invalid_value":
        if (key === "runbook") {
          out.push(
            value === undefined
              ? {
                path: [],
                at: "value",
                message: 'missing key "runbook" at the top level (add "runbook: 1")',
              }
              : {
                path,
                at: "value",
                message: String(value) === "1"
                  ? `runbook: expected the number 1, got ${
                    kindOf(value)
                  } (write runbook: 1, without quotes)`
                  : `runbook: unsupported format version ${
                    typeof value === "number" ? value : shown(value)
                  }; this thaw reads "runbook: 1"`,
              },
          );
        } else {
          const allowed = issue.values.map(String);
          const hint = typeof value === "string" ? didYouMean(value, allowed) : "";
          out.push({
            path,
            at: "value",
            message: `${key}: ${shown(value)} is not one of ${allowed.join(", ")}${hint}`,
          });
        }
        break;
      case "invalid_format": {
        const tag = issue.message;
        let message = `${key}: invalid value ${shown(value)}`;
        if (tag.startsWith("unit:")) {
          message = `${key}: ${unitProblem(tag.slice(5) as Unit, String(value))}`;
        } else if (tag.startsWith("pattern:")) {
          const what = tag.slice(8);
          message = `${key}: invalid ${what} ${shown(value)}: use ${PATTERNS[what] ?? what}`;
        }
        out.push({ path, at: "value", message });
        break;
      }
      case "too_small":
        out.push({
          path,
          at: "value",
          message: issue.origin === "array"
            ? `${key}: must not be empty`
            : `${key}: must be at least ${issue.minimum}, got ${kindOf(value)}`,
        });
        break;
      case "custom":
        out.push({
          path,
          at: "value",
          message: issue.message.startsWith("unit:")
            ? `${key}: ${unitProblem(issue.message.slice(5) as Unit, String(value))}`
            : `${key}: ${issue.message}`,
        });
        break;
      case "too_big":
        out.push({
          path,
          at: "value",
          message: `${key}: must be at most ${issue.maximum}, got ${kindOf(value)}`,
        });
        break;
      case "invalid_union": {
        const what = key === "from"
          ? "a source or a list of sources"
          : key === "needs"
          ? "a step id or a list of step ids"
          : "a string, a number or true/false";
        // A union member that got further than the type check has the useful message.
        const deeper = issue.errors.flat().filter((i) => i.code !== "invalid_type");
        if (deeper.length && Array.isArray(value)) {
          out.push(...problemsFromIssues(
            input,
            deeper.map((i) => ({
              ...i,
              path: [...path, ...i.path],
            })),
          ));
        } else {
          out.push({
            path,
            at: "value",
            message: `${key}: expected ${what}, got ${kindOf(value)}`,
          });
        }
        break;
      }
      case "invalid_key": {
        const k = String(path[path.length - 1]);
        const inner = issue.issues[0];
        const what = inner?.message.startsWith("pattern:") ? inner.message.slice(8) : "key";
        out.push({
          path,
          at: "key",
          message: `invalid ${what} "${k}": use ${PATTERNS[what] ?? "a simpler name"}`,
        });
        break;
      }
      default:
        out.push({ path, at: "value", message: `${key}: ${issue.message}` });
    }
  }
  return out;
}
