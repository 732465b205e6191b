/**
 * The built-in sources, registered the way a third party registers one: `http(s)://`, `file://`
 * or a path, and `run:` (a command writing under `$THAW_TO`, named by `fetch.run`, never matched
 * by a location). Each transfer module is loaded when the source is first used, so the runbook
 * layer (which asks the sources whether they serve a location) imports no I/O code.
 *
 * @module
 */
import { registerSource, type Source } from "../../kind.ts";
import type { Attempt, Outcome } from "../attempt.ts";

const URL_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/** `http://` and `https://` URLs (see `http.ts`). */
export const httpSource: Source = {
  key: "http",
  label: "http(s)://",
  schemes: ["http", "https"],
  matches: (from) => /^https?:\/\//i.test(from),
  async fetch(from: string, attempt: Attempt): Promise<Outcome> {
    const { fetchHttp } = await import("./http.ts");
    return await fetchHttp(from, attempt);
  },
  describe(from: string): string {
    try {
      const url = new URL(from);
      const auth = url.username ? `${url.username}${url.password ? ":***" : ""}@` : "";
      return `${url.protocol}//${auth}${url.host}${url.pathname}${url.search ? "?…" : ""}`;
    } catch {
      return from;
    }
  },
};

/** `file://` URLs and paths, relative to the runbook's directory (see `file.ts`). */
export const fileSource: Source = {
  key: "file",
  label: "file://, a path",
  schemes: ["file"],
  matches: (from) => /^file:/i.test(from) || !URL_SCHEME.test(from),
  async fetch(from: string, attempt: Attempt): Promise<Outcome> {
    const { fetchFile, localPath } = await import("./file.ts");
    return await fetchFile(localPath(from, attempt.ctx.cwd ?? Deno.cwd()), from, attempt);
  },
};

/** `fetch.run:` a command; `from` is the command (see `run.ts`). */
export const runSource: Source = {
  key: "run",
  label: "",
  schemes: [],
  spawns: true,
  matches: () => false,
  async fetch(from: string, attempt: Attempt): Promise<Outcome> {
    const { fetchRun } = await import("./run.ts");
    const spec = attempt.source;
    const user = attempt.spec.user !== undefined ? { user: attempt.spec.user } : {};
    return await fetchRun(
      spec?.kind === "run" ? spec : { command: from, shell: "bash", ...user },
      attempt,
    );
  },
  describe(from: string): string {
    const command = from.replace(/\s+/g, " ").trim();
    return `run: ${command.length > 80 ? `${command.slice(0, 79)}…` : command}`;
  },
};

registerSource(httpSource);
registerSource(fileSource);
registerSource(runSource);
