/**
 * `notify:` end to end through the real `thaw` command in a child process, posting to real
 * receivers on 127.0.0.1: what a drill tells and in which order, an unset secret refused before
 * anything runs, a dead or failing webhook that neither stops nor fails the run, and secrets kept
 * out of everything thaw writes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../engine/store/mod.ts";
import { thawCommand } from "./paths.ts";
import { receiver, silent } from "./webhook_receiver.ts";

const TOKEN = "tok-s3cret-7f3a";
const SECRET_PATH = "T0/B0/hush-9c1e";

/** `thaw ARGS --store DIR/state.db` in `dir` with `env` added to the environment. */
async function thaw(dir: string, args: string[], env: Record<string, string>) {
  const out = await thawCommand([...args, "--store", join(dir, "state.db")], { cwd: dir, env })
    .output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** Every file's text under `dir` (logs, reports, the store), by path. */
async function texts(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string, depth: number) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory && depth < 5) await walk(p, depth + 1);
      else if (e.isFile) out.set(p, new TextDecoder().decode(await Deno.readFile(p)));
    }
  };
  await walk(dir, 0);
  return out;
}

/** Asserts that no secret appears in `text` (`where` names it in the failure). */
function noSecrets(text: string, where: string): void {
  for (const s of [TOKEN, SECRET_PATH, "hush-9c1e"]) {
    assert(!text.includes(s), `${where} shows the secret ${s}:\n${text}`);
  }
}

Deno.test("thaw drill tells a webhook milestone, step-failed, approval and end, in order", async () => {
  const dir = await Deno.makeTempDir();
  let approve = (_run: string) => Promise.resolve();
  const hook = receiver(async (r) => {
    if (r.body.event === "approval") await approve(r.body.run);
    return new Response("ok");
  });
  const store = await openStore(join(dir, "state.db"));
  approve = async (run) => void await store.addCommand(run, "approve", "cutover");
  try {
    await Deno.writeTextFile(
      join(dir, "alerts.yaml"),
      `runbook: 1
name: alerts
notify:
  - url: \${{ env.HOOK }}/\${{ run.id }}
    headers: { Authorization: "Bearer \${{ env.TOKEN }}" }
    timeout: 5s
steps:
  - { id: db, run: "sleep 0.2", shell: sh, milestone: service }
  - { id: broken, needs: [db], run: "echo disk full >&2; exit 3", shell: sh, on-failure: isolate }
  - { id: warm, needs: [db], run: "sleep 1", shell: sh }
  - id: cutover
    needs: [warm]
    run: "true"
    shell: sh
    approval: Send traffic to the DR site
`,
    );
    const r = await thaw(dir, ["drill", "alerts.yaml", "--json", "--listen", "127.0.0.1:0"], {
      HOOK: `${hook.url}/${SECRET_PATH}`,
      TOKEN,
    });
    const report = JSON.parse(r.stdout);
    assert.equal(report.outcome, "failed", r.stderr);
    const events = hook.got.map((g) => g.body.event);
    assert.deepEqual(events, ["milestone", "step-failed", "approval", "end"], r.stderr);
    const run = report.run ?? hook.got[0]!.body.run;
    for (const g of hook.got) {
      assert.equal(g.path, `/${SECRET_PATH}/${run}`);
      assert.equal(g.headers.get("authorization"), `Bearer ${TOKEN}`);
      assert.equal(g.headers.get("content-type"), "application/json");
      assert.equal(typeof g.body.text, "string"); // what Slack shows
      assert.equal(g.body.drill, true);
      assert.equal(g.body.runbook, "alerts");
      assert.match(g.body.page ?? "", new RegExp(`^http://127\\.0\\.0\\.1:\\d+/runs/${run}/page$`));
    }
    const text = (e: string) => hook.got.find((g) => g.body.event === e)!.body.text;
    assert.match(text("milestone"), /^\[drill\] alerts: milestone service reached at [\d.]+s/);
    assert.match(text("step-failed"), /^\[drill\] alerts: step broken failed at .+disk full/);
    assert.match(text("approval"), /waiting for approval: Send traffic to the DR site/);
    assert.match(text("end"), /^\[drill\] alerts: ended failed \(failed: broken\)/);
    assert(!/thaw: notify:/.test(r.stderr), r.stderr); // all delivered: nothing to say
    noSecrets(r.stderr + r.stdout, "the output");
  } finally {
    await store.close();
    await hook.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw drill refuses an unset env in a notify header before anything runs", async () => {
  const dir = await Deno.makeTempDir();
  const hook = receiver(() => new Response("ok"));
  try {
    await Deno.writeTextFile(
      join(dir, "alerts.yaml"),
      `runbook: 1
name: alerts
notify:
  - url: ${hook.url}/hooks
    headers:
      Authorization: "Bearer \${{ env.NOTIFY_TOKEN_UNSET }}"
steps:
  - { id: mark, run: "touch ran", shell: sh }
`,
    );
    const r = await thaw(dir, ["drill", "alerts.yaml"], {});
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /alerts\.yaml:6:30: env\.NOTIFY_TOKEN_UNSET is not set/);
    assert(!r.stderr.includes("    at "), "no stack trace");
    await assert.rejects(Deno.stat(join(dir, "ran")), Deno.errors.NotFound);
    assert.equal(hook.got.length, 0);
  } finally {
    await hook.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw drill ends and says so, when webhooks never answer or fail", async () => {
  const dir = await Deno.makeTempDir();
  const dead = silent();
  // Echoes the token and the address in its error body: thaw must not print them.
  const failing = receiver((r) =>
    new Response(`no: ${r.headers.get("authorization")} ${r.path}`, { status: 403 })
  );
  try {
    await Deno.writeTextFile(
      join(dir, "alerts.yaml"),
      `runbook: 1
name: alerts
notify:
  - url: \${{ env.DEAD }}
    on: [milestone, end]
    timeout: 1500ms
    retries: 0
  - url: \${{ env.FAILING }}
    headers: { Authorization: "Bearer \${{ env.TOKEN }}" }
    on: [end]
steps:
  - { id: db, run: "true", shell: sh, milestone: service }
  - { id: web, needs: [db], run: "sleep 0.2", shell: sh }
`,
    );
    const r = await thaw(dir, ["drill", "alerts.yaml", "--json"], {
      DEAD: `${dead.url}/${SECRET_PATH}`,
      FAILING: `${failing.url}/${SECRET_PATH}`,
      TOKEN,
    });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.outcome, "met");
    // The milestone's request hung for its whole timeout while web ran: the run never waited.
    assert(report.btn_s < 1.5, `BTN ${report.btn_s}s: the run waited for a webhook`);
    assert.equal(failing.got.length, 1); // a 403 is not retried
    // The end of the run says what was not delivered, and why.
    assert.match(
      r.stderr,
      new RegExp(
        `thaw: notify: ${dead.url}/\\*\\*\\*: 0 sent, 2 failed, 0 dropped ` +
          `\\(last: no answer within 1\\.5s \\(timeout\\)\\)`,
      ),
    );
    assert.match(
      r.stderr,
      new RegExp(`thaw: notify: ${failing.url}/\\*\\*\\*: 0 sent, 1 failed, 0 dropped`),
    );
    assert.match(r.stderr, /end notification to .+ failed: HTTP 403.+not retried: fix the webhook/);
    noSecrets(r.stderr + r.stdout, "the output");
    const files = await texts(dir);
    const log = [...files].find(([p]) => p.endsWith("notify.log"));
    assert(log, `no notify.log in ${[...files.keys()].join(", ")}`);
    assert.match(log[1], /milestone notification to .+ failed: no answer within 1\.5s \(timeout\)/);
    for (const [path, text] of files) {
      if (!path.endsWith("alerts.yaml")) noSecrets(text, path);
    }
  } finally {
    await failing.close();
    await dead.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw resume tells only what happens after it, when the run failed before", async () => {
  const dir = await Deno.makeTempDir();
  const hook = receiver(() => new Response("ok"));
  try {
    await Deno.writeTextFile(
      join(dir, "alerts.yaml"),
      `runbook: 1
name: alerts
notify:
  - url: \${{ env.HOOK }}
steps:
  - { id: db, run: "test -f fixed", shell: sh, milestone: service }
`,
    );
    const env = { HOOK: `${hook.url}/hooks` };
    const first = await thaw(dir, ["drill", "alerts.yaml", "--json"], env);
    assert.equal(JSON.parse(first.stdout).outcome, "failed", first.stderr);
    const run = hook.got[0]!.body.run;
    assert.deepEqual(hook.got.map((g) => g.body.event), ["step-failed", "end"]);
    await Deno.writeTextFile(join(dir, "fixed"), "");
    const again = await thaw(dir, ["resume", run, "--json"], env);
    assert.equal(JSON.parse(again.stdout).outcome, "met", again.stderr);
    assert.deepEqual(hook.got.slice(2).map((g) => [g.body.event, g.body.run]), [
      ["milestone", run],
      ["end", run],
    ]);
  } finally {
    await hook.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw drill --simulate sends nothing, when the runbook has webhooks", async () => {
  const dir = await Deno.makeTempDir();
  const hook = receiver(() => new Response("ok"));
  try {
    await Deno.writeTextFile(
      join(dir, "alerts.yaml"),
      `runbook: 1
name: alerts
notify:
  - url: ${hook.url}/hooks
steps:
  - { id: db, run: "true", estimate: 1s, milestone: service }
`,
    );
    const r = await thaw(dir, ["drill", "--simulate", "alerts.yaml"], {});
    assert.equal(r.code, 0, r.stderr);
    assert.equal(hook.got.length, 0);
    assert(!r.stderr.includes("notify"), r.stderr);
  } finally {
    await hook.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw drill tells a predicted miss, then back on track, when a step beats its estimate", async () => {
  const dir = await Deno.makeTempDir();
  const hook = receiver(() => new Response("ok"));
  try {
    // The estimate says 5 s against a 2 s BTN objective; the step takes 1 s.
    await Deno.writeTextFile(
      join(dir, "alerts.yaml"),
      `runbook: 1
name: alerts
objectives: { btn: 2s }
notify:
  - url: \${{ env.HOOK }}
    on: [objective]
steps:
  - { id: slow, run: "sleep 1", shell: sh, estimate: 5s }
`,
    );
    const r = await thaw(dir, ["drill", "alerts.yaml", "--json"], { HOOK: `${hook.url}/hooks` });
    assert.equal(JSON.parse(r.stdout).outcome, "met", r.stderr);
    assert.deepEqual(hook.got.map((g) => [g.body.event, g.body.status]), [
      ["objective", "predicted"],
      ["objective", "on-track"],
    ]);
    assert.match(hook.got[0]!.body.text, /BTN predicted to miss its objective: predicted at 5/);
  } finally {
    await hook.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw run refuses a webhook address that is no URL, without showing it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "alerts.yaml"),
      `runbook: 1
name: alerts
notify:
  - url: \${{ env.HOOK }}
steps:
  - { id: mark, run: "touch ran", shell: sh }
`,
    );
    const r = await thaw(dir, ["run", "alerts.yaml"], { HOOK: SECRET_PATH });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^alerts\.yaml:4:10: url: not a URL; write the full address, such as /);
    assert.match(r.stderr, /\(it resolves to "\*\*\*"\)/);
    noSecrets(r.stderr + r.stdout, "the output");
    await assert.rejects(Deno.stat(join(dir, "ran")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
