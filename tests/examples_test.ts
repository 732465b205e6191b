/**
 * The bundled example runbooks, run as a new user would: `thaw drill` of the real-tool examples
 * (PostgreSQL, restic) as real processes, `thaw run` of `runbooks/vod.yaml`, the restic step of
 * runbooks/FORMAT.md as written, and the `# drill needs:` convention that skips what a machine
 * cannot rehearse. Each runs in a copy of `runbooks/` in a temporary directory, removed after,
 * so the suite leaves nothing behind in the project.
 *
 * The PostgreSQL and restic tests need those tools (CI installs them, see `.ci/run`); where they
 * are missing the tests are ignored, with a line on stderr saying why.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { load } from "js-yaml";
import { fromFileUrl, thawCommand } from "./paths.ts";

const ROOT = fromFileUrl(new URL("../", import.meta.url));
const RUNBOOKS = join(ROOT, "runbooks");

/** Why the machine cannot rehearse a runbook (its `# drill needs:` check), or undefined. */
function missing(args: string[]): string | undefined {
  const out = new Deno.Command("sh", {
    args: [join(RUNBOOKS, "tools/needs.sh"), ...args],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  if (out.success) return undefined;
  return new TextDecoder().decode(out.stdout).trim() || `needs.sh exit ${out.code}`;
}

// The programs the runbook's `# drill needs:` line names; and root, for `user: postgres` (the
// tests run in a copy under /tmp, which postgres can read wherever the project is).
const POSTGRES = ["initdb", "pg_ctl", "postgres", "psql", "pg_dump", "pg_restore", "pg_isready"];
const noPostgres = missing(POSTGRES) ??
  (Deno.uid() !== 0
    ? "not root: the steps run as user postgres (user:)"
    : uid("postgres") === undefined
    ? "no user postgres"
    : undefined);
const noRestic = missing(["restic", "sha256sum"]);
if (noPostgres) console.warn(`examples_test: PostgreSQL tests ignored: ${noPostgres}`);
if (noRestic) console.warn(`examples_test: restic tests ignored: ${noRestic}`);

/** The uid of system user `name`, if there is one. */
function uid(name: string): number | undefined {
  const out = new Deno.Command("id", { args: ["-u", name], stdout: "piped", stderr: "null" })
    .outputSync();
  return out.success ? Number(new TextDecoder().decode(out.stdout).trim()) : undefined;
}

/** A copy of `runbooks/` (runbooks and tools, no generated data) in a temporary directory. */
async function copyRunbooks(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-examples-" });
  // Steps that run as user postgres must reach the copy.
  await Deno.chmod(dir, 0o755);
  const out = await new Deno.Command("cp", {
    args: ["-a", join(RUNBOOKS, "tools"), join(dir, "tools")],
  }).output();
  assert.ok(out.success, "cp tools");
  for await (const e of Deno.readDir(RUNBOOKS)) {
    if (e.isFile) await Deno.copyFile(join(RUNBOOKS, e.name), join(dir, e.name));
  }
  return dir;
}

/** `thaw ARGS` in `cwd` to its end (bounded), with its store in `cwd`. */
async function thaw(cwd: string, args: string[], env: Record<string, string> = {}) {
  const out = await thawCommand([...args, "--store", join(cwd, "state.db")], {
    cwd,
    env,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The files under `dir`, but for `.thaw/` and the store with its logs. */
async function outsideThaw(dir: string, sub = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(dir, sub))) {
    const path = sub ? `${sub}/${e.name}` : e.name;
    if (!sub && (e.name === ".thaw" || e.name === "logs" || e.name.startsWith("state.db"))) {
      continue;
    }
    if (e.isDirectory) out.push(...await outsideThaw(dir, path));
    else out.push(path);
  }
  return out.sort();
}

/** A live report, as `--json` prints it. */
interface Report {
  runbook: string;
  run: string;
  outcome: string;
  ttr_s: number | null;
  btn_s: number | null;
  steps: { id: string; state: string }[];
}

/** Stops what a real run left running: the processes whose environment names `run`. */
async function stopRun(run: string): Promise<void> {
  const mark = new TextEncoder().encode(`THAW_RUN_ID=${run}\0`);
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    let env: Uint8Array;
    try {
      env = await Deno.readFile(`/proc/${e.name}/environ`);
    } catch {
      continue;
    }
    if (!indexOf(env, mark)) continue;
    try {
      Deno.kill(Number(e.name), "SIGKILL");
    } catch { /* gone */ }
  }
}

function indexOf(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let k = 0; k < needle.length; k++) if (hay[i + k] !== needle[k]) continue outer;
    return true;
  }
  return false;
}

Deno.test({
  name: "thaw drill runbooks/postgres.yaml restores a real database, rows counted, TTR < BTN",
  ignore: noPostgres !== undefined,
  async fn() {
    const dir = await copyRunbooks();
    try {
      const r = await thaw(dir, ["drill", "postgres.yaml", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as Report;
      assert.equal(report.outcome, "met", r.stdout);
      assert.ok(report.steps.every((s) => s.state === "done"), r.stdout);
      assert.ok(report.ttr_s !== null && report.btn_s !== null);
      assert.ok(report.ttr_s < report.btn_s, `TTR ${report.ttr_s} s >= BTN: ${r.stdout}`);
      const log = await Deno.readTextFile(join(dir, "logs", report.run, "check-rows.log"));
      assert.match(log, /rows \(customers\|products\|orders\): 20000\|5000\|200000/);
      // The cluster ran as postgres, in the drill's own directory.
      const data = await Deno.stat(join(dir, ".thaw/drill/postgres/pgdata"));
      assert.equal(data.uid, uid("postgres"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "thaw drill runbooks/restic.yaml restores a real restic snapshot and serves it",
  ignore: noRestic !== undefined,
  async fn() {
    const dir = await copyRunbooks();
    try {
      const before = await outsideThaw(dir);
      const r = await thaw(dir, ["drill", "restic.yaml", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      // Everything the drill made is under .thaw/ (beside the store the test asked for).
      assert.deepEqual(await outsideThaw(dir), before);
      const report = JSON.parse(r.stdout) as Report;
      assert.equal(report.outcome, "met", r.stdout);
      assert.ok(report.steps.every((s) => s.state === "done"), r.stdout);
      const log = await Deno.readTextFile(join(dir, "logs", report.run, "check-site.log"));
      assert.match(log, /site: 3 files, every checksum as backed up/);
      // restic restored the full path: /site under the fetch's `to`.
      const site = join(dir, ".thaw/drill/restic/restic/site/pages.db");
      assert.equal((await Deno.stat(site)).size, 8 * 1048576);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "runbooks/FORMAT.md's restic step works as written, with restic's own variables set",
  ignore: noRestic !== undefined,
  async fn() {
    const doc = await Deno.readTextFile(join(RUNBOOKS, "FORMAT.md"));
    const block = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(block, "no yaml example in FORMAT.md");
    const example = load(block) as {
      steps: { id: string; fetch?: { run?: string; to?: string } }[];
    };
    const step = example.steps.find((s) => s.fetch?.run?.includes("restic"));
    assert.ok(step, "no restic step in FORMAT.md's example");
    const dir = await Deno.makeTempDir({ prefix: "thaw-format-" });
    try {
      // A repository as the comment describes it: a snapshot holding /archive.
      const env = { RESTIC_REPOSITORY: join(dir, "repo"), RESTIC_PASSWORD: "not-a-secret" };
      await Deno.mkdir(join(dir, "src/archive"), { recursive: true });
      await Deno.writeTextFile(join(dir, "src/archive/2024.bin"), "twenty twenty-four\n");
      for (const [args, cwd] of [[["init"], dir], [["backup", "archive"], join(dir, "src")]]) {
        const out = await new Deno.Command("restic", {
          args: [...args as string[], "--quiet", "--no-cache"],
          cwd: cwd as string,
          env,
          stdout: "null",
          stderr: "piped",
        }).output();
        assert.ok(out.success, new TextDecoder().decode(out.stderr));
      }
      const runbook = {
        runbook: 1,
        name: "format-restic",
        vars: { root: "./restore" },
        steps: [step],
      };
      await Deno.writeTextFile(join(dir, "rb.yaml"), JSON.stringify(runbook));
      const r = await thaw(dir, ["run", "rb.yaml", "--json"], env);
      assert.equal(r.code, 0, r.stderr);
      // Where the example's comment says the archive lands: `to`/archive.
      const to = String(step.fetch?.to).replace("${{ vars.root }}", "restore");
      assert.equal(
        await Deno.readTextFile(join(dir, to, "archive/2024.bin")),
        "twenty twenty-four\n",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("thaw drill skips a runbook whose `# drill needs:` check fails, and says why", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-needs-" });
  try {
    const needs = `# drill needs: echo "not installed: frobnicate (Debian: frob)"; exit 1\n`;
    const body = (name: string) =>
      `runbook: 1\nname: ${name}\nsteps:\n  - { id: a, run: "touch ran-${name}; exit 1" }\n`;
    await Deno.writeTextFile(join(dir, "a.yaml"), needs + body("skipped"));
    await Deno.writeTextFile(join(dir, "b.yaml"), "# drill needs: true\n" + body("drilled"));
    const r = await thaw(dir, ["drill", "a.yaml", "b.yaml", "--json"]);
    assert.match(
      r.stderr,
      /thaw: skipped a\.yaml: not installed: frobnicate \(Debian: frob\) \(a\.yaml:1: drill needs:/,
    );
    assert.equal(await exists(join(dir, "ran-skipped")), false, "the skipped runbook ran");
    assert.equal(await exists(join(dir, "ran-drilled")), true, "the other one did not run");
    assert.equal(r.stdout.trim().split("\n").length, 1, "one report: b.yaml's");
    assert.equal(r.code, 1, "b.yaml's step fails");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Every runbook shipped in `runbooks/`, parsed. */
async function bundled(): Promise<{ file: string; rb: Bundled }[]> {
  const out: { file: string; rb: Bundled }[] = [];
  for await (const e of Deno.readDir(RUNBOOKS)) {
    if (!e.isFile || !/\.ya?ml$/.test(e.name)) continue;
    out.push({
      file: e.name,
      rb: load(await Deno.readTextFile(join(RUNBOOKS, e.name))) as Bundled,
    });
  }
  assert.ok(out.length >= 4, "the bundled runbooks");
  return out;
}

interface Bundled {
  vars?: Record<string, string>;
  steps: {
    id: string;
    run?: string;
    ready?: { run?: string };
    fetch?: { to: string; run?: string };
  }[];
}

Deno.test("every bundled runbook, run for real, writes only under runbooks/ and has its scripts", async () => {
  let scripts = 0;
  for (const { file, rb } of await bundled()) {
    const vars = rb.vars ?? {};
    for (const step of rb.steps) {
      if (step.fetch) {
        const to = step.fetch.to.replace(/\$\{\{ *vars\.([\w-]+) *\}\}/g, (_, v) => vars[v] ?? "");
        const path = join(RUNBOOKS, to);
        assert.ok(
          !to.startsWith("/") && path.startsWith(join(RUNBOOKS, ".thaw") + "/"),
          `${file}: ${step.id} writes ${to} in a real run, outside runbooks/.thaw/`,
        );
      }
      for (const command of [step.run, step.fetch?.run, step.ready?.run]) {
        for (
          const [script] of (command ?? "").matchAll(
            /(?<![\w$/])\.?\.?\/?[\w-]+\/[\w./-]+\.(sh|ts)\b/g,
          )
        ) {
          assert.ok(
            await exists(join(RUNBOOKS, script)),
            `${file}: ${step.id} runs ${script}: missing`,
          );
          scripts++;
        }
      }
    }
  }
  assert.ok(scripts >= 10, `only ${scripts} scripts found in the bundled runbooks' commands`);
});

Deno.test({
  name: "thaw run runbooks/vod.yaml, as the README shows it, restores under runbooks/.thaw/ only",
  async fn() {
    const dir = await copyRunbooks();
    const srv = await exists("/srv/vod");
    let run = "";
    try {
      const child = thawCommand(["run", "vod.yaml", "--json", "--store", join(dir, "state.db")], {
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(120_000),
      }).spawn();
      const output = child.output();
      // dns-cutover waits for a person: approve it as the README says.
      for (let i = 0; i < 600 && !run; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const s = await thaw(dir, ["status", "--json"]);
        run = s.code === 0 ? (JSON.parse(s.stdout) as { run: string }[])[0]?.run ?? "" : "";
      }
      assert.ok(run, "the run never showed in the store");
      const approved = await thaw(dir, ["approve", run, "dns-cutover"]);
      assert.equal(approved.code, 0, approved.stderr);
      const out = await output;
      const stdout = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr) + stdout);
      const report = JSON.parse(stdout) as Report;
      assert.equal(report.outcome, "met");
      assert.ok(report.steps.every((s) => s.state === "done"), stdout);
      const log = await Deno.readTextFile(join(dir, "logs", run, "dns-cutover.log"));
      assert.match(log, /cutover: would point vod\.example\.com at 127\.0\.0\.1:18100/);
      const restored = join(dir, ".thaw/restore/vod");
      assert.equal((await Deno.stat(join(restored, "media/hot.tar"))).size, 48 * 1048576);
      assert.ok(await exists(join(restored, "archive/2025.bin")));
      assert.equal(await exists("/srv/vod"), srv, "the real run wrote to /srv/vod");
    } finally {
      if (run) await stopRun(run); // a real run leaves its services running
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "thaw drill runbooks/shared-link.yaml measures the shop's level dip until BTN, then normal",
  async fn() {
    const dir = await copyRunbooks();
    try {
      const r = await thaw(dir, ["drill", "shared-link.yaml", "--json"]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const report = JSON.parse(r.stdout);
      const sl = report.service_level["catalog-page"];
      // Back at once (TTR well before BTN), sampled through the recovery and 5 s after BTN.
      assert.ok(report.ttr_s < report.btn_s - 2, r.stdout);
      assert.ok(sl.recovery.samples >= 8 && sl.normal.samples >= 10, JSON.stringify(sl));
      assert.equal(sl.recovery.success, 1);
      // The dip: the restore shares the link, so a page takes longer until BTN (fair share:
      // about twice as long; at least 30% worse on any machine), and recovers after it.
      assert.ok(sl.degradation > 0.3, `degradation ${sl.degradation}`);
      assert.ok(sl.normal.p50_ms < sl.recovery.p50_ms, JSON.stringify(sl));
      assert.equal(sl.outcome, "met");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("tools/fresh.sh empties a restore root an example made, and refuses any other", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-fresh-" });
  const fresh = (root: string) =>
    new Deno.Command("sh", {
      args: [join(RUNBOOKS, "tools/fresh.sh"), root],
      stdout: "piped",
      stderr: "piped",
    }).output();
  try {
    const root = join(dir, "restore");
    assert.ok((await fresh(root)).success, "a new root");
    await Deno.mkdir(join(root, "archive"));
    await Deno.writeTextFile(join(root, "archive/old.bin"), "an earlier run");
    assert.ok((await fresh(root)).success, "a root an example made");
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(root))).map((e) => e.name),
      [".thaw-example"],
    );
    await Deno.writeTextFile(join(root, "old.bin"), "an earlier run");
    const keep = new Deno.Command("sh", {
      args: [join(RUNBOOKS, "tools/fresh.sh"), "--keep-previous", root],
    }).outputSync();
    assert.ok(keep.success, "--keep-previous");
    assert.equal(await Deno.readTextFile(join(`${root}.previous`, "old.bin")), "an earlier run");
    assert.equal(await exists(join(root, "old.bin")), false);
    const mine = join(dir, "mine");
    await Deno.mkdir(mine);
    await Deno.writeTextFile(join(mine, "precious"), "not thaw's");
    const refused = await fresh(mine);
    assert.equal(refused.success, false);
    assert.match(new TextDecoder().decode(refused.stderr), /was not made by an example runbook/);
    assert.equal(await Deno.readTextFile(join(mine, "precious")), "not thaw's");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
