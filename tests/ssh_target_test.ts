/**
 * The ssh target (steps/targets/ssh.ts) against real OpenSSH servers the tests start on 127.0.0.1
 * (tests/sshd.ts): commands and their output, process groups stopped on the host, one shared
 * connection, ssh's own words when a host cannot be reached or its key is wrong, and `user:`
 * there (a fetch landing on the host: ssh_land_test.ts). Ignored where
 * openssh-server is not installed (CI installs it).
 *
 * @module
 */
import assert from "node:assert/strict";
import { hasSshd, type SshdHost, startSshd, withSshTarget as withHost } from "./sshd.ts";
import { registerHosts, SshTarget } from "../steps/targets/ssh.ts";
import { target, targets } from "../steps/kind.ts";
import { MarkerFilter } from "../steps/targets/ssh_script.ts";

const ignore = !hasSshd();
const decoder = new TextDecoder();

/** Polls `probe` until it is true (at most `ms`); whether it became true. */
async function until(probe: () => Promise<boolean> | boolean, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await probe()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Runs `command` on the target and collects its output. */
async function run(t: SshTarget, command: string, extra: { user?: string; cwd?: string } = {}) {
  let stdout = "", stderr = "";
  const p = await t.spawn({
    shell: "sh",
    command,
    cwd: extra.cwd ?? "/",
    env: {},
    user: extra.user,
    stdout: (c) => stdout += decoder.decode(c),
    stderr: (c) => stderr += decoder.decode(c),
  });
  const status = await p.status;
  await p.drained;
  return { status, stdout, stderr, pid: p.pid };
}

/** sshd's count of logins. */
async function logins(host: SshdHost): Promise<number> {
  return (await host.log()).split("\n").filter((l) => l.includes("Accepted publickey")).length;
}

Deno.test({
  name: "spawn() runs a command on the host and gives its exit code, stdout and stderr apart",
  ignore,
  fn: () =>
    withHost(async (t) => {
      let out = "", err = "";
      const p = await t.spawn({
        shell: "bash",
        command:
          'echo "out $GREETING $(pwd)"; echo err >&2; printf "\\036not a marker\\n" >&2; exit 3',
        cwd: "/tmp",
        env: { GREETING: "it's $HOME" },
        stdout: (c) => out += decoder.decode(c),
        stderr: (c) => err += decoder.decode(c),
      });
      assert(p.pid > 1 && p.pgid === p.pid);
      assert.deepEqual(await p.status, { code: 3, signal: null });
      await p.drained;
      assert.equal(out, "out it's $HOME /tmp\n");
      assert.equal(err, "err\n\x1enot a marker\n");
    }),
});

Deno.test({
  name: "spawn() runs the command as the leader of a new session on the host",
  ignore,
  fn: () =>
    withHost(async (t) => {
      const r = await run(t, "ps -o pid=,pgid=,sid= -p $$");
      const [pid, pgid, sid] = r.stdout.trim().split(/\s+/).map(Number);
      assert.equal(pid, r.pid);
      assert.equal(pgid, r.pid);
      assert.equal(sid, r.pid);
    }),
});

Deno.test({
  name:
    "spawn() rejects with the host's words when the directory, the user or the shell is missing",
  ignore,
  fn: () =>
    withHost(async (t) => {
      await assert.rejects(run(t, "true", { cwd: "/no/such/dir" }), /can't cd to \/no\/such\/dir/);
      await assert.rejects(run(t, "true", { user: "no-such-user" }), /no user no-such-user on /);
      await assert.rejects(
        t.spawn({ shell: "no-such-shell", command: "true", cwd: "/", env: {} }),
        /setsid: failed to execute no-such-shell: No such file or directory/,
      );
    }),
});

Deno.test({
  name:
    "killGroup() stops the whole group on the host, SIGKILL after the grace when TERM is ignored",
  ignore,
  fn: () =>
    withHost(async (t) => {
      const p = await t.spawn({ shell: "sh", command: "sleep 100 & sleep 100", cwd: "/", env: {} });
      assert.equal(await t.groupAlive(p.pgid), true);
      assert.equal(await t.killGroup(p.pgid, 2000), "terminated");
      assert.deepEqual(await p.status, { code: 143, signal: null });
      assert.equal(await t.groupAlive(p.pgid), false);
      assert.equal(await t.killGroup(p.pgid, 2000), "gone");

      const stubborn = await t.spawn({
        shell: "sh",
        command: "trap '' TERM; sleep 100 & trap '' TERM; sleep 100",
        cwd: "/",
        env: {},
      });
      await new Promise((r) => setTimeout(r, 200)); // the traps are set
      assert.equal(await t.killGroup(stubborn.pgid, 200), "killed");
      assert.equal((await stubborn.status).code, 137);
      assert.equal(await t.groupAlive(stubborn.pgid), false);
    }),
});

Deno.test({
  name: "spawn() resolves once the group exists: a kill at once stops it, never finds it gone",
  ignore,
  fn: () =>
    withHost(async (t) => {
      for (let i = 0; i < 10; i++) {
        const p = await t.spawn({ shell: "sh", command: "sleep 100", cwd: "/", env: {} });
        if (i % 2) assert.equal(await t.groupAlive(p.pgid), true);
        assert.equal(await t.killGroup(p.pgid, 1000), "terminated");
        assert.equal((await p.status).code, 143);
      }
    }),
});

Deno.test({
  name: "killGroup() does not reach a process that left the group with setsid (no cgroup there)",
  ignore,
  fn: () =>
    withHost(async (t) => {
      const p = await t.spawn({
        shell: "sh",
        command: "setsid sleep 100 & echo $!; sleep 100",
        cwd: "/",
        env: {},
        stdout: () => {},
      });
      let escaped = 0;
      const out = await t.spawn({
        shell: "sh",
        command: `sleep 0.3; ps -e -o pid=,sid=,args= | ` +
          `awk '$3 == "sleep" && $4 == "100" && $1 == $2 { print $1 }'`,
        cwd: "/",
        env: {},
        stdout: (c) => escaped = Number(decoder.decode(c).trim().split("\n")[0]),
      });
      await out.status;
      await out.drained;
      assert(escaped > 1, "the escaped sleep is found");
      assert.equal(await t.killGroup(p.pgid, 1000), "terminated");
      // What remains: the escapee, in a session of its own. Stopped here by its own group.
      assert.equal(await t.groupAlive(escaped), true);
      assert.equal(await t.killGroup(escaped, 1000), "terminated");
    }),
});

Deno.test({
  name: "a step on the host is stopped when the engine that started it is killed with -9",
  ignore,
  fn: () =>
    withHost(async (_t, host) => {
      // Another engine: it starts a long step on the host, prints its pgid, and is killed.
      const code = `
        import { SshTarget } from ${
        JSON.stringify(new URL("../steps/targets/ssh.ts", import.meta.url).href)
      };
        const t = new SshTarget("h1", { ssh: ${JSON.stringify(host.alias)} }, { sshConfig: ${
        JSON.stringify(host.config)
      }, controlDir: ${JSON.stringify(host.dir)}, graceS: 1 });
        const p = await t.spawn({ shell: "sh", command: "sleep 1000 & sleep 1000", cwd: "/", env: {} });
        console.log(p.pgid, t.pool.primary.masterPid);
        await new Promise(() => {});`;
      const engine = new Deno.Command(Deno.execPath(), {
        args: ["eval", code],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = engine.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const first = (await reader.read()).value ?? "";
      const [pgid, master] = first.trim().split(" ").map(Number);
      const t = new SshTarget("h1", { ssh: host.alias }, { sshConfig: host.config });
      try {
        assert(pgid! > 1 && master! > 1, `pgid and master pid: ${first}`);
        assert.equal(await t.groupAlive(pgid!), true);
        engine.kill("SIGKILL");
        await engine.status;
        await reader.cancel();
        assert(
          await until(async () => !(await t.groupAlive(pgid!))),
          "the step's group is stopped",
        );
        assert(await until(() => !alive(master!)), "the dead engine's master connection ends");
      } finally {
        await t.close();
        try {
          engine.kill("SIGKILL");
        } catch { /* gone */ }
      }
    }),
});

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

Deno.test({
  name: "a service (with a log on the host) outlives the connection that started it",
  ignore,
  fn: () =>
    withHost(async (t, host) => {
      const log = `${host.dir}/svc.log`;
      const p = await t.spawn({
        shell: "sh",
        command: "echo started; exec sleep 1000",
        cwd: "/",
        env: {},
        log,
      });
      await t.close();
      const again = new SshTarget("h1", { ssh: host.alias }, { sshConfig: host.config });
      try {
        assert.equal(await again.groupAlive(p.pgid), true);
        assert(await until(async () => (await Deno.readTextFile(log)).includes("started\n")));
        assert.equal(await again.killGroup(p.pgid, 1000), "terminated");
      } finally {
        await again.close();
      }
    }),
});

Deno.test({
  name: "a lost connection ends a step with ssh's words, stops it on the host, and reconnects",
  ignore,
  fn: () =>
    withHost(async (t, host) => {
      const p = await t.spawn({ shell: "sh", command: "sleep 1000", cwd: "/", env: {} });
      const master = t.pool.primary.masterPid!;
      Deno.kill(master, "SIGKILL"); // the link goes: the master dies with it
      const status = await p.status;
      assert.equal(status.code, 255);
      assert.match(status.lost ?? "", /^the ssh connection to thaw-test was lost: \S/);
      // File operations go over the new loop too.
      await t.mkdir(`${host.dir}/again`);
      await t.rename(`${host.dir}/again`, `${host.dir}/moved`);
      assert.equal((await t.stat(`${host.dir}/moved`))?.type, "directory");
      // sshd sees the connection close, the step's session ends, the wrapper stops the group.
      const r = await run(t, "echo again");
      assert.equal(r.stdout, "again\n");
      assert.notEqual(t.pool.primary.masterPid, master);
      assert(await until(async () => !(await t.groupAlive(p.pgid))), "the step is stopped");
      assert.equal(await logins(host), 2);
    }),
});

Deno.test({
  name: "spawn() gives each of many concurrent commands its own bytes, whatever they hold",
  ignore,
  fn: () =>
    withHost(async (t) => {
      // 50 KiB with bytes no text has on stdout, a marker-like line and no final newline on stderr.
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) =>
        run(
          t,
          `printf '${i}'; head -c 51200 /dev/zero | tr '\\0' '\\377';` +
            ` printf '\\036O 1 2 3\\nerr ${i}' >&2; exit ${i}`,
        )));
      results.forEach((r, i) => {
        assert.equal(r.status.code, i);
        assert.equal(r.stdout, `${i}${"\ufffd".repeat(51200)}`);
        assert.equal(r.stderr, `\x1eO 1 2 3\nerr ${i}`);
      });
      // Raw bytes, not text: a command's stdout is passed on unchanged.
      const chunks: Uint8Array[] = [];
      const p = await t.spawn({
        shell: "sh",
        command: "printf '\\000\\001\\377\\n'",
        cwd: "/",
        env: {},
        stdout: (c) => chunks.push(c),
      });
      await p.status;
      await p.drained;
      assert.deepEqual([...chunks.flatMap((c) => [...c])], [0, 1, 255, 10]);
    }),
});

Deno.test({
  name: "spawn() passes a running command's output on as it comes, not only at its exit",
  ignore,
  fn: () =>
    withHost(async (t) => {
      let out = "", err = "";
      const p = await t.spawn({
        shell: "sh",
        command: "echo first; echo e1 >&2; sleep 3; echo second; echo e2 >&2",
        cwd: "/",
        env: {},
        stdout: (c) => out += decoder.decode(c),
        stderr: (c) => err += decoder.decode(c),
      });
      assert(await until(() => out === "first\n" && err === "e1\n", 2500), `so far: ${out}`);
      assert.deepEqual(await p.status, { code: 0, signal: null });
      await p.drained;
      assert.equal(out, "first\nsecond\n");
      assert.equal(err, "e1\ne2\n");
    }),
});

Deno.test({
  name: "the host stops a step that ignores SIGTERM (SIGKILL after the grace) once thaw closes",
  ignore,
  fn: () =>
    withHost(async (t, host) => {
      const p = await t.spawn({
        shell: "sh",
        command: "trap '' TERM; sleep 100 & trap '' TERM; sleep 100",
        cwd: "/",
        env: {},
      });
      await new Promise((r) => setTimeout(r, 200)); // the traps are set
      await t.close(); // graceS is 1
      const again = new SshTarget("h1", { ssh: host.alias }, { sshConfig: host.config });
      try {
        assert(await until(async () => !(await again.groupAlive(p.pgid))), "the step is stopped");
      } finally {
        await again.close();
      }
      assert.match((await p.status).lost ?? "", /^the ssh connection to thaw-test was lost/);
    }),
});

Deno.test({
  name: "steps and their post-exit group kills start no ssh client beyond the master and the loop",
  ignore,
  fn: () =>
    withHost(async (_t, host) => {
      const calls = `${host.dir}/ssh-calls`;
      const wrapper = `${host.dir}/ssh-wrapper`;
      await Deno.writeTextFile(wrapper, `#!/bin/sh\necho x >>'${calls}'\nexec ssh "$@"\n`, {
        mode: 0o755,
      });
      const t = new SshTarget("h1", { ssh: host.alias }, { sshConfig: host.config, ssh: wrapper });
      try {
        for (let i = 0; i < 10; i++) {
          const r = await run(t, i % 2 ? "sleep 100 & echo left" : "echo ok");
          assert.equal(r.status.code, 0);
          assert.equal(await t.killGroup(r.pid, 1000), i % 2 ? "terminated" : "gone");
          assert.equal(await t.groupAlive(r.pid), false);
        }
        assert.equal((await Deno.readTextFile(calls)).split("\n").filter(Boolean).length, 2);
      } finally {
        await t.close();
      }
    }),
});

Deno.test({
  name: "stat(), mkdir(), rename() and remove() run over the command loop: no ssh client each",
  ignore,
  fn: () =>
    withHost(async (_t, host) => {
      const calls = `${host.dir}/ssh-calls`;
      const wrapper = `${host.dir}/ssh-wrapper`;
      await Deno.writeTextFile(wrapper, `#!/bin/sh\necho x >>'${calls}'\nexec ssh "$@"\n`, {
        mode: 0o755,
      });
      const t = new SshTarget("h1", { ssh: host.alias }, { sshConfig: host.config, ssh: wrapper });
      try {
        // Names the loop's request line must carry whole: a quote, a newline, a `$`.
        const dir = `${host.dir}/it's\n$HOME dir`;
        await t.mkdir(`${dir}/a/b`);
        assert.equal((await Deno.stat(`${dir}/a/b`)).isDirectory, true);
        assert.equal((await t.stat(`${dir}/a`))?.type, "directory");
        await Deno.writeTextFile(`${dir}/f`, "12345");
        await Deno.symlink("nowhere", `${dir}/l`);
        const f = await t.stat(`${dir}/f`);
        assert.equal(f?.type, "file");
        assert.equal(f?.size, 5);
        assert.equal(
          f?.mtimeMs,
          Math.floor((await Deno.stat(`${dir}/f`)).mtime!.getTime() / 1000) * 1000,
        );
        assert.equal((await t.stat(`${dir}/l`))?.type, "symlink");
        assert.equal(await t.stat(`${dir}/none`), null);
        await t.rename(`${dir}/f`, `${dir}/g`);
        assert.equal(await Deno.readTextFile(`${dir}/g`), "12345");
        await t.remove(`${dir}/a`);
        await t.remove(`${dir}/a`); // nothing there: not an error
        assert.equal(await t.stat(`${dir}/a`), null);
        // Many at once, each its own answer.
        const many = await Promise.all(
          Array.from({ length: 30 }, (_, i) => t.stat(i % 2 ? `${dir}/g` : `${dir}/none`)),
        );
        assert.deepEqual(many.map((s) => s?.size ?? null), many.map((_, i) => i % 2 ? 5 : null));
        // The host's words when they fail.
        const plain = `${host.dir}/plain`;
        await t.rename(`${dir}/g`, plain);
        await assert.rejects(
          t.rename(`${dir}/f`, `${dir}/h`),
          (e: Error) => e.name === "RemoteFileError" && e.message.includes("No such file"),
        );
        await assert.rejects(
          t.rename(`${host.dir}/none`, `${host.dir}/h`),
          (e: Error) =>
            e.name === "RemoteFileError" &&
            e.message ===
              `${host.alias}: mv: cannot stat '${host.dir}/none': No such file or directory`,
        );
        await assert.rejects(
          t.mkdir(`${plain}/sub`),
          (e: Error) =>
            e.message ===
              `${host.alias}: mkdir: cannot create directory '${plain}': Not a directory`,
        );
        assert.equal((await Deno.readTextFile(calls)).split("\n").filter(Boolean).length, 2);
      } finally {
        await t.close();
      }
    }),
});

/** The ssh masters running with the client config `config` on this machine. */
function masters(config: string): number[] {
  return [...Deno.readDirSync("/proc")].filter((e) => /^\d+$/.test(e.name)).filter((e) => {
    try {
      const args = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
      return args[0]?.endsWith("ssh") && args.includes("-M") && args.includes(config);
    } catch {
      return false;
    }
  }).map((e) => Number(e.name));
}

Deno.test({
  name: "many commands share one login: one master connection per host",
  ignore,
  fn: () =>
    withHost(async (t, host) => {
      for (let round = 0; round < 3; round++) {
        // sshd's default MaxSessions is 10 a connection, the master's own session included.
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) => run(t, `echo ${i}`)),
        );
        assert.deepEqual(results.map((r) => r.stdout), results.map((_, i) => `${i}\n`));
      }
      await t.stat("/tmp");
      assert.equal(await logins(host), 1);
      assert.deepEqual(masters(host.config), [t.pool.primary.masterPid]);
    }),
});

Deno.test({
  name: "commands beyond what sshd allows on one connection all run over the one command loop",
  ignore,
  fn: () =>
    withHost(async (t, host) => {
      // sshd's default MaxSessions is 10 a connection: 20 commands at once take one session.
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => run(t, `sleep 0.5; echo ${i}`)),
      );
      assert.deepEqual(results.map((r) => r.stdout), results.map((_, i) => `${i}\n`));
      assert.equal(await logins(host), 1);
      assert.deepEqual(masters(host.config), [t.pool.primary.masterPid]);
    }),
});

Deno.test({
  name: "file sessions beyond what sshd allows on one connection go over a second one",
  ignore,
  fn: () =>
    withHost(async (t, host) => {
      const writers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => t.openWrite(`${host.dir}/w${i}`)),
      );
      await Promise.all(writers.map((w, i) => w.write(new TextEncoder().encode(`${i}\n`))));
      await Promise.all(writers.map((w) => w.close()));
      for (let i = 0; i < 20; i++) {
        assert.equal(await Deno.readTextFile(`${host.dir}/w${i}`), `${i}\n`);
      }
      const logged = await logins(host);
      assert(logged >= 2 && logged <= 4, `${logged} logins for 20 sessions`);
      assert.equal(masters(host.config).length, logged);
      assert.deepEqual(masters(host.config).sort(), t.pool.masterPids.sort());
    }),
});

Deno.test({
  name: "an unreachable host fails with ssh's own words",
  ignore,
  fn: async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const t = new SshTarget("down", { ssh: "root@127.0.0.1", port }, { sshConfig: "/dev/null" });
    try {
      const words = `ssh: connect to host 127.0.0.1 port ${port}: Connection refused`;
      await assert.rejects(t.connect(), (e: Error) => e.message === words);
      await assert.rejects(run(t, "true"), (e: Error) => e.message === words);
      await assert.rejects(t.stat("/"), (e: Error) => e.message === words);
    } finally {
      await t.close();
    }
  },
});

Deno.test({
  name: "a host whose key is not the known one is refused in ssh's words, never accepted",
  ignore,
  fn: () =>
    withHost(async (_t, host) => {
      const other = await startSshd("other");
      try {
        // Our known_hosts names the first host's key; the other server answers on the port.
        const config = `${host.dir}/wrong_config`;
        const text = await Deno.readTextFile(host.config);
        await Deno.writeTextFile(config, text.replace(`Port ${host.port}`, `Port ${other.port}`));
        await Deno.writeTextFile(
          host.knownHosts,
          `[127.0.0.1]:${other.port} ${host.hostKey}\n`,
        );
        const before = await Deno.readTextFile(host.knownHosts);
        const t = new SshTarget("h", { ssh: host.alias }, { sshConfig: config });
        try {
          await assert.rejects(
            t.connect(),
            (e: Error) => e.message === "Host key verification failed.",
          );
        } finally {
          await t.close();
        }
        assert.equal(await Deno.readTextFile(host.knownHosts), before);
        assert.equal(await logins(other), 0);
      } finally {
        await other.stop();
      }
    }),
});

Deno.test({
  name: "a step runs as `user` on the host (setpriv when thaw logs in as root)",
  ignore,
  fn: () =>
    withHost(async (t) => {
      const r = await run(t, 'id -un; echo "$HOME $USER"', { user: "nobody" });
      assert.equal(r.status.code, 0);
      assert.equal(r.stdout, "nobody\n/nonexistent nobody\n");
      const stop = await t.spawn({
        shell: "sh",
        command: "sleep 100",
        cwd: "/",
        env: {},
        user: "nobody",
      });
      assert.equal(await t.killGroup(stop.pgid, 1000), "terminated");
    }),
});

Deno.test("MarkerFilter takes out only its own markers, however the stream is cut", () => {
  const text = "a\x1eab12 pid 7\nb\x1eab1x\x1e\x1eab12 exit 42\nc\x1eab12 pid\n";
  const bytes = new TextEncoder().encode(text);
  for (let seed = 1; seed <= 200; seed++) {
    let out = "";
    const seen: string[] = [];
    const f = new MarkerFilter("ab12", (m) => seen.push(`${m.kind}${m.value}`), (c) => {
      out += decoder.decode(c);
    });
    let at = 0, s = seed;
    while (at < bytes.length) {
      s = (s * 1103515245 + 12345) % 2147483648;
      const n = 1 + (s % 7);
      f.push(bytes.slice(at, at + n));
      at += n;
    }
    f.end();
    assert.deepEqual(seen, ["pid7", "exit42"]);
    assert.equal(out, "a" + "b\x1eab1x\x1e" + "c\x1eab12 pid\n");
  }
});

Deno.test("registerHosts() registers one target per host by its name, and takes them out", async () => {
  const hosts = { "db1-h5": { ssh: "postgres@10.0.0.5", port: 22 }, "web1-h5": { ssh: "web1" } };
  {
    await using reg = registerHosts(hosts, { sshConfig: "/dev/null" });
    assert.deepEqual(reg.targets.map((t) => t.name), ["db1-h5", "web1-h5"]);
    assert.equal(target("db1-h5"), reg.targets[0]);
    assert.equal((target("web1-h5") as SshTarget).host.ssh, "web1");
  }
  assert(!targets().some((t) => t.name.endsWith("-h5")));
  assert.throws(() => new SshTarget("x", { ssh: "-oProxyCommand=evil" }), /not an ssh destination/);
});
