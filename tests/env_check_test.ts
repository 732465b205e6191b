/**
 * `${{ env.NAME }}` of an unset variable: refused before a run starts, with its position.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkEnv, runbookEnv } from "../engine/runbook/env_check.ts";
import { parseRunbook } from "../engine/runbook/load.ts";
import { childEnv, THAW_MAIN } from "./paths.ts";

const RUNBOOK = `runbook: 1
name: env-pass
env:
  RESTIC_PASSWORD: \${{ env.RESTIC_PASSWORD }}
  REPO: \${{ env.BASE }}/repo
steps:
  - id: restore
    run: printf '%s;' "$RESTIC_PASSWORD" >> pw.txt; test -f ok
    env: { BASE_AGAIN: "\${{ env.BASE }}" }
`;

Deno.test("checkEnv() names each unset variable where it is used, when the runbook passes it through", () => {
  const rb = parseRunbook(RUNBOOK, "env.yaml");
  assert.throws(() => checkEnv(rb, {}), (e: Error) => {
    assert.equal(
      e.message,
      "env.yaml:4:20: env.RESTIC_PASSWORD is not set: the runbook's env passes RESTIC_PASSWORD " +
        "through from the environment thaw runs in, which has none; export RESTIC_PASSWORD " +
        "before the run (it would be empty)\n" +
        "env.yaml:5:9: env.BASE is not set, neither in the runbook's env nor in the environment " +
        "thaw runs in: export BASE or add it to env (it would be empty)\n" +
        "env.yaml:9:25: env.BASE is not set, neither in the runbook's env nor in the environment " +
        "thaw runs in: export BASE or add it to env (it would be empty)",
    );
    return true;
  });
  checkEnv(rb, { RESTIC_PASSWORD: "", BASE: "/b" }); // set, even empty: no error
});

Deno.test("checkEnv() refuses runbook env entries, when they refer to each other in a circle", () => {
  const rb = parseRunbook(
    "runbook: 1\nname: c\nenv:\n  A: ${{ env.B }}\n  B: x${{ env.A }}\n  C: ${{ env.A }}\n" +
      "steps:\n  - id: s\n    run: echo\n",
    "c.yaml",
  );
  assert.throws(() => checkEnv(rb, { A: "1", B: "2" }), /c\.yaml:4:6: env\.B: .* circle/);
});

Deno.test("runbookEnv() reads another entry, else the engine's environment, when an entry names env", () => {
  const rb = parseRunbook(
    "runbook: 1\nname: r\nenv:\n  PW: ${{ env.PW }}\n  URL: ${{ env.HOST }}:${{ env.PORT }}\n" +
      "  PORT: '80'\nsteps:\n  - id: s\n    run: echo\n",
    "r.yaml",
  );
  assert.deepEqual(runbookEnv(rb, { PW: "s3cret", HOST: "h", PORT: "9" }, () => ""), {
    PW: "s3cret",
    URL: "h:80",
    PORT: "80",
  });
});

/** `thaw ARGS` in `dir`, with `env` over this process's environment less the test's names. */
async function thaw(dir: string, args: string[], env: Record<string, string> = {}) {
  const base = childEnv();
  delete base.RESTIC_PASSWORD;
  delete base.BASE;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", THAW_MAIN, ...args, "--store", join(dir, "s", "state.db")],
    cwd: dir,
    clearEnv: true,
    env: { ...base, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test("thaw run and thaw resume exit 2 before anything runs, when a passed-through variable is unset", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw_env_" });
  try {
    await Deno.writeTextFile(join(dir, "env.yaml"), RUNBOOK);
    const refused = await thaw(dir, ["run", "env.yaml"], { BASE: "/b" });
    assert.equal(refused.code, 2, refused.err);
    assert.match(refused.err, /env\.yaml:4:20: env\.RESTIC_PASSWORD is not set/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["env.yaml"]);

    const failed = await thaw(dir, ["run", "env.yaml"], { BASE: "/b", RESTIC_PASSWORD: "pw" });
    assert.equal(failed.code, 1, failed.err);
    assert.equal(await Deno.readTextFile(join(dir, "pw.txt")), "pw;");
    const runId = /run (\w+)/.exec(failed.out)?.[1];
    assert.ok(runId, failed.out);

    const resumeRefused = await thaw(dir, ["resume", runId], { BASE: "/b" });
    assert.equal(resumeRefused.code, 2, resumeRefused.err);
    assert.match(resumeRefused.err, /env\.yaml:4:20: env\.RESTIC_PASSWORD is not set/);
    assert.equal(await Deno.readTextFile(join(dir, "pw.txt")), "pw;", "the step ran again");

    await Deno.writeTextFile(join(dir, "ok"), "");
    const resumed = await thaw(dir, ["resume", runId], { BASE: "/b", RESTIC_PASSWORD: "pw" });
    assert.equal(resumed.code, 0, resumed.err);
    assert.equal(await Deno.readTextFile(join(dir, "pw.txt")), "pw;pw;");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
