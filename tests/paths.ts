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
