/**
 * The flags of the `thaw` command line: parsing them, and the checks every command shares
 * (`--strategy`, `--var`, and the flags that go with one command only). What a check needs from
 * the heavier modules (the strategies of the schema, the API's `--listen` parser) is loaded only
 * when the flag is given.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { UsageError } from "../runbook/errors.ts";
import type { Strategy } from "../runbook/model.ts";
import { didYouMean } from "../runbook/suggest.ts";

/** Every flag of every command. */
export const FLAGS = {
  strategy: { type: "string" },
  var: { type: "string", multiple: true },
  json: { type: "boolean" },
  report: { type: "string" },
  html: { type: "string" },
  simulate: { type: "boolean" },
  output: { type: "string" },
  store: { type: "string" },
  listen: { type: "string" },
  token: { type: "string" },
  from: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** The flags as given (`undefined` where not). */
export type FlagValues = ReturnType<typeof parse>["values"];

/** The options the commands that read runbooks share. */
export interface CommonOptions {
  readonly strategy: Strategy | undefined;
  readonly vars: Record<string, string>;
  readonly json: boolean;
}

/** One command line, parsed and checked. */
export interface Invocation {
  readonly command: string;
  readonly values: FlagValues;
  readonly positionals: string[];
  readonly options: CommonOptions;
}

function parse(args: string[]) {
  try {
    return parseArgs({ args, options: FLAGS, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = (e as Error).message;
    const flag = /'(-{1,2}[^' ]+)'/.exec(msg)?.[1];
    if (flag && /Unknown option/.test(msg)) {
      const name = flag.replace(/^-+/, "");
      const hint = didYouMean(name, Object.keys(FLAGS));
      throw new UsageError(`unknown flag ${flag}${hint.replace(/"([^"]+)"/, "--$1")}`);
    }
    throw new UsageError(msg.replace(/\s*To specify.*$/s, ""));
  }
}

/**
 * Parses the flags after `command` and checks them; `undefined` for `--help` (print the usage).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { invocation } from "./args.ts";
 * const inv = await invocation("status", ["r1", "--json", "--var", "a=b=c"]);
 * assert.deepEqual(inv?.positionals, ["r1"]);
 * assert.deepEqual(inv?.options, { strategy: undefined, vars: { a: "b=c" }, json: true });
 * await assert.rejects(invocation("status", ["--html", "x.html"]), /--html goes with plan/);
 * ```
 */
export async function invocation(
  command: string,
  args: string[],
): Promise<Invocation | undefined> {
  const { values, positionals } = parse(args);
  if (values.help) return undefined;
  const strategy = values.strategy;
  if (strategy !== undefined) {
    const { STRATEGIES } = await import("../runbook/schema.ts");
    if (!STRATEGIES.includes(strategy as Strategy)) {
      throw new UsageError(
        `--strategy ${strategy}: expected one of ${STRATEGIES.join(", ")}${
          didYouMean(strategy, STRATEGIES)
        }`,
      );
    }
  }
  const vars: Record<string, string> = {};
  for (const v of values.var ?? []) {
    const eq = v.indexOf("=");
    if (eq <= 0) throw new UsageError(`--var ${v}: expected NAME=VALUE`);
    vars[v.slice(0, eq)] = v.slice(eq + 1);
  }
  await checkOneCommandFlags(command, values);
  const options = { strategy: strategy as Strategy | undefined, vars, json: values.json === true };
  return { command, values, positionals, options };
}

/** `--listen`, `--token`, `--html` and `--from` go with some commands only. */
async function checkOneCommandFlags(command: string, values: FlagValues): Promise<void> {
  const serving = ["run", "resume", "serve"].includes(command) ||
    (command === "drill" && !values.simulate);
  if ((values.listen !== undefined || values.token !== undefined) && !serving) {
    throw new UsageError(
      `--${values.listen !== undefined ? "listen" : "token"} serves the status API while runs ` +
        "go on: it goes with run, drill (live), resume or serve",
    );
  }
  if (values.listen !== undefined) { // before anything is opened
    (await import("../api/serve.ts")).parseListen(values.listen);
  }
  if (values.html !== undefined && command !== "plan") {
    throw new UsageError("--html goes with plan: thaw plan FILE --html FILE.html");
  }
  if (values.from !== undefined && command !== "resume") {
    throw new UsageError("--from goes with resume: thaw resume RUN_ID --from STEP");
  }
}
