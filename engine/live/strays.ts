/**
 * The processes a killed engine started but had not yet recorded: a step's process is recorded in
 * the commit of the turn after it starts (`procs.ts`), so one started in the last few milliseconds
 * before `kill -9` is in no record. Every local step runs with `THAW_RUN_ID` and `THAW_STEP` in its
 * environment, so `thaw cancel` and `thaw resume` find such processes in `/proc` and stop their
 * groups as they stop the recorded ones. Resume does so only when the killed engine ran on this
 * machine (its hostname): a standby elsewhere, or in another UTS namespace here, leaves the steps of
 * the engine it takes over from to that engine, which stops them itself when fenced.
 *
 * @module
 */
import { killGroup } from "../../steps/process/process.ts";

/** What a process says of itself in `/proc`: its group and its thaw run and step, if any. */
interface Found {
  readonly pgid: number;
  readonly run: string | undefined;
  readonly step: string | undefined;
}

/** Reads `/proc/PID`: undefined when it is gone or unreadable. */
async function inspect(pid: number): Promise<Found | undefined> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const pgid = Number(fields[2]);
    const environ = await Deno.readTextFile(`/proc/${pid}/environ`);
    let run: string | undefined, step: string | undefined;
    for (const kv of environ.split("\0")) {
      if (kv.startsWith("THAW_RUN_ID=")) run = kv.slice("THAW_RUN_ID=".length);
      else if (kv.startsWith("THAW_STEP=")) step = kv.slice("THAW_STEP=".length);
    }
    return { pgid, run, step };
  } catch {
    return undefined;
  }
}

/**
 * The process groups on this machine whose processes belong to a step of `run` that `keep` does
 * not name (never this process's own group). Empty where `/proc` cannot be read.
 */
export async function strayGroups(
  run: string,
  keep: (step: string) => boolean,
): Promise<number[]> {
  const groups = new Set<number>();
  const own = Deno.pid;
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir("/proc"));
  } catch {
    return [];
  }
  for (const e of entries) {
    const pid = Number(e.name);
    if (!Number.isInteger(pid) || pid <= 1 || pid === own) continue;
    const found = await inspect(pid);
    if (found === undefined || found.run !== run || found.step === undefined) continue;
    if (keep(found.step) || found.pgid <= 1) continue;
    groups.add(found.pgid);
  }
  const mine = (await inspect(own))?.pgid;
  if (mine !== undefined) groups.delete(mine);
  return [...groups];
}

/** Stops every group {@link strayGroups} finds: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopStrays(
  run: string,
  graceMs: number,
  keep: (step: string) => boolean,
): Promise<number> {
  const groups = await strayGroups(run, keep);
  await Promise.all(groups.map((g) => killGroup(g, graceMs).catch(() => {})));
  return groups.length;
}
