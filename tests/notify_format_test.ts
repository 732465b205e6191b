/**
 * `notify:` as written: its shape and expressions refused with positions and advice at load
 * time, unset `${{ env.NAME }}` refused before a run, addresses resolved with secrets kept out of
 * every message.
 *
 * @module
 */
import assert from "node:assert/strict";
import { z } from "zod";
import {
  checkNotifyEnv,
  notifyEnvUses,
  notifySchema,
  resolveWebhooks,
  type Webhook,
} from "../engine/notify/mod.ts";
import { RunbookErrors } from "../engine/runbook/errors.ts";
import type { Reference } from "../engine/runbook/expressions.ts";
import { jsonSchema } from "../engine/runbook/schema.ts";
import { parseRunbook } from "../engine/runbook/load.ts";

/** The webhooks of the runbook in `text`, loaded as every runbook is. */
function loadNotify(text: string, file: string): readonly Webhook[] {
  return parseRunbook(text, file).notify;
}

const HEAD = "runbook: 1\nname: shop\nvars:\n  channel: ops\nenv:\n  TEAM: sre\n";
const STEPS = "steps:\n  - id: a\n    run: 'true'\n";

/** The messages `parseRunbook` throws for `notify` (the lines after HEAD), or [] when it loads. */
function problems(notify: string): string[] {
  try {
    loadNotify(HEAD + notify + STEPS, "shop.yaml");
    return [];
  } catch (e) {
    assert(e instanceof RunbookErrors, String(e));
    return e.errors.map((x) => x.message);
  }
}

Deno.test("parseRunbook() gives each webhook its defaults, when only url is written", () => {
  const hooks = loadNotify(
    HEAD + "notify:\n  - url: https://hooks.example.com/thaw\n" + STEPS,
    "x",
  );
  assert.equal(hooks.length, 1);
  const [hook] = hooks;
  assert.equal(hook!.url.source, "https://hooks.example.com/thaw");
  assert.deepEqual(hook!.on, ["milestone", "objective", "step-failed", "approval", "end"]);
  assert.deepEqual(hook!.headers, {});
  assert.equal(hook!.timeout, 10);
  assert.equal(hook!.retries, 5);
  assert.deepEqual(loadNotify(HEAD + STEPS, "x"), []);
});

Deno.test("parseRunbook() reads on, headers, timeout and retries, when they are written", () => {
  const [hook] = loadNotify(
    HEAD + "notify:\n  - url: ${{ env.HOOK }}\n    on: [end, milestone]\n" +
      "    headers: { Authorization: 'Bearer ${{ env.TOKEN }}' }\n    timeout: 1500ms\n" +
      "    retries: 0\n" + STEPS,
    "x",
  );
  assert.deepEqual(hook!.on, ["milestone", "end"]); // in event order
  assert.equal(hook!.timeout, 1.5);
  assert.equal(hook!.retries, 0);
  assert.equal(hook!.headers.Authorization!.source, "Bearer ${{ env.TOKEN }}");
});

Deno.test("parseRunbook() points at each mistake with advice, when the shape is wrong", () => {
  const found = problems(
    "notify:\n" +
      "  - url: https://h.example/x\n    on: [milestones, end]\n" + // lines 8-9
      "    timout: 5s\n" + // line 10
      "  - url: https://h.example/y\n    timeout: 600\n" + // lines 11-12
      "    retries: -1\n" + // line 13
      "    headers: { 'Bad Name': x }\n", // line 14
  );
  assert.deepEqual(found.slice(0, 4), [
    'shop.yaml:9:10: on[0]: "milestones" is not one of milestone, objective, step-failed, ' +
    'approval, end (did you mean "milestone"?)',
    'shop.yaml:10:5: unknown key "timout" in notify (did you mean "timeout"?)',
    'shop.yaml:12:14: timeout: invalid duration "600" (a unit is required: "600s"?)',
    "shop.yaml:13:14: retries: must be at least 0, got the number -1",
  ]);
  assert.match(found[4]!, /^shop\.yaml:14:17: invalid header name "Bad Name": use /);
  assert.equal(found.length, 5);
});

Deno.test("parseRunbook() refuses expressions notify cannot resolve, at their column", () => {
  assert.deepEqual(
    problems(
      "notify:\n  - url: https://h.example/${{ vars.chanel }}\n" +
        "    headers:\n      X-Step: ${{ steps.a.to }}\n      X-Bad: ${{ env.A\n",
    ),
    [
      'shop.yaml:8:28: unknown var "chanel" (did you mean "channel"?)',
      'shop.yaml:10:15: "${{ steps.a.to }}" cannot be used in notify; use env.NAME, vars.NAME ' +
      "or run.id",
      'shop.yaml:11:14: unclosed "${{" (missing "}}")',
    ],
  );
});

Deno.test("parseRunbook() refuses an address that is not http(s), when it is written out", () => {
  assert.deepEqual(problems("notify:\n  - url: ftp://h.example/x\n  - url: hooks.example\n"), [
    "shop.yaml:8:10: url: ftp: is not http or https; webhooks are POSTed over HTTP(S)",
    "shop.yaml:9:10: url: not a URL; write the full address, such as " +
    "https://hooks.example.com/thaw",
  ]);
  assert.deepEqual(problems("notify: []\n"), ["shop.yaml:7:9: notify: must not be empty"]);
});

Deno.test("checkNotifyEnv() names each unset variable where notify uses it, when the run starts", () => {
  const text = HEAD +
    "notify:\n  - url: ${{ env.SLACK_HOOK }}\n" +
    "    headers: { Authorization: 'Bearer ${{ env.TOKEN }}', X-Team: '${{ env.TEAM }}' }\n" +
    STEPS;
  const hooks = loadNotify(text, "shop.yaml");
  assert.deepEqual(notifyEnvUses(hooks).map((u) => u.name), ["SLACK_HOOK", "TOKEN", "TEAM"]);
  const runbook = { file: "shop.yaml", text, env: { TEAM: "sre" } };
  assert.throws(() => checkNotifyEnv(runbook, hooks, {}), (e: Error) => {
    assert(e instanceof RunbookErrors);
    assert.deepEqual(e.errors.map((x) => x.message), [
      "shop.yaml:8:10: env.SLACK_HOOK is not set, neither in the runbook's env nor in the " +
      "environment thaw runs in: export SLACK_HOOK or add it to env (notify would use an empty " +
      "value)",
      "shop.yaml:9:39: env.TOKEN is not set, neither in the runbook's env nor in the environment " +
      "thaw runs in: export TOKEN or add it to env (notify would use an empty value)",
    ]);
    return true;
  });
  // Set (even empty) in the environment, or in the runbook's env: no error.
  checkNotifyEnv(runbook, hooks, { SLACK_HOOK: "https://h.example/x", TOKEN: "" });
});

Deno.test("resolveWebhooks() keeps env values secret, when an address resolves to no URL", () => {
  const text = HEAD + "notify:\n  - url: ${{ env.HOOK }}/${{ vars.channel }}\n" + STEPS;
  const hooks = loadNotify(text, "shop.yaml");
  const value = (env: Record<string, string>) => (ref: Reference) =>
    ref.ns === "env" ? env[ref.name] ?? "" : ref.ns === "vars" ? "ops" : "R1";
  const runbook = { file: "shop.yaml", text, env: {} };
  const [hook] = resolveWebhooks(
    runbook,
    hooks,
    value({ HOOK: "https://u:pw@h.example/T0/s3cr3t" }),
  );
  assert.equal(hook!.url, "https://u:pw@h.example/T0/s3cr3t/ops");
  assert.equal(hook!.shown, "https://***@h.example/***");
  assert.throws(
    () => resolveWebhooks(runbook, hooks, value({ HOOK: "s3cr3t-token" })),
    (e: Error) => {
      assert.equal(
        e.message,
        "shop.yaml:8:10: url: not a URL; write the full address, such as " +
          'https://hooks.example.com/thaw (it resolves to "***")',
      );
      assert(!e.message.includes("s3cr3t"));
      return true;
    },
  );
});

Deno.test("notifySchema converts to JSON Schema, when merged into the runbook's", async () => {
  const { $schema: _, ...schema } = z.toJSONSchema(notifySchema, {
    io: "input",
    unrepresentable: "any",
  });
  assert.equal(schema.type, "array");
  const item = schema.items as { properties: Record<string, unknown>; required: string[] };
  assert.deepEqual(Object.keys(item.properties), ["url", "on", "headers", "timeout", "retries"]);
  assert.deepEqual(item.required, ["url"]);
  // The runbook's schema has it, and so does the file editors read (`deno task schema`).
  const runbook = jsonSchema() as { properties: Record<string, unknown> };
  assert.deepEqual(runbook.properties.notify, schema);
  const file = JSON.parse(
    await Deno.readTextFile(new URL("../runbooks/runbook.schema.json", import.meta.url)),
  ) as { properties: Record<string, unknown> };
  assert.deepEqual(file.properties.notify, schema);
});
