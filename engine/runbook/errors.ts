/**
 * Errors thaw reports about runbooks and the command line.
 *
 * Every problem in a runbook is a {@link RunbookError} carrying its file, line and column, so it
 * prints as `FILE:LINE:COL: message`. Loading collects all problems of a file and throws them
 * together as one {@link RunbookErrors}.
 *
 * @module
 */

/**
 * One problem in a runbook, at a position in its file.
 *
 * @example
 * ```ts
 * import { RunbookError } from "./errors.ts";
 * import assert from "node:assert/strict";
 * const e = new RunbookError("unknown key \"neds\"", "vod.yaml", 14, 5);
 * assert.equal(e.message, "vod.yaml:14:5: unknown key \"neds\"");
 * assert(e instanceof SyntaxError);
 * ```
 */
export class RunbookError extends SyntaxError {
  /** The path of the file as the user typed it (or as found under a directory they named). */
  readonly file: string;
  /** 1-based line. */
  readonly line: number;
  /** 1-based column. */
  readonly column: number;
  /** The message without its position. */
  readonly reason: string;

  /** Creates an error at `file:line:column`. */
  constructor(reason: string, file: string, line: number, column: number) {
    super(`${file}:${line}:${column}: ${reason}`);
    this.name = "RunbookError";
    this.file = file;
    this.line = line;
    this.column = column;
    this.reason = reason;
  }
}

/**
 * All problems found in one runbook file, sorted by position.
 *
 * @example
 * ```ts
 * import { RunbookError, RunbookErrors } from "./errors.ts";
 * import assert from "node:assert/strict";
 * const all = new RunbookErrors("vod.yaml", [new RunbookError("bad", "vod.yaml", 1, 1)]);
 * assert.equal(all.errors.length, 1);
 * ```
 */
export class RunbookErrors extends AggregateError {
  /** The file the problems are in. */
  readonly file: string;
  /** The problems, by line then column. */
  declare readonly errors: RunbookError[];

  /** Collects `errors` (they are sorted and de-duplicated here). */
  constructor(file: string, errors: RunbookError[]) {
    const seen = new Set<string>();
    const sorted = [...errors]
      .sort((a, b) => a.line - b.line || a.column - b.column)
      .filter((e) => !seen.has(e.message) && seen.add(e.message) !== undefined);
    super(sorted, sorted.map((e) => e.message).join("\n"));
    this.name = "RunbookErrors";
    this.file = file;
  }
}

/**
 * A mistake on the command line (unknown flag, missing argument): exit code 2.
 *
 * @example
 * ```ts
 * import { UsageError } from "./errors.ts";
 * import assert from "node:assert/strict";
 * const e = new UsageError("unknown flag --stratgy (did you mean --strategy?)");
 * assert(e instanceof TypeError);
 * ```
 */
export class UsageError extends TypeError {
  /** Creates a usage error with a message for the user. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * A runbook that is valid but cannot be simulated as written (a run step without `estimate`,
 * a fetch with no `size`): reported like a validation problem, at the step's position.
 */
export class SimulationError extends RangeError {
  /** The problems, each with its position. */
  readonly problems: RunbookError[];

  /** Creates the error from one or more positioned problems. */
  constructor(problems: RunbookError[]) {
    super(problems.map((p) => p.message).join("\n"));
    this.name = "SimulationError";
    this.problems = problems;
  }
}
