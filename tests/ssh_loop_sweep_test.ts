// Tests of the host command loop's own directory (steps/targets/ssh_loop_script.ts), run by a
// real `sh` on this machine as sshd would run it: a loop removes its directory when its input
// ends, and the directories of loops killed by SIGKILL are removed by the next loop.
import assert from "node:assert/strict";
import { loopProgram } from "../steps/targets/ssh_loop_script.ts";

const NONCE = "t35t";

/** Starts a loop with `TMPDIR=tmp`; resolves once it said it is ready. */
async function startLoop(tmp: string): Promise<Deno.ChildProcess> {
  const child = new Deno.Command("sh", {
    args: ["-c", loopProgram(NONCE, 1)],
    env: { TMPDIR: tmp, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.getReader();
  let seen = "";
  const decoder = new TextDecoder();
  while (!seen.includes(`\x1e${NONCE} R\n`)) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`the loop ended before it was ready: ${seen}`);
    seen += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  void child.stderr.cancel();
  return child;
}

const loopDirs = (tmp: string) =>
  [...Deno.readDirSync(tmp)].map((e) => e.name).filter((n) => n.startsWith("thaw-loop.")).sort();

Deno.test("loopProgram() removes the directories of killed loops, when a new loop starts", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    // A loop killed by SIGKILL leaves its directory (no trap runs).
    const killed = await startLoop(tmp);
    const [left] = loopDirs(tmp);
    assert.ok(left, "the loop made its directory");
    assert.equal(Deno.readTextFileSync(`${tmp}/${left}/pid`).trim(), String(killed.pid));
    killed.kill("SIGKILL");
    await killed.status;
    assert.deepEqual(loopDirs(tmp), [left]);
    // Not a loop's (no pid file), and a live one's: left alone.
    Deno.mkdirSync(`${tmp}/thaw-loop.nopid`);
    Deno.mkdirSync(`${tmp}/thaw-loop.alive`);
    Deno.writeTextFileSync(`${tmp}/thaw-loop.alive/pid`, `${Deno.pid}\n`);
    const next = await startLoop(tmp);
    const now = loopDirs(tmp);
    assert.ok(!now.includes(left!), `the killed loop's directory is removed: ${now}`);
    assert.ok(now.includes("thaw-loop.nopid") && now.includes("thaw-loop.alive"));
    assert.equal(now.length, 3); // and the new loop's own
    // Its input ends: it removes its own directory.
    await next.stdin.close();
    await next.status;
    assert.deepEqual(loopDirs(tmp), ["thaw-loop.alive", "thaw-loop.nopid"]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
