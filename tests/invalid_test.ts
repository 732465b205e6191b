/**
 * Broken runbooks, and what thaw says about them.
 *
 * Every `testdata/invalid/NAME.yaml` has a sibling `NAME.expected` holding the exact text
 * `readRunbook()` must give: one problem a line, `FILE:LINE:COL: message`, sorted by position.
 * Generated inputs (huge, deeply nested, random) must fail the same way, never with a crash.
 * Every runbook shipped under `runbooks/` must load.
 *
 * @module
 */
import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { RunbookErrors, UsageError } from "../engine/runbook/errors.ts";
import { readRunbook } from "../engine/runbook/load.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const INVALID = "testdata/invalid";
const SCHEMA_LINE = "# yaml-language-server: $schema=./runbook.schema.json";
const MiB = 2 ** 20;
/**
 * Size of the generated huge runbooks: far beyond any real runbook (100,000 steps of the shape
 * below), yet small enough for the suite's memory (the 50 MB ones this file once loaded took
 * 2.6 GB to parse). `tests/bench/big_runbooks.ts` loads 50 MB ones and measures their memory.
 */
const HUGE = 4 * MiB;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Loads `path` (relative to `cwd`), which must fail; returns what it threw. */
async function loadError(path: string, cwd: string): Promise<RunbookErrors | UsageError> {
  try {
    await readRunbook(path, { cwd });
  } catch (e) {
    assert.ok(
      e instanceof RunbookErrors || e instanceof UsageError,
      `${path}: expected RunbookErrors or UsageError, got ${e instanceof Error ? e.stack : e}`,
    );
    return e;
  }
  return assert.fail(`${path}: loaded, but it is broken`);
}

/**
 * The message of a load error is for people: no stack trace, every line positioned in `path`,
 * lines sorted by position.
 */
function assertReadable(error: RunbookErrors | UsageError, path: string): void {
  const message = error.message;
  assert.ok(!message.includes("    at "), `stack trace in the message:\n${message}`);
  if (error instanceof UsageError) {
    assert.ok(message.startsWith(`${path}: `), `usage error not about ${path}:\n${message}`);
    return;
  }
  assert.ok(message.length > 0, "empty message");
  const line = new RegExp(`^${escapeRegExp(path)}:(\\d+):(\\d+): \\S`);
  let last: [number, number] = [0, 0];
  for (const text of message.split("\n")) {
    const m = line.exec(text);
    assert.ok(m, `not positioned in ${path}: ${JSON.stringify(text.slice(0, 200))}`);
    const at: [number, number] = [Number(m[1]), Number(m[2])];
    assert.ok(at[0] >= 1 && at[1] >= 1, `position before the start of the file: ${text}`);
    assert.ok(
      at[0] > last[0] || (at[0] === last[0] && at[1] >= last[1]),
      `not sorted by position: ${text}`,
    );
    last = at;
  }
  for (const e of error.errors) assert.equal(e.file, path);
}

// ---------------------------------------------------------------------------------------------
// testdata/invalid: one test per broken runbook.

const cases = [...Deno.readDirSync(join(ROOT, INVALID))]
  .filter((e) => e.isFile && e.name.endsWith(".yaml"))
  .map((e) => e.name.slice(0, -".yaml".length))
  .sort();

Deno.test("readRunbook() has an expected report for every broken runbook, when listing testdata/invalid", () => {
  assert.ok(cases.length >= 45, `only ${cases.length} cases in ${INVALID}`);
  const expected = [...Deno.readDirSync(join(ROOT, INVALID))]
    .filter((e) => e.isFile && e.name.endsWith(".expected"))
    .map((e) => e.name.slice(0, -".expected".length))
    .sort();
  assert.deepEqual(expected, cases, "every NAME.yaml needs a NAME.expected, and the reverse");
});

for (const name of cases) {
  const path = `${INVALID}/${name}.yaml`;
  Deno.test(`readRunbook() reports every problem at its position, when reading ${path}`, async () => {
    const expected = (await Deno.readTextFile(join(ROOT, INVALID, `${name}.expected`)))
      .replace(/\r?\n$/, "");
    const error = await loadError(path, ROOT);
    assert.equal(error.message, expected);
    assertReadable(error, path);
    for (const line of error.message.split("\n")) {
      assert.match(line, /^testdata\/invalid\/[^:]+:\d+:\d+: /);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Generated inputs: too big, too deep or not YAML at all. Each must fail with positioned
// problems, not hang or crash (RangeError, stack overflow). No timings are asserted.

/** Writes `content` to a fresh temporary directory and returns what loading it threw. */
async function loadGenerated(
  name: string,
  content: string | Uint8Array,
): Promise<RunbookErrors | UsageError> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-invalid-" });
  try {
    const file = join(dir, name);
    if (typeof content === "string") await Deno.writeTextFile(file, content);
    else await Deno.writeFile(file, content);
    const error = await loadError(name, dir);
    assertReadable(error, name);
    return error;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A deterministic pseudo-random generator (xorshift32), so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

Deno.test("readRunbook() reports the problems after it, when a 4 MB file is one huge scalar line", async () => {
  const text = "runbook: 1\nname: huge-scalar\ndescription: " + "x".repeat(HUGE) +
    "\nsteps: []\n";
  const error = await loadGenerated("huge-scalar.yaml", text);
  assert.equal(error.message, "huge-scalar.yaml:4:8: steps: must not be empty");
});

Deno.test("readRunbook() reports the problems at the end, when a 4 MB runbook has 120,000 small steps", async () => {
  const lines = ["runbook: 1", "name: many-steps", "steps:"];
  let size = 0;
  for (let i = 0; size < HUGE; i++) {
    const id = `  - id: s${i}`, run = `    run: echo ${i}`;
    lines.push(id, run);
    size += id.length + run.length + 2;
  }
  lines.push("  - id: last", "    neds: [s0]", "    run: echo last");
  const error = await loadGenerated("many-steps.yaml", lines.join("\n") + "\n");
  assert.equal(
    error.message,
    `many-steps.yaml:${
      lines.length - 1
    }:5: unknown key "neds" in step "last" (did you mean "needs"?)`,
  );
});

Deno.test("readRunbook() reports a list is not a runbook, when a 4 MB file is a list of small mappings", async () => {
  const item = "- { id: s, run: echo hi }\n";
  const error = await loadGenerated(
    "huge-list.yaml",
    item.repeat(Math.ceil(HUGE / item.length)),
  );
  assert.equal(
    error.message,
    "huge-list.yaml:1:1: a runbook is a mapping (runbook, name, steps), not a list",
  );
});

Deno.test("readRunbook() reports the nesting, when a document is 10,000 flow lists deep", async () => {
  const error = await loadGenerated(
    "deep-flow.yaml",
    "[".repeat(10_000) + "]".repeat(10_000) + "\n",
  );
  assert.equal(error.message.split("\n").length, 1);
  assert.match(
    error.message,
    /^deep-flow\.yaml:1:\d+: invalid YAML: nested more than \d+ levels deep$/,
  );
});

// Block nesting costs its depth squared in indentation: 2,000 levels (31 times the 64 allowed) is
// 2 MB for mappings and 4 MB for lists, where 10,000 took 50 MB and 100 MB (and 1.4 GB at peak).
Deno.test("readRunbook() reports the nesting, when a document is 2,000 block mappings deep", async () => {
  let text = "";
  for (let i = 0; i < 2_000; i++) text += " ".repeat(i) + "k:\n";
  const error = await loadGenerated("deep-block.yaml", text);
  assert.equal(error.message.split("\n").length, 1);
  assert.match(
    error.message,
    /^deep-block\.yaml:\d+:\d+: invalid YAML: nested more than \d+ levels deep$/,
  );
});

Deno.test("readRunbook() reports the nesting, when a runbook nests 2,000 block lists deep in a step", async () => {
  let text = "runbook: 1\nname: deep\nsteps:\n  - id: a\n    run: echo a\n    env:\n      X:\n";
  for (let i = 0; i < 2_000; i++) text += " ".repeat(8 + 2 * i) + "-\n";
  const error = await loadGenerated("deep-steps.yaml", text);
  assert.equal(error.message.split("\n").length, 1);
  assert.match(
    error.message,
    /^deep-steps\.yaml:\d+:\d+: invalid YAML: nested more than \d+ levels deep$/,
  );
});

Deno.test("readRunbook() reports a binary file, when a file is random bytes", async () => {
  const next = random(20240601);
  for (const size of [1, 16, 4096, MiB]) {
    const bytes = Uint8Array.from({ length: size }, () => Math.floor(next() * 256));
    bytes[0] = 0xff; // never valid UTF-8, whatever the rest happens to be
    const error = await loadGenerated("random.yaml", bytes);
    assert.equal(
      error.message,
      "random.yaml:1:1: not a text file (binary data); a runbook is UTF-8 YAML",
    );
  }
});

Deno.test("readRunbook() reports positioned problems, when a file is random YAML punctuation", async () => {
  const alphabet = "abc:- \n\t[]{},'\"&*!|>%@`#?\\0123\u00e9";
  for (let seed = 1; seed <= 25; seed++) {
    const next = random(seed);
    let text = "";
    for (let i = 0; i < 4096; i++) text += alphabet[Math.floor(next() * alphabet.length)];
    await loadGenerated(`random-${seed}.yaml`, text);
  }
});

Deno.test("readRunbook() reports the aliases, when a file has thousands of YAML aliases", async () => {
  const text = "runbook: 1\nname: aliases\nsteps:\n  - &s { id: a, run: echo a }\n" +
    "  - *s\n".repeat(5000);
  const error = await loadGenerated("aliases.yaml", text);
  assert.equal(error.message.split("\n").length, 1);
});

Deno.test("readRunbook() reports a usage error, when the file does not exist", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-invalid-" });
  try {
    const error = await loadError("missing.yaml", dir);
    assert.ok(error instanceof UsageError);
    assert.equal(error.message, "missing.yaml: cannot read: no such file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// runbooks/: what ships must load, and editors must find its schema.

function runbookFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const full = join(dir, entry.name);
    if (entry.isDirectory && !entry.name.startsWith(".")) out.push(...runbookFiles(full));
    else if (entry.isFile && /\.ya?ml$/.test(entry.name)) out.push(relative(ROOT, full));
  }
  return out.sort();
}

Deno.test("readRunbook() loads without error, when reading every runbook under runbooks/", async () => {
  const files = [
    ...runbookFiles(join(ROOT, "runbooks")),
    ...runbookFiles(join(ROOT, "testdata/plans")),
  ];
  assert.ok(files.length > 3, "no runbooks under runbooks/ or testdata/plans/");
  for (const path of files) {
    const text = await Deno.readTextFile(join(ROOT, path));
    const schema = relative(dirname(join(ROOT, path)), join(ROOT, "runbooks/runbook.schema.json"));
    const want = SCHEMA_LINE.replace(
      "./runbook.schema.json",
      schema.startsWith(".") ? schema : `./${schema}`,
    );
    assert.equal(text.split("\n")[0], want, `${path}: first line`);
    for (const drill of [false, true]) {
      const runbook = await readRunbook(path, { cwd: ROOT, drill }).catch((e: Error) =>
        assert.fail(`${path}${drill ? " (drill)" : ""} does not load:\n${e.message}`)
      );
      assert.ok(runbook.steps.length > 0, `${path}: no steps`);
    }
  }
});
