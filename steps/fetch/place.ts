/**
 * Where a fetch's data lands, as the fetch kind needs it: the checks of the destination, the
 * directories to make, the final move into place, the removal of a temporary name. On this machine
 * these are `atomic.ts`'s functions (Deno's file calls, the fast path); on any other
 * {@linkcode Target} (a host, `on:`) they go through the target's file operations (`stat`,
 * `mkdir`, `rename`, `remove`) and, for what those do not cover (the identity of a directory thaw
 * placed, `chown` for `user:`, flushing a command's output), short `sh` programs started on the
 * target.
 *
 * @module
 */

import { dirname } from "node:path";
import type { Target } from "../kind.ts";
import { shellWord, targetSh } from "../targets/target_sh.ts";
import type { FetchSpec, StepContext } from "../types.ts";
import { chownTree, ensureParentFor } from "../process/user.ts";
import {
  checkDestination,
  commit,
  type Destination,
  ensureParent,
  lstatOrNull,
  removeQuietly,
  writtenMark,
} from "./atomic.ts";

/** The target of a step context when it is not this machine (`local`), else undefined. */
export function remoteTargetOf(ctx: Pick<StepContext, "target">): Target | undefined {
  const target = ctx.target;
  return target === undefined || target.name === "local" ? undefined : target;
}

/** Where a fetch lands: this machine or a target. */
export interface Place {
  /** `db1:` before paths in messages about a target; empty on this machine. */
  readonly prefix: string;
  /** What is at `to` (a fetch never deletes what thaw did not write: see `checkDestination`). */
  checkDestination(to: string): Promise<Destination>;
  /** Makes the directories of `spec.to` and `spec.tmp` (given to `spec.user` when it made them). */
  prepare(spec: FetchSpec): Promise<void>;
  /** Gives tmp to `spec.user` (if set) and moves it into place at `spec.to`, durably. */
  commit(spec: FetchSpec, synced: boolean): Promise<void>;
  /** Removes a file or a tree; nothing there is not an error. */
  remove(path: string): Promise<void>;
  /** Whether a regular file is at `path`. */
  isFile(path: string): Promise<boolean>;
}

/** This machine. */
const local: Place = {
  prefix: "",
  checkDestination,
  async prepare(spec) {
    if (spec.user !== undefined) await ensureParentFor(spec.to, spec.user);
    await ensureParent(spec.to);
    await ensureParent(spec.tmp);
  },
  async commit(spec, synced) {
    // `user:` owns what lands at `to` from the moment it is there.
    if (spec.user !== undefined) await chownTree(spec.tmp, spec.user);
    await commit(spec.tmp, spec.to, synced);
  },
  remove: removeQuietly,
  isFile: async (path) => (await lstatOrNull(path))?.isFile ?? false,
};

/** Where the data of a step with context `ctx` lands. */
export function placeFor(ctx: Pick<StepContext, "target">): Place {
  const target = remoteTargetOf(ctx);
  return target === undefined ? local : targetPlace(target);
}

/** Device, inode and birth time of a directory on the target, as a mark records them. */
async function identity(target: Target, path: string): Promise<string> {
  return (await targetSh(target, `stat -c '%d:%i:%W' -- ${shellWord(path)}`)).trim();
}

function targetPlace(target: Target): Place {
  const prefix = `${target.name}:`;
  const thawWrote = async (to: string): Promise<boolean> => {
    const mark = shellWord(writtenMark(to));
    const out = await targetSh(
      target,
      `stat -c '%d:%i:%W' -- ${shellWord(to)}; cat -- ${mark} 2>/dev/null || true`,
    );
    const [placed, recorded] = out.split("\n").map((l) => l.trim());
    return placed !== undefined && placed !== "" && placed === recorded;
  };
  const check = async (to: string): Promise<Destination> => {
    const info = await target.stat(to);
    if (info === null) return "nothing";
    if (info.type !== "directory") return "file";
    if (await thawWrote(to)) return "thaw-directory";
    throw new Error(
      `${prefix}${to} is an existing directory thaw did not write: a fetch never deletes it. ` +
        `Point "to" at a new path (the data set is placed there whole), or move the directory away`,
    );
  };
  const chown = (path: string, user: string) =>
    targetSh(target, `chown -hR -- ${shellWord(`${user}:`)} ${shellWord(path)}`);
  return {
    prefix,
    checkDestination: check,
    async prepare(spec) {
      const created: string[] = [];
      if (spec.user !== undefined) {
        for (let dir = dirname(spec.to); dir !== dirname(dir); dir = dirname(dir)) {
          if (await target.stat(dir) !== null) break;
          created.push(dir);
        }
      }
      await target.mkdir(dirname(spec.to));
      if (dirname(spec.tmp) !== dirname(spec.to)) await target.mkdir(dirname(spec.tmp));
      for (const dir of created) {
        await targetSh(target, `chown -- ${shellWord(`${spec.user}:`)} ${shellWord(dir)}`);
      }
    },
    async commit(spec, synced) {
      const { tmp, to } = spec;
      if (spec.user !== undefined) await chown(tmp, spec.user);
      if (!synced) await targetSh(target, `sync -f -- ${shellWord(tmp)}`);
      const [from, old] = await Promise.all([target.stat(tmp), target.stat(to)]);
      if (from === null) throw new Error(`${prefix}${tmp} vanished before it was moved`);
      if (old?.type === "directory") await check(to); // it may have appeared since the start
      if (old !== null && (old.type === "directory" || from.type === "directory")) {
        await target.remove(to);
      }
      await target.rename(tmp, to);
      const mark = writtenMark(to);
      // The new name is durable once the directory holding it is flushed (best effort).
      const flush = `sync -- ${shellWord(dirname(to))} 2>/dev/null || true`;
      if (from.type === "directory") {
        const id = await identity(target, to);
        const w = await target.openWrite(mark);
        await w.write(new TextEncoder().encode(`${id}\n`));
        await w.close();
        await targetSh(target, flush);
      } else await targetSh(target, `rm -f -- ${shellWord(mark)}; ${flush}`);
    },
    remove: (path) => target.remove(path),
    isFile: async (path) => (await target.stat(path))?.type === "file",
  };
}
