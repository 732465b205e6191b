import { deepEqual, equal, match, ok } from "node:assert/strict";
import { fromFileUrl, thawCommand } from "./paths.ts";

const ROOT = fromFileUrl(new URL("../", import.meta.url));

/** Runs the real CLI in a child process. */
async function thaw(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  const out = await thawCommand(args, { cwd: options.cwd ?? ROOT, env: options.env ?? {} })
    .output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

const RUNBOOK = (rto: string) =>
  `runbook: 1
name: cli-demo
objectives: { rto: ${rto} }
bandwidth: 100MB/s
steps:
  - { id: f1, fetch: { from: /b/f1, to: ./f1, size: 200MB } }
  - { id: s1, needs: [f1], run: "true", estimate: 10s, milestone: up }
`;

Deno.test("thaw drill --simulate exits 0 or 3, when objectives are met or missed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/met.yaml`, RUNBOOK("1m"));
    await Deno.writeTextFile(`${dir}/missed.yaml`, RUNBOOK("5s"));
    const met = await thaw(["drill", "--simulate", `${dir}/met.yaml`]);
    equal(met.code, 0, met.stderr);
    match(met.stdout, /TTR\s+12s\s+lower bound 12s\s+objective 1m00s: met/);
    const missed = await thaw(["drill", "--simulate", `${dir}/missed.yaml`]);
    equal(missed.code, 3);
    match(missed.stdout, /outcome: missed \(missed: rto\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw drill --simulate --json prints one report a line and nothing else, for a directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/books/sub`, { recursive: true });
    await Deno.writeTextFile(`${dir}/books/a.yaml`, RUNBOOK("1m"));
    await Deno.writeTextFile(`${dir}/books/sub/b.yml`, RUNBOOK("5s").replace("cli-demo", "other"));
    // Relative paths resolve against the directory the user typed them in (INIT_CWD).
    const r = await thaw(["drill", "--simulate", "books", "--json"], { env: { INIT_CWD: dir } });
    equal(r.code, 3, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    equal(lines.length, 2);
    const reports = lines.map((l) => JSON.parse(l));
    deepEqual(reports.map((x) => [x.runbook, x.mode, x.outcome, x.ttr_s]), [
      ["cli-demo", "simulated", "met", 12],
      ["other", "simulated", "missed", 12],
    ]);
    for (
      const key of ["run", "strategy", "btn_s", "milestones", "objectives", "lower_bound", "bytes"]
    ) {
      ok(key in reports[0], key);
    }
    deepEqual(reports[0].steps[0], {
      id: "f1",
      kind: "fetch",
      state: "done",
      start_s: 0,
      end_s: 2,
      frozen_s: 0,
      bytes: 200e6,
      demanded: true,
      prefetched_bytes: 0,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw resolves relative paths against the working directory, when INIT_CWD is unset", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/here.yaml`, RUNBOOK("1m"));
    const r = await thaw(["drill", "--simulate", "here.yaml", "--report", "out.json"], {
      cwd: dir,
    });
    equal(r.code, 0, r.stderr);
    equal(JSON.parse(await Deno.readTextFile(`${dir}/out.json`)).runbook, "cli-demo");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw exits 2 with positioned errors and no stack trace, when a runbook is invalid", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/bad.yaml`,
      RUNBOOK("1m").replace("needs: [f1]", "needs: [f11]"),
    );
    const r = await thaw(["plan", "bad.yaml"], { env: { INIT_CWD: dir } });
    equal(r.code, 2);
    equal(r.stdout, "");
    equal(
      r.stderr,
      'bad.yaml:7:23: unknown step "f11" in needs (did you mean "f1"?)\n',
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw exits 2 with a clear error, when a run step has no estimate in simulation", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/noest.yaml`, RUNBOOK("1m").replace(", estimate: 10s", ""));
    const r = await thaw(["drill", "--simulate", "noest.yaml"], { env: { INIT_CWD: dir } });
    equal(r.code, 2);
    match(r.stderr, /^noest\.yaml:7:11: run step "s1" has no estimate/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw exits 2 with a suggestion, when a flag or command is misspelt", async () => {
  const flag = await thaw(["drill", "--simulate", "--stratgy", "lazy"]);
  equal(flag.code, 2);
  match(flag.stderr, /unknown flag --stratgy \(did you mean --strategy\?\)/);
  const strategy = await thaw(["plan", "x.yaml", "--strategy", "agressive"]);
  equal(strategy.code, 2);
  match(strategy.stderr, /did you mean "aggressive"/);
  const command = await thaw(["dril"]);
  equal(command.code, 2);
  match(command.stderr, /unknown command "dril" \(did you mean "drill"\?\)/);
  const missing = await thaw(["plan", "nowhere.yaml"]);
  equal(missing.code, 2);
  match(missing.stderr, /nowhere\.yaml: cannot read: no such file/);
});

Deno.test("thaw plan shows levels, critical path, bounds and every strategy, for a runbook", async () => {
  const r = await thaw(["plan", "testdata/plans/instant-recovery.yaml"]);
  equal(r.code, 0, r.stderr);
  for (
    const want of [
      /graph by level/,
      /critical path to TTR: fetch-catalog -> start-shop/,
      /lower bounds: TTR/,
      /serial\s/,
      /lazy\s/,
      /aggressive \*/,
    ]
  ) {
    match(r.stdout, want);
  }
});

Deno.test("thaw drill --simulate rehearses every bundled runbook, when given no path", async () => {
  const r = await thaw(["drill", "--simulate", "--json"]);
  equal(r.code, 0, r.stderr);
  const names = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l).runbook);
  ok(names.includes("instant-recovery") && names.includes("vod-restore"), names.join());
});

Deno.test("thaw schema prints the committed JSON Schema, when the schema is up to date", async () => {
  const r = await thaw(["schema"]);
  equal(r.code, 0);
  const committed = await Deno.readTextFile(ROOT + "runbooks/runbook.schema.json");
  equal(r.stdout, committed, "runbooks/runbook.schema.json is stale: run `deno task schema`");
  equal(JSON.parse(r.stdout).properties.steps.type, "array");
});

Deno.test("thaw exits 2 saying why, when the API flags are misused", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["plan", "runbooks/vod.yaml", "--listen", "8080"],
      /--listen serves the status API.*run, drill/,
    ],
    [["drill", "--simulate", "--token", "x"], /--token serves the status API/],
    [["serve", "extra"], /serve takes no arguments/],
    [["serve", "--listen", "localhost:99999"], /--listen localhost:99999: expected HOST:PORT/],
    [["serve", "--listen", "no port"], /expected HOST:PORT/],
  ];
  for (const [args, message] of cases) {
    const r = await thaw(args);
    equal(r.code, 2, args.join(" "));
    match(r.stderr, message);
    ok(!/\n\s+at /.test(r.stderr), "a stack trace");
  }
});

/** The modules `entry` loads before any dynamic `import()`, from `deno info --json`. */
async function staticGraph(entry: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(out.code, 0, new TextDecoder().decode(out.stderr));
  type Dep = { isDynamic?: boolean; code?: { specifier: string } };
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: { specifier: string; dependencies?: Dep[] }[];
  };
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const todo = [...info.roots];
  while (todo.length) {
    const s = todo.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of bySpecifier.get(s)?.dependencies ?? []) {
      if (!d.isDynamic && d.code) todo.push(d.code.specifier);
    }
  }
  return [...seen].map((s) => s.replace(`file://${ROOT}`, ""));
}

Deno.test("thaw loads a command's modules only when it runs, when its module graph is read", async () => {
  const heavy = /^(npm:|engine\/(api|pages|reports|notify|live|simulate|store\/mod))/;
  const main = await staticGraph("engine/main.ts");
  deepEqual(main.filter((m) => heavy.test(m) || m.startsWith("steps/")), []);
  ok(main.includes("engine/cli/cli.ts"), main.join("\n"));
  // Commands that read the store or a runbook load neither the API nor the live engine.
  const served =
    /^(npm:hono|engine\/(api|pages|reports)\/|engine\/(live\/loop|notify\/live_alerts)\.ts)/;
  for (const entry of ["engine/cli/runs_cmd.ts", "engine/cli/plan_cmd.ts"]) {
    const loaded = (await staticGraph(entry)).filter((m) => served.test(m));
    deepEqual(loaded, [], `${entry} loads ${loaded.join(", ")}`);
  }
});
