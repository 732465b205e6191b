/**
 * Running a step as another system user (`user:`): who the user is (the system's user database,
 * through `getent`), the command line that drops to it (util-linux `setpriv`, else `runuser`), its
 * environment (`HOME`, `USER`, `LOGNAME`), and handing it the files a fetch writes.
 *
 * Dropping happens inside the step's process group: `setsid … setpriv --reuid … -- SHELL -c CMD`
 * execs all the way down, so the step's pid is still its group's id and the engine (root) can stop
 * the whole group.
 *
 * @module
 */

import { dirname } from "node:path";

/** A system user, as the user database describes it. */
export interface SystemUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

const users = new Map<string, SystemUser | null>();

/** Parses one `/etc/passwd`-shaped line (`name:x:uid:gid:gecos:home:shell`). */
function parsePasswd(line: string): SystemUser | undefined {
  const f = line.trim().split(":");
  if (f.length < 7) return undefined;
  const uid = Number(f[2]), gid = Number(f[3]);
  if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid)) return undefined;
  return { name: f[0]!, uid, gid, home: f[5] || "/" };
}

function fromPasswdFile(name: string): SystemUser | undefined {
  try {
    for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
      if (line.startsWith(`${name}:`)) return parsePasswd(line);
    }
  } catch { /* no file: nobody is known */ }
  return undefined;
}

/**
 * The system user `name`, or undefined when the system has none (looked up once per name; a
 * user created later in the same process is found only if it was not asked for before).
 *
 * @example
 * ```ts
 * import { lookupUser } from "./user.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(lookupUser("root")?.uid, 0);
 * assert.equal(lookupUser("no-such-user-here"), undefined);
 * ```
 */
export function lookupUser(name: string): SystemUser | undefined {
  let user = users.get(name);
  if (user === undefined) {
    user = null;
    if (/^[a-z_][a-z0-9_.-]*\$?$/i.test(name)) {
      try {
        const out = new Deno.Command("getent", {
          args: ["passwd", name],
          stdin: "null",
          stdout: "piped",
          stderr: "null",
        }).outputSync();
        // Exit 2: no such user. Anything else odd: ask the file.
        user = out.success
          ? parsePasswd(new TextDecoder().decode(out.stdout).split("\n")[0] ?? "") ?? null
          : out.code === 2
          ? null
          : fromPasswdFile(name) ?? null;
      } catch {
        user = fromPasswdFile(name) ?? null; // no getent on this system
      }
    }
    if (user !== null) users.set(name, user);
  }
  return user ?? undefined;
}

/** The name of user `uid` (this process's by default), or `uid N` when the database has none. */
export function currentUserName(uid: number | null = Deno.uid()): string {
  try {
    for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
      const u = parsePasswd(line);
      if (u && u.uid === uid) return u.name;
    }
  } catch { /* fall through */ }
  return `uid ${uid}`;
}

/** Whether running as `user` means dropping privileges (it is not who this process is). */
function needsSwitch(user: SystemUser): boolean {
  return Deno.uid() !== user.uid;
}

let dropTool: string[] | null | undefined;
/** `setpriv` (preferred: it only execs) or `runuser`, whichever the system has. */
function findDropTool(): string[] | null {
  if (dropTool === undefined) {
    dropTool = null;
    for (const dir of ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]) {
      try {
        if (Deno.statSync(`${dir}/setpriv`).isFile) {
          dropTool = [`${dir}/setpriv`];
          break;
        }
      } catch { /* not here */ }
    }
    if (dropTool === null) {
      for (const dir of ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]) {
        try {
          if (Deno.statSync(`${dir}/runuser`).isFile) {
            dropTool = [`${dir}/runuser`];
            break;
          }
        } catch { /* not here */ }
      }
    }
  }
  return dropTool;
}

/**
 * `argv` run as user `name`: prefixed with `setpriv --reuid --regid --init-groups --` (or
 * `runuser -u NAME --`) when that is not who this process is, and `env` with the user's `HOME`,
 * `USER` and `LOGNAME`. Throws a plain Error for an unknown user or when no tool can switch.
 *
 * @example
 * ```ts
 * import { asUser } from "./user.ts";
 * import assert from "node:assert/strict";
 *
 * const { argv, env } = asUser(["sh", "-c", "id -un"], {}, "root");
 * assert.equal(env.USER, "root");
 * assert.equal(argv.at(-1), "id -un");
 * ```
 */
export function asUser(
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
  name: string,
): { argv: string[]; env: Record<string, string> } {
  const user = lookupUser(name);
  if (!user) throw new Error(`no system user "${name}" on this machine`);
  const withEnv = { ...env, HOME: user.home, USER: user.name, LOGNAME: user.name };
  if (!needsSwitch(user)) return { argv: [...argv], env: withEnv };
  const tool = findDropTool();
  if (!tool) throw new Error(`cannot run as ${name}: neither setpriv nor runuser is installed`);
  const prefix = tool[0]!.endsWith("setpriv")
    ? [tool[0]!, `--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", "--"]
    : [tool[0]!, "-u", user.name, "--"];
  return { argv: [...prefix, ...argv], env: withEnv };
}

/**
 * Gives a file, or a directory tree, to user `name` (symbolic links are left as they are: their
 * targets are not ours to give). Does nothing when this process is already that user.
 */
export async function chownTree(path: string, name: string): Promise<void> {
  const user = lookupUser(name);
  if (!user) throw new Error(`no system user "${name}" on this machine`);
  if (!needsSwitch(user)) return;
  const info = await Deno.lstat(path);
  if (info.isSymlink) return;
  await Deno.chown(path, user.uid, user.gid);
  if (!info.isDirectory) return;
  for await (const entry of Deno.readDir(path)) await chownTree(`${path}/${entry.name}`, name);
}

/**
 * Creates the parent directory of `path` like `mkdir -p`, giving the directories it creates (not
 * those that were there) to user `name`, so a command running as that user can write beside
 * `path`.
 */
export async function ensureParentFor(path: string, name: string): Promise<void> {
  const created: string[] = [];
  for (let dir = dirname(path); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      await Deno.lstat(dir);
      break;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      created.push(dir);
    }
  }
  await Deno.mkdir(dirname(path), { recursive: true });
  const user = lookupUser(name);
  if (!user || !needsSwitch(user)) return;
  for (const dir of created) await Deno.chown(dir, user.uid, user.gid);
}
