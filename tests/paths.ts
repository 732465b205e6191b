/** Test helpers for paths and child processes. */

/** The file system path of a `file:` URL. */
export function fromFileUrl(url: URL): string {
  return decodeURIComponent(url.pathname);
}

/**
 * This process's environment for a child `thaw`, without the `INIT_CWD` that `deno task test`
 * sets (each test decides which directory the child sees as the user's).
 */
export function childEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.INIT_CWD;
  return { ...env, NO_COLOR: "1" };
}

/** The CLI's entry point. */
export const THAW_MAIN = fromFileUrl(new URL("../engine/main.ts", import.meta.url));

/**
 * The real `thaw` CLI as a child process in `cwd`, seeing only `env` over {@link childEnv} (the
 * environment is cleared first: `deno task test` would otherwise pass its `INIT_CWD` through).
 */
export function thawCommand(
  args: readonly string[],
  options: Omit<Deno.CommandOptions, "args" | "env" | "clearEnv"> & {
    env?: Record<string, string>;
  } = {},
): Deno.Command {
  const { env, ...rest } = options;
  return new Deno.Command(Deno.execPath(), {
    stdin: "null",
    ...rest,
    args: ["run", "--allow-all", THAW_MAIN, ...args],
    clearEnv: true,
    env: { ...childEnv(), ...env },
  });
}
