/**
 * The check of `user:` before a live run starts: every step's user must exist on this machine,
 * and running as a user other than thaw's own needs thaw to run as root. Steps on a host (`on:`)
 * are not checked here: their user is on the host (`sudo -n -u` or `setpriv` there fails the step
 * with the host's words). Either problem is an
 * error at the position of the `user:` key's value (exit 2), before anything runs.
 *
 * @module
 */
import { RunbookErrors } from "../runbook/errors.ts";
import { locateProblems } from "../runbook/load.ts";
import type { Runbook } from "../runbook/model.ts";
import type { Problem } from "../runbook/validate.ts";
import { currentUserName, lookupUser } from "../../steps/process/user.ts";

/**
 * Throws {@link RunbookErrors} (positioned at each offending `user:`) when a step names a user
 * this machine does not have, or another user than thaw's own (`uid`, this process's by
 * default) while thaw is not root.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunbook } from "../runbook/load.ts";
 * import { checkUsers } from "./user_check.ts";
 *
 * const rb = parseRunbook(
 *   'runbook: 1\nname: x\nsteps:\n  - { id: a, run: "true", user: no-such-user-here }\n',
 *   "x.yaml",
 * );
 * assert.throws(() => checkUsers(rb), /x\.yaml:4:\d+: .*no-such-user-here/);
 * ```
 */
export function checkUsers(runbook: Runbook, uid: number | null = Deno.uid()): void {
  const problems: Problem[] = [];
  const root = uid === 0;
  for (const step of runbook.steps) {
    // A step on a host (`on:`) runs as its user there: the host says whether it exists.
    if (step.user === undefined || step.skip || step.on !== undefined) continue;
    const path = ["steps", step.index, "user"];
    const user = lookupUser(step.user);
    if (!user) {
      problems.push({
        path,
        at: "value",
        message: `user: there is no system user "${step.user}" on this machine ` +
          `(step ${step.id}); create it (useradd --system ${step.user}) or fix the name`,
      });
    } else if (!root && user.uid !== uid) {
      problems.push({
        path,
        at: "value",
        message: `user: step ${step.id} runs as ${step.user}, which needs thaw to run as root ` +
          `(it runs as ${currentUserName(uid)}); run thaw with sudo, or as ${step.user}`,
      });
    }
  }
  if (problems.length) throw new RunbookErrors(runbook.file, locateProblems(runbook, problems));
}
