/**
 * Mutations of the bundled runbooks, for the mutation fuzz test (`mutation_fuzz_test.ts`) and its
 * longer run (`bench/mutation_fuzz.ts`): each mutant goes through load, plan and simulate (every
 * strategy, with and without the drill overrides), and must either work or fail with problems
 * positioned `FILE:LINE:COL` inside the file; never an exception of another kind.
 *
 * Mutations work on the text (lines deleted, duplicated, swapped, re-indented, truncated,
 * characters inserted) and on values (a `key: value` line given a hostile value: units at and
 * past their limits, 400 digits, YAML tags, anchors and aliases, expressions, other steps' ids).
 *
 * @module
 */
import { RunbookErrors, SimulationError, UsageError } from "../engine/runbook/errors.ts";
import { parseRunbook } from "../engine/runbook/load.ts";
import { plan } from "../engine/simulate/plan.ts";
import { STRATEGIES } from "../engine/runbook/schema.ts";
import { UNIT_KEYS } from "../engine/runbook/validate.ts";
import { simulate } from "../engine/simulate/simulate.ts";

/** mulberry32: a small seeded generator, so failures reproduce. */
export function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A runbook to mutate: its path (as errors name it) and text. */
export interface Seed {
  readonly file: string;
  readonly text: string;
}

/** The bundled runbooks and the plan fixtures, read from the repository. */
export function seeds(): Seed[] {
  const root = new URL("..", import.meta.url);
  const out: Seed[] = [];
  for (const dir of ["runbooks", "testdata/plans"]) {
    const names = [...Deno.readDirSync(new URL(dir, root))]
      .filter((e) => e.isFile && e.name.endsWith(".yaml")).map((e) => e.name).sort();
    for (const name of names) {
      out.push({
        file: `${dir}/${name}`,
        text: Deno.readTextFileSync(new URL(`${dir}/${name}`, root)),
      });
    }
  }
  return out;
}

const DIGITS = "9".repeat(400);
/** Values a mutation puts after a `key:`. */
const VALUES = [
  "3650d",
  "3650d1ms",
  "3651d",
  `${DIGITS}s`,
  `${DIGITS}ms`,
  "0s",
  "0ms",
  "1e400s",
  "-1s",
  "NaNs",
  "1000000TB",
  "1000001TB",
  `${DIGITS}TiB`,
  "0B",
  "1B",
  "1000000TB/s",
  "1000001TB/s",
  `${DIGITS}Gbit/s`,
  "1bit/s",
  "0MB/s",
  "8000000Tbit/s",
  "1e-300MB/s",
  "0.0000001ms",
  "0",
  "-1",
  "1e308",
  "1e309",
  DIGITS,
  "0x10",
  ".5",
  "NaN",
  ".inf",
  "-.inf",
  ".nan",
  "true",
  "false",
  "null",
  "~",
  "''",
  '""',
  "[]",
  "{}",
  "[a, b]",
  "{a: 1}",
  "[[[[[]]]]]",
  "!!binary aGVsbG8=",
  "!!str 1",
  "!!int x",
  "!!float 1",
  "!!timestamp 2001-12-14",
  "!custom x",
  "&a x",
  "*a",
  "*nope",
  "|\n  a\n  b",
  ">-\n  a",
  '"\\u0000"',
  "'\t'",
  '"\\uD800"',
  "${{ vars.nope }}",
  "${{ env.HOME }}",
  "${{ steps.nope.to }}",
  "${{ run.id }}",
  "${{ vars",
  "${{ }}",
  "${{ steps.fetch-catalog.size }}",
  "${{ vars.backup }}${{ vars.backup }}",
  "x".repeat(5000),
  "é☃𝄞",
  "a\u0000b",
  "\u202e",
  "self",
  "fetch-catalog",
  "restore-db",
  "[restore-db, restore-db]",
  "[self]",
  "serial",
  "lazy",
  "aggressive",
  "isolate",
  "abort",
  "http://127.0.0.1:1/x",
  "file:///etc/passwd",
  "/",
  ".",
  "..",
  "../../..",
  "~/x",
];
/** Values at the edges for the keys that take units: mostly valid, some just too large. */
const UNITS: Record<string, readonly string[]> = {
  duration: ["3650d", "1ms", "0s", "0.001ms", "1d23h59m59s999ms", ".5s", "3651d", `${DIGITS}s`],
  size: ["1000000TB", "1B", "0B", "999999TiB", "0.5B", "1.5 GB", "1000001TB", `${DIGITS}TiB`],
  bandwidth: [
    "1bit/s",
    "1000000TB/s",
    "8000000Tbit/s",
    "0.000001bit/s",
    "1 Gbps",
    "1000001TB/s",
    `${DIGITS}Gbit/s`,
  ],
};

/** Keys a mutation adds on a line of its own. */
const KEYS = [
  "needs",
  "timeout",
  "estimate",
  "retries",
  "milestone",
  "on-failure",
  "approval",
  "env",
  "run",
  "fetch",
  "from",
  "to",
  "size",
  "rate",
  "sha256",
  "local",
  "background",
  "ready",
  "user",
  "idempotent",
  "shell",
  "id",
  "steps",
  "vars",
  "bandwidth",
  "parallelism",
  "strategy",
  "nope",
  "<<",
  "? x",
  "- x",
];
const CHARS = [..."\t :-[]{}#&*!|>'\"%@`,?\\\n\r", "\u0000", "\uFEFF", "é"];

/** One random mutation of `text`. */
export function mutate(text: string, rand: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const lines = text.split("\n");
  const n = Math.floor(rand() * lines.length);
  const line = lines[n] ?? "";
  switch (Math.floor(rand() * 10)) {
    case 9: { // a unit value replaced by a valid one at the edges
      const re = /^(\s*(?:- )?)(\w+):\s*\S.*$/;
      const at = lines.flatMap((l, k) => (UNIT_KEYS[re.exec(l)?.[2] ?? ""] ? [k] : []));
      if (!at.length) break;
      const k = pick(at);
      const m = re.exec(lines[k]!)!;
      lines[k] = `${m[1]}${m[2]}: ${pick(UNITS[UNIT_KEYS[m[2]!]!]!)}`;
      break;
    }
    case 0: // a value replaced
    case 1: {
      const m = /^(\s*(?:- )?[\w"'-]+:)\s*(.*)$/.exec(line);
      if (!m) break;
      const v = pick(VALUES);
      lines[n] = v.includes("\n")
        ? `${m[1]} ${v.replaceAll("\n", "\n" + " ".repeat(m[1]!.search(/\S/) + 2))}`
        : `${m[1]} ${v}`;
      break;
    }
    case 2: // a line deleted
      lines.splice(n, 1);
      break;
    case 3: // a line duplicated
      lines.splice(n, 0, line);
      break;
    case 4: { // two lines swapped
      const k = Math.floor(rand() * lines.length);
      [lines[n], lines[k]] = [lines[k] ?? "", line];
      break;
    }
    case 5: // a line re-indented
      lines[n] = " ".repeat(Math.floor(rand() * 9)) + line.trimStart();
      break;
    case 6: { // a key added beside this line
      const indent = /^\s*(?:- )?/.exec(line)![0].replace("-", " ");
      lines.splice(n + 1, 0, `${indent}${pick(KEYS)}: ${pick(VALUES).split("\n")[0]}`);
      break;
    }
    case 7: { // a character inserted
      const at = Math.floor(rand() * (line.length + 1));
      lines[n] = line.slice(0, at) + pick(CHARS) + line.slice(at);
      break;
    }
    default: // the file cut short
      return text.slice(0, Math.floor(rand() * text.length));
  }
  return lines.join("\n");
}

/** A mutant: one to four mutations of a seed (mostly one). */
export function mutant(seed: Seed, rand: () => number): string {
  let text = seed.text;
  const r = rand();
  for (let k = r < 0.6 ? 1 : r < 0.85 ? 2 : r < 0.95 ? 3 : 4; k > 0; k--) text = mutate(text, rand);
  return text;
}

/** How a mutant went. */
export type Verdict = "ran" | "refused" | "bad";

/**
 * Loads `text` as `file`, plans it and simulates it with every strategy (and as a drill):
 * "ran", "refused" (positioned problems only), or "bad" with what went wrong.
 */
export function tryMutant(file: string, text: string): { verdict: Verdict; problem?: string } {
  const lineCount = text.split("\n").length;
  const positioned = (message: string): string | undefined => {
    for (const l of message.split("\n")) {
      const m = /^(.+?):(\d+):(\d+): \S/.exec(l);
      if (!m || m[1] !== file) {
        return `not positioned in ${file}: ${JSON.stringify(l.slice(0, 200))}`;
      }
      const [line, col] = [Number(m[2]), Number(m[3])];
      if (line < 1 || col < 1 || line > lineCount + 1) return `position outside the file: ${l}`;
      if (l.includes("    at ")) return `stack trace: ${l}`;
    }
    return undefined;
  };
  try {
    for (const drill of [false, true]) {
      const rb = parseRunbook(text, file, { drill });
      plan(rb);
      for (const strategy of STRATEGIES) simulate(rb, { strategy, run: "fuzz" });
    }
    return { verdict: "ran" };
  } catch (e) {
    if (e instanceof RunbookErrors || e instanceof SimulationError) {
      const problem = positioned(e.message);
      return problem ? { verdict: "bad", problem } : { verdict: "refused" };
    }
    if (e instanceof UsageError) return { verdict: "bad", problem: `usage error: ${e.message}` };
    const err = e as Error;
    return { verdict: "bad", problem: `${err?.name}: ${err?.message}\n${err?.stack ?? ""}` };
  }
}

/** Counts of a fuzz run. */
export interface FuzzCounts {
  mutants: number;
  ran: number;
  refused: number;
  bad: { seed: string; index: number; problem: string; text: string }[];
}

/**
 * Runs `count` mutants from the generator seeded with `seed`, round-robin over `seeds`, calling
 * `progress(index)` before each (to notice a hang from outside).
 */
export function fuzz(
  all: Seed[],
  seed: number,
  count: number,
  progress: (index: number) => void = () => {},
): FuzzCounts {
  const rand = prng(seed);
  const counts: FuzzCounts = { mutants: 0, ran: 0, refused: 0, bad: [] };
  for (let i = 0; i < count; i++) {
    progress(i);
    const s = all[i % all.length]!;
    const text = mutant(s, rand);
    const r = tryMutant(s.file, text);
    counts.mutants++;
    if (r.verdict === "bad") counts.bad.push({ seed: s.file, index: i, problem: r.problem!, text });
    else counts[r.verdict]++;
  }
  return counts;
}

/** The text of mutant `index` of a run seeded with `seed` (to show a mutant that hung). */
export function mutantAt(all: Seed[], seed: number, index: number): Seed {
  const rand = prng(seed);
  let text = "";
  for (let i = 0; i <= index; i++) text = mutant(all[i % all.length]!, rand);
  return { file: all[index % all.length]!.file, text };
}

/** What {@linkcode fuzzInWorker} found: the counts, or the mutant that stalled. */
export type WorkerResult =
  | { readonly counts: FuzzCounts }
  | { readonly stalled: Seed & { readonly index: number } };

/**
 * Runs {@linkcode fuzz} in a worker, so that a mutant that never finishes (an endless plan) is
 * caught: when no mutant starts for `stallMs`, the worker is stopped and that mutant returned.
 */
export function fuzzInWorker(seed: number, count: number, stallMs: number): Promise<WorkerResult> {
  const worker = new Worker(new URL("./mutation_fuzz_worker.ts", import.meta.url), {
    type: "module",
  });
  return new Promise<WorkerResult>((resolve, reject) => {
    let at = -1;
    let last = performance.now();
    const finish = (result?: WorkerResult, error?: unknown) => {
      clearInterval(watchdog);
      worker.terminate();
      if (result) resolve(result);
      else reject(error);
    };
    const watchdog = setInterval(() => {
      if (performance.now() - last < stallMs) return;
      finish({ stalled: { ...mutantAt(seeds(), seed, Math.max(at, 0)), index: at } });
    }, Math.min(500, stallMs));
    worker.onmessage = (e: MessageEvent) => {
      if (typeof e.data?.at === "number") [at, last] = [e.data.at, performance.now()];
      else finish({ counts: e.data.counts });
    };
    worker.onerror = (e) => {
      e.preventDefault();
      finish(undefined, new Error(`mutation fuzz worker failed at mutant ${at}: ${e.message}`));
    };
    worker.postMessage({ seed, count });
  });
}
