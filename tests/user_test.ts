/**
 * `user:` through the real CLI and a real system user: commands, `run:` probes and `run:` fetch
 * sources run as that user, what a fetch writes is owned by it, and an unknown user (or one thaw
 * cannot become) is exit 2 before anything runs.
 */
import { equal, match, ok, throws } from "node:assert/strict";
import { join } from "node:path";
import { parseRunbook } from "../engine/runbook/load.ts";
import { checkUsers } from "../engine/live/user_check.ts";
import { lookupUser } from "../steps/process/user.ts";
import { thaw } from "./live_helpers.ts";

const USER = "thawtest";

/** The test's system user, created if this machine (where tests run as root) lacks it. */
async function testUser(): Promise<{ uid: number; gid: number }> {
  let user = lookupUser(USER);
  if (!user) {
    const out = await new Deno.Command("useradd", {
      args: ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
      stdout: "null",
      stderr: "piped",
    }).output();
    // Created meanwhile by a parallel test run: fine.
    if (!out.success && out.code !== 9) {
      throw new Error(`useradd ${USER}: ${new TextDecoder().decode(out.stderr)}`);
    }
    const line = new TextDecoder().decode(
      (await new Deno.Command("getent", { args: ["passwd", USER], stdout: "piped" }).output())
        .stdout,
    );
    const f = line.split(":");
    user = { name: USER, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? "/" };
  }
  return { uid: user.uid, gid: user.gid };
}

/** A fresh directory anybody may write in, holding `rb.yaml`; removed after `body`. */
async function inDir(runbook: string, body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "thaw_user_" });
  try {
    await Deno.chmod(dir, 0o777);
    await Deno.writeTextFile(join(dir, "rb.yaml"), runbook);
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const root = Deno.uid() === 0;

Deno.test({
  name: "thaw run runs commands, probes and fetch commands as user:, which owns what it fetches",
  ignore: !root,
  fn: async () => {
    const { uid, gid } = await testUser();
    await inDir(
      `runbook: 1
name: as-user
steps:
  - id: who
    user: ${USER}
    run: 'id -un > who.txt; echo "$HOME $USER $LOGNAME" > env.txt'
    ready: { run: 'test "$(id -un)" = ${USER} && touch probed' }
  - id: copy
    user: ${USER}
    fetch: { from: ./backup.bin, to: ./restore/deep/copy.bin }
  - id: gen
    user: ${USER}
    fetch: { run: 'id -un > "$THAW_TO"', to: ./made/gen.txt }
`,
      async (dir) => {
        await Deno.writeTextFile(join(dir, "backup.bin"), "data");
        const run = await thaw(dir, ["run", "rb.yaml"]);
        equal(run.code, 0, run.stdout + run.stderr);
        equal((await Deno.readTextFile(join(dir, "who.txt"))).trim(), USER);
        const home = lookupUser(USER)!.home;
        equal((await Deno.readTextFile(join(dir, "env.txt"))).trim(), `${home} ${USER} ${USER}`);
        equal((await Deno.stat(join(dir, "who.txt"))).uid, uid);
        equal((await Deno.stat(join(dir, "probed"))).uid, uid);
        for (const p of ["restore", "restore/deep", "restore/deep/copy.bin", "made/gen.txt"]) {
          const info = await Deno.stat(join(dir, p));
          equal(info.uid, uid, `${p} owned by ${info.uid}`);
          equal(info.gid, gid, `${p} group ${info.gid}`);
        }
        equal(await Deno.readTextFile(join(dir, "restore/deep/copy.bin")), "data");
        equal((await Deno.readTextFile(join(dir, "made/gen.txt"))).trim(), USER);
      },
    );
  },
});

Deno.test("thaw run exits 2 at the position of user:, when the user does not exist", async () => {
  await inDir(
    `runbook: 1
name: nobody-here
steps:
  - { id: first, run: "touch ran" }
  - id: second
    user: no-such-user-thaw
    run: "touch ran2"
`,
    async (dir) => {
      const run = await thaw(dir, ["run", "rb.yaml"]);
      equal(run.code, 2, run.stdout + run.stderr);
      match(run.stderr, /rb\.yaml:6:11: user: there is no system user "no-such-user-thaw"/);
      ok(!run.stderr.includes("    at "), "no stack trace");
      ok(!(await Deno.stat(join(dir, "ran")).then(() => true, () => false)), "a step ran");
    },
  );
});

Deno.test("checkUsers() refuses another user's name, when thaw is not root", () => {
  const rb = parseRunbook(
    `runbook: 1
name: x
steps:
  - { id: a, run: "true", user: root }
`,
    "x.yaml",
  );
  throws(
    () => checkUsers(rb, 4242),
    /x\.yaml:4:\d+: user: step a runs as root, which needs thaw to run as root \(it runs as uid 4242\)/,
  );
  checkUsers(rb, 0); // root may become anyone
});
