// Tests of the cheap per-step paths of steps/process: pooled step cgroups, started in directly
// (glibc 2.39+) or moved into through kept-open files (cgroup.ts), and existence asked with
// kill(2) through FFI (exists_native.ts) so that killGroup() after a clean exit costs no
// exception. Real processes and real cgroups (the cgroup tests are ignored where cgroup2 is not
// writable). Run them under glibc 2.39+ too: both ways of placing a step are tested there.
import assert from "node:assert/strict";
import { cgroupsAvailable, withinCgroup } from "../steps/process/cgroup.ts";
import { existsNative } from "../steps/process/exists_native.ts";
import { nativeSpawner } from "../steps/process/spawn_native.ts";
import { groupAlive, killGroup, processAlive, spawnGroup } from "../steps/process/process.ts";

const PATH = Deno.env.get("PATH") ?? "/usr/bin:/bin";
const STEP_ENV = { PATH, THAW_RUN_ID: "01TESTSTEPCGROUP000000000", THAW_STEP: "s" };
const noFfi = existsNative(Deno.pid) === undefined;

/** The cgroup2 path of `pid` (`/a/b`), from /proc. */
function cgroupOf(pid: number | "self"): string {
  const line = Deno.readTextFileSync(`/proc/${pid}/cgroup`).split("\n").find((l) =>
    l.startsWith("0::")
  );
  return line?.slice(3) ?? "";
}

/** Runs `command` as a step's group; its stdout as text once it exited. */
async function step(command: string): Promise<{ pgid: number; out: string }> {
  let out = "";
  const decoder = new TextDecoder();
  const g = spawnGroup("sh", command, {
    cwd: "/",
    env: STEP_ENV,
    stdout: (c) => out += decoder.decode(c, { stream: true }),
  });
  await g.status;
  await g.drained;
  await g.closeOutput();
  return { pgid: g.pgid, out };
}

Deno.test({
  name: "spawnGroup() starts each step in a pooled cgroup and returns home, when many run in a row",
  ignore: !cgroupsAvailable(),
  fn: async () => {
    const home = cgroupOf("self");
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const { out } = await step("cat /proc/self/cgroup");
      const path = out.split("\n").find((l) => l.startsWith("0::"))?.slice(3) ?? "";
      assert.match(path, new RegExp(`/thaw-${Deno.pid}-\\d+$`), `step ${i} ran in ${path}`);
      seen.add(path);
      assert.equal(cgroupOf("self"), home, `the engine stayed in ${cgroupOf("self")}`);
    }
    // One at a time: an emptied cgroup serves the next step, no new directory per step.
    assert.ok(seen.size <= 2, `30 steps in a row used ${seen.size} cgroups`);
  },
});

Deno.test({
  name:
    "spawnGroup() gives the next step another cgroup, when a daemon still lives in the last one",
  ignore: !cgroupsAvailable(),
  fn: async () => {
    // The daemon leaves the group (setsid) but not the cgroup; the pool must see it there.
    const { out } = await step(
      "setsid sleep 100 >/dev/null 2>&1 & echo $!; cat /proc/self/cgroup",
    );
    const daemon = Number(out.split("\n")[0]);
    try {
      assert.ok(daemon > 1 && processAlive(daemon));
      const first = cgroupOf(daemon);
      for (let i = 0; i < 5; i++) {
        const next = (await step("cat /proc/self/cgroup")).out;
        assert.ok(!next.includes(`0::${first}\n`), `step ${i} shared ${first} with the daemon`);
      }
    } finally {
      Deno.kill(daemon, "SIGKILL");
    }
  },
});

Deno.test({
  name: "existsNative() tells a running process and group from gone ones, when asked by pid",
  ignore: noFfi,
  fn: async () => {
    assert.equal(existsNative(Deno.pid), true);
    // A group whose leader exited while a member runs on.
    const g = spawnGroup("sh", "sleep 30 & exit 0", { cwd: "/", env: { PATH } });
    try {
      await g.status;
      assert.equal(existsNative(g.pid), false, "the reaped leader still exists");
      assert.equal(processAlive(g.pid), false);
      assert.equal(existsNative(-g.pgid), true, "the group with its sleep is gone");
    } finally {
      assert.equal(await killGroup(g.pgid, 1000), "terminated");
      await g.closeOutput();
    }
    // The sleep may linger as a zombie until init reaps it: a zombie exists, but is not alive.
    assert.equal(groupAlive(g.pgid), false);
    assert.equal(existsNative(0), undefined);
    assert.equal(existsNative(-1), undefined);
  },
});

Deno.test({
  name: "killGroup() answers gone, when the leader was reaped and nothing is left in its group",
  fn: async () => {
    const { pgid } = await step("exit 0");
    assert.equal(await killGroup(pgid, 1000), "gone");
    assert.equal(processAlive(pgid), false);
    await assert.rejects(() => killGroup(1, 10), RangeError);
    await assert.rejects(() => killGroup(0, 10), RangeError);
  },
});

Deno.test({
  name: "withinCgroup() moves the engine instead, when starting inside the cgroup fails",
  // Only where glibc can start a process inside a cgroup (2.39+); it turns that off for this file.
  ignore: !cgroupsAvailable() || !nativeSpawner()?.placesInCgroups,
  fn: async () => {
    const home = cgroupOf("self");
    const given: (number | undefined)[] = [];
    let during = "";
    const child = withinCgroup((fd) => {
      given.push(fd);
      if (fd !== undefined) throw new Error("clone3 refused CLONE_INTO_CGROUP");
      during = cgroupOf("self");
      return { status: Promise.resolve() };
    });
    await child.status;
    assert.equal(given.length, 2);
    assert.ok(given[0]! >= 0 && given[1] === undefined, JSON.stringify(given));
    assert.match(during, new RegExp(`/thaw-${Deno.pid}-\\d+$`));
    assert.equal(cgroupOf("self"), home);
    // From now on the engine moves: no fd is offered.
    withinCgroup((fd) => (given.push(fd), { status: Promise.resolve() }));
    assert.equal(given[2], undefined);
  },
});
