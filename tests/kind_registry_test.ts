/**
 * The plug-in registries (`steps/kind.ts`): what they refuse, how an unknown name is reported, a
 * step kind of a test's own merged into the schema and the model, and the `local` target.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { z } from "zod";
import {
  jsonSchema,
  localTarget,
  parseRunbook,
  registerSource,
  registerStepKind,
  RegistryError,
  RunbookErrors,
  sourceFor,
  type StepKind,
  stepKind,
  target,
} from "../mod.ts";
import type { StepBase } from "../engine/runbook/model.ts";
import { Resolver } from "../engine/runbook/resolve.ts";
import { fetchKind } from "../steps/fetch/kind.ts";
import { runKind } from "../steps/run/kind.ts";
import { realClock } from "../steps/types.ts";
import { toySource } from "./toy_source.ts";

/** A step kind of the test's own: `pause: 2s` waits that long. */
interface PauseStep extends StepBase {
  readonly kind: "pause";
  readonly seconds: number;
}

const pauseKind: StepKind<PauseStep, { ms: number }> = {
  key: "pause",
  summary: "a wait",
  schema: {
    pause: z.string().optional().meta({ description: "How long to wait (pause step)" }),
    jitter: z.boolean().optional(),
  },
  check(raw, ctx) {
    if (typeof raw.pause === "string" && !/^\d+s$/.test(raw.pause)) {
      ctx.problem(["pause"], "value", `pause: expected seconds like 2s, got "${raw.pause}"`);
    }
  },
  model: (raw, ctx) => ({
    kind: "pause",
    seconds: ctx.duration(["pause"], raw.pause as string) ?? 0,
  }),
  templates: () => [],
  spec: (step) => ({ ms: step.seconds * 1000 }),
  figures: (step) => ({ type: "time", seconds: step.seconds }),
  async execute(spec, ctx) {
    await ctx.clock.sleep(spec.ms, ctx.signal);
    ctx.log(`paused ${spec.ms}ms`);
    return { ok: true };
  },
};

const PAUSE_BOOK = `runbook: 1
name: pauses
steps:
  - id: wait
    pause: 1s
  - id: after
    needs: [wait]
    run: "true"
`;

function problems(text: string): string {
  try {
    parseRunbook(text, "rb.yaml");
  } catch (error) {
    assert(error instanceof RunbookErrors, String(error));
    return error.message;
  }
  return assert.fail("the runbook loaded");
}

Deno.test("registerSource() refuses a key that is taken, and takes it once it is free", () => {
  assert.throws(
    () => registerSource({ ...toySource, key: "http" }),
    (e) => e instanceof RegistryError && e.message === 'source "http" is already registered',
  );
  const first = registerSource(toySource);
  assert.throws(() => registerSource(toySource), RegistryError);
  assert.equal(sourceFor("toy://a/1")?.key, "toy");
  first.unregister();
  assert.equal(sourceFor("toy://a/1"), undefined);
  using _again = registerSource(toySource);
  assert.equal(sourceFor("toy://a/1")?.key, "toy");
});

Deno.test("stepKind() names the closest kind, when the key is unknown", () => {
  assert.equal(stepKind("fetch"), fetchKind);
  assert.throws(
    () => stepKind("fetsh"),
    (e) =>
      e instanceof RegistryError &&
      e.message === 'unknown step kind "fetsh" (did you mean "fetch"?); registered: run, fetch',
  );
  assert.throws(() => target("lokal"), /unknown target "lokal" \(did you mean "local"\?\)/);
});

Deno.test("registerStepKind() refuses a kind, when its keys belong to another kind or every step", () => {
  const clash = (schema: Record<string, z.ZodType>) => () =>
    registerStepKind({ ...pauseKind, schema: { pause: z.string(), ...schema } });
  assert.throws(clash({ shell: z.string() }), /the step key "shell" belongs to step kind "run"/);
  assert.throws(clash({ timeout: z.string() }), /"timeout" is a key every step has/);
  assert.throws(() => registerStepKind(runKind), /step kind "run" is already registered/);
  assert.throws(
    () => registerStepKind({ ...pauseKind, schema: { wait: z.string() } }),
    /its schema must have the key "pause"/,
  );
});

Deno.test("parseRunbook() loads a step of a registered kind, and names it in messages", () => {
  const before = JSON.stringify(jsonSchema());
  assert.match(problems(PAUSE_BOOK), /rb\.yaml:5:5: unknown key "pause" in step "wait"/);
  {
    using _pause = registerStepKind(pauseKind);
    const rb = parseRunbook(PAUSE_BOOK, "rb.yaml");
    const step = rb.steps[0] as unknown as PauseStep;
    assert.equal(step.kind, "pause");
    assert.equal(step.seconds, 1);
    assert.deepEqual(new Resolver(rb, "r1", {}).spec(rb.steps[0]!), { ms: 1000 });
    assert.deepEqual(pauseKind.figures(step), { type: "time", seconds: 1 });

    const schema = jsonSchema() as { properties: { steps: { items: { properties: object } } } };
    const keys = Object.keys(schema.properties.steps.items.properties);
    assert.deepEqual(keys.slice(0, 9), [
      "id",
      "needs",
      "run",
      "fetch",
      "pause",
      "shell",
      "background",
      "ready",
      "jitter",
    ]);
    assert.equal(
      problems(
        PAUSE_BOOK.replace("pause: 1s", "pasue: 1s").replace(
          "    run:",
          "    jitter: true\n    run:",
        ),
      ),
      [
        'rb.yaml:4:5: step "wait" needs one of "run" (a command), "fetch" (a data set to bring ' +
        'home) or "pause" (a wait)',
        'rb.yaml:5:5: unknown key "pasue" in step "wait" (did you mean "pause"?)',
        'rb.yaml:8:5: "jitter" applies to pause steps only',
      ].join("\n"),
    );
    assert.equal(
      problems(PAUSE_BOOK.replace('run: "true"', 'run: "cat ${{ steps.wait.to }}"')),
      'rb.yaml:8:15: step "wait" is a pause step; only fetch steps have a destination (.to)',
    );
    // The kind's check, then its model's unit, both at the value.
    assert.equal(
      problems(PAUSE_BOOK.replace("pause: 1s", "pause: soon")),
      'rb.yaml:5:12: pause: expected seconds like 2s, got "soon"\n' +
        'rb.yaml:5:12: pause: invalid duration "soon": expected a duration such as 250ms, 30s, ' +
        "5m, 1h30m or 2d",
    );
  }
  assert.equal(JSON.stringify(jsonSchema()), before);
  assert.match(problems(PAUSE_BOOK), /unknown key "pause"/);
});

Deno.test("StepKind.execute() reports its effect as data and logs through ctx.log", async () => {
  using _pause = registerStepKind(pauseKind);
  const lines: string[] = [];
  const effect = await stepKind("pause").execute({ ms: 5 }, {
    signal: new AbortController().signal,
    clock: realClock,
    env: {},
    cwd: "/",
    log: (line) => lines.push(line),
  });
  assert.deepEqual(effect, { ok: true });
  assert.deepEqual(lines, ["paused 5ms"]);
});

Deno.test("Resolver.spec() gives what the built-in kinds' specs give, when the step is run or fetch", () => {
  const rb = parseRunbook(
    `runbook: 1
name: x
steps:
  - { id: f, fetch: { from: ./b/f.dump, to: ./r/f.dump, size: 1MB, rate: 2MB/s }, timeout: 5s }
  - { id: r, needs: [f], run: "cat \${{ steps.f.to }}", ready: { tcp: "127.0.0.1:9" } }
`,
    "/srv/x.yaml",
    { dir: "/srv" },
  );
  const resolver = new Resolver(rb, "r1", {});
  const [f, r] = rb.steps as [
    Parameters<typeof resolver.fetchSpec>[0],
    Parameters<typeof resolver.runSpec>[0],
  ];
  assert.deepEqual(resolver.spec(f), {
    sources: [{ kind: "location", location: "/srv/b/f.dump" }],
    to: "/srv/r/f.dump",
    tmp: "/srv/r/.f.dump.thaw-r1.part",
    retries: 0,
    size: 1_000_000,
    timeoutMs: 5000,
  });
  assert.deepEqual(resolver.spec(f), resolver.fetchSpec(f));
  assert.equal(resolver.tmp(f), "/srv/r/.f.dump.thaw-r1.part");
  assert.deepEqual(resolver.spec(r), resolver.runSpec(r));
  assert.equal(resolver.runSpec(r).command, "cat '/srv/r/f.dump'");
  assert.deepEqual(fetchKind.figures(f), { type: "data", bytes: 1e6, rate: 2e6, local: false });
  assert.deepEqual(runKind.figures(r), { type: "time", seconds: undefined });
});

Deno.test("localTarget runs a process group and lands files, when used as a Target", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(target("local"), localTarget);
    const out: Uint8Array[] = [];
    const done = await localTarget.spawn({
      shell: "sh",
      command: "echo hi; exit 3",
      cwd: dir,
      env: { PATH: "/usr/bin:/bin" },
      stdout: (c) => out.push(c),
    });
    assert.equal((await done.status).code, 3);
    await done.drained;
    await done.closeOutput();
    assert.equal(new TextDecoder().decode(out[0]), "hi\n");

    const sleeper = await localTarget.spawn({
      shell: "sh",
      command: "sleep 30 & sleep 30",
      cwd: dir,
      env: { PATH: "/usr/bin:/bin" },
    });
    try {
      assert.equal(await localTarget.groupAlive(sleeper.pgid), true);
      assert.notEqual(await localTarget.killGroup(sleeper.pgid, 1000), "gone");
      assert.equal(await localTarget.groupAlive(sleeper.pgid), false);
    } finally {
      await localTarget.killGroup(sleeper.pgid, 0);
      await sleeper.status;
      await sleeper.closeOutput();
    }

    const path = join(dir, "a/b/.f.part");
    await assert.rejects(
      localTarget.spawn({ shell: "/no/such/shell", command: "", cwd: dir, env: {} }),
    );
    await localTarget.mkdir(join(dir, "a/b"));
    const enc = (s: string) => new TextEncoder().encode(s);
    let w = await localTarget.openWrite(path);
    await w.write(enc("hello world"));
    await w.close();
    w = await localTarget.openWrite(path, { offset: 5 });
    await w.write(enc("!"));
    await w.close();
    w = await localTarget.openWrite(path, { append: true });
    await w.write(enc("?"));
    await w.sync();
    await w.close();
    assert.equal(await Deno.readTextFile(path), "hello!?");
    assert.deepEqual(
      { ...(await localTarget.stat(path))!, mtimeMs: 0 },
      { type: "file", size: 7, mtimeMs: 0 },
    );
    await localTarget.rename(path, join(dir, "a/b/f"));
    assert.equal(await localTarget.stat(path), null);
    assert.equal(
      await localTarget.sha256(join(dir, "a/b/f")),
      createHash("sha256").update("hello!?").digest("hex"),
    );
    await localTarget.remove(join(dir, "a"));
    await localTarget.remove(join(dir, "a"));
    assert.equal(await localTarget.stat(join(dir, "a")), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stepKind().execute() runs and fetches, when the built-ins get one plain context", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "b.dump"), "data");
    const rb = parseRunbook(
      `runbook: 1
name: x
steps:
  - { id: f, fetch: { from: ./b.dump, to: ./r/b.dump } }
  - { id: r, needs: [f], run: "cat \${{ steps.f.to }} > copy" }
`,
      join(dir, "x.yaml"),
      { dir },
    );
    const resolver = new Resolver(rb, "r1", {});
    const ctx = {
      signal: new AbortController().signal,
      clock: realClock,
      env: { PATH: "/usr/bin:/bin" },
      cwd: dir,
      log: () => {},
    };
    for (const step of rb.steps) {
      const effect = await stepKind(step.kind).execute(resolver.spec(step), ctx);
      assert.equal(effect.ok, true, effect.reason ?? "");
    }
    assert.equal(await Deno.readTextFile(join(dir, "copy")), "data");
    const elsewhere = { ...localTarget, name: "db1" };
    // Another target: the data lands through its file operations (here: this machine's).
    const landed = await stepKind("fetch").execute(resolver.spec(rb.steps[0]!), {
      ...ctx,
      target: elsewhere,
    });
    assert.deepEqual(landed, { ok: true, bytes: 4, transferred: 4, source: 0, replaced: "file" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
