// Tests of the cheap per-step paths of steps/process: pooled step cgroups, started in directly
// (glibc 2.39+) or moved into through kept-open files (cgroup.ts), and existence asked with
// kill(2) through FFI (exists_native.ts) so that killGroup() after a clean exit costs no
// exception. Real processes and real cgroups (the cgroup tests are ignored where cgroup2 is not
// writable). Run them under glibc 2.39+ too: both ways of placing a step are tested there.
import assert from "node:assert/strict";
import { cgroupsAvailable, withinCgroup } from "../steps/process/cgroup.ts";
import { existsNative } from "../steps/process/exists_native.ts";
import { nativeSpawner } from "../steps/process/spawn_native.ts";
import {
  groupAlive,
  killGroup,
  processAlive,
  spawnGroup,
  spawnGroupAsync,
} from "../steps/process/process.ts";
import { placedArgv } from "../steps/process/self_place.ts";
import { lookupUser } from "../steps/process/user.ts";

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

/** Whether `path` exists. */
async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/**
 * Runs `command` as a step's group (`spawnGroupAsync` when `async`: posix_spawn on a worker
 * thread); its stdout as text once it exited.
 */
async function step(command: string, async = false): Promise<{ pgid: number; out: string }> {
  let out = "";
  const decoder = new TextDecoder();
  const options = {
    cwd: "/",
    env: STEP_ENV,
    stdout: (c: Uint8Array) => out += decoder.decode(c, { stream: true }),
  };
  const g = async
    ? await spawnGroupAsync("sh", command, options)
    : spawnGroup("sh", command, options);
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

Deno.test({
  name: "spawnGroupAsync() places each step in its cgroup without moving the engine, when run",
  ignore: !cgroupsAvailable(),
  fn: async () => {
    const home = cgroupOf("self");
    // Two at a time, as the engine does at parallelism 2: each in a cgroup of its own.
    for (let i = 0; i < 10; i++) {
      const [a, b] = await Promise.all([
        step('cat /proc/self/cgroup; echo "status $?"', true),
        step("cat /proc/self/cgroup", true),
      ]);
      const paths = [a, b].map(({ out }) => out.match(/^0::(.*)$/m)?.[1] ?? "");
      for (const path of paths) assert.match(path, new RegExp(`/thaw-${Deno.pid}-\\d+$`));
      assert.notEqual(paths[0], paths[1], "two steps running at once shared a cgroup");
      // The write that placed it is silent and leaves the status of a command that ran nothing.
      assert.match(a.out, /^status 0$/m);
      assert.equal(cgroupOf("self"), home);
    }
  },
});

Deno.test({
  name: "a step's command still runs, silently, when it cannot place itself in its cgroup",
  fn: async () => {
    let out = "", err = "";
    const decoder = new TextDecoder();
    const argv = placedArgv(["sh", "-c", 'echo "ran $?"; exit 4'], "/nonexistent/cgroup.procs");
    const g = spawnGroup(argv[0]!, argv[2]!, {
      cwd: "/",
      env: { PATH },
      stdout: (c) => out += decoder.decode(c),
      stderr: (c) => err += decoder.decode(c),
    });
    assert.equal((await g.status).code, 4);
    await g.drained;
    await g.closeOutput();
    assert.equal(out, "ran 0\n");
    assert.equal(err, "");
  },
});

Deno.test({
  name: "killGroup() stops a step's setsid escapee, when stopped before the step placed itself",
  ignore: !cgroupsAvailable(),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "thaw-place-" });
    let escaped = 0;
    try {
      // Stands for a step stopped in the moment before its first command: it is not in its cgroup
      // yet when killGroup() starts (it ignores SIGTERM by then, as a step could a moment after),
      // gets there later, and then leaves its group with setsid.
      const g = withinCgroup((_fd, procs) => {
        assert.ok(procs, "no cgroup.procs given to a child that places itself");
        const command = `trap '' TERM; : > trapped; sleep 1; echo $$ >|'${procs}'; ` +
          `setsid sh -c 'trap "" TERM; echo $$ > escaped.pid; exec sleep 100' & sleep 100`;
        return spawnGroup("sh", command, { cwd: dir, env: { PATH } });
      }, true);
      for (let i = 0; i < 100 && !(await exists(`${dir}/trapped`)); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.doesNotMatch(cgroupOf(g.pid), /\/thaw-\d+-\d+$/, "in its cgroup already");
      const killing = killGroup(g.pgid, 3000);
      for (let i = 0; i < 150 && !escaped; i++) {
        await new Promise((r) => setTimeout(r, 20));
        escaped = Number(await Deno.readTextFile(`${dir}/escaped.pid`).catch(() => "0"));
      }
      assert.ok(escaped > 1, "the escapee did not start");
      await killing;
      await g.status;
      for (let i = 0; i < 100 && processAlive(escaped); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(!processAlive(escaped), `the escapee ${escaped} outlived its stopped step`);
    } finally {
      if (escaped > 1 && processAlive(escaped)) Deno.kill(escaped, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "spawnGroupAsync() puts a user: step in its cgroup too, when it drops to another user",
  // The step's shell runs as the user, who could not write the engine's cgroup files: the engine
  // places it (cgroup.ts, the third way).
  ignore: !cgroupsAvailable() || Deno.uid() !== 0 || lookupUser("nobody") === undefined,
  fn: async () => {
    let out = "";
    const decoder = new TextDecoder();
    const g = await spawnGroupAsync("sh", "id -un; cat /proc/self/cgroup", {
      cwd: "/",
      env: STEP_ENV,
      user: "nobody",
      stdout: (c) => out += decoder.decode(c, { stream: true }),
    });
    assert.equal((await g.status).code, 0);
    await g.drained;
    await g.closeOutput();
    assert.match(out, /^nobody$/m);
    assert.match(out, new RegExp(`^0::/.*thaw-${Deno.pid}-\\d+$`, "m"));
    assert.equal(cgroupOf("self").includes("thaw-"), false, "the engine stayed in a step cgroup");
  },
});
