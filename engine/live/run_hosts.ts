/**
 * The hosts of one live run (revision 3): one {@linkcode SshTarget} per host of the runbook's
 * `hosts:` (one shared connection each), made when the run starts and closed when it ends.
 *
 * The targets belong to the run: a step with `on: HOST` is given its run's target, so two runs in
 * one process (tests, `thaw drill` of several runbooks, a library user) never share or clash,
 * even when their runbooks give the same name to different machines. Each is also registered
 * under its name in the process-wide registry of targets (`target(name)` of `steps/kind.ts`) when
 * that name is free, so a plug-in can find it; when another run holds the name, this run keeps
 * its own target unregistered.
 *
 * The ssh config is `$THAW_SSH_CONFIG` (`ssh -F`) when set, else the user's own.
 *
 * @module
 */
import type { Host } from "../runbook/model.ts";
import { registerTarget, type Registration, RegistryError, type Target } from "../../steps/kind.ts";
import { SshTarget } from "../../steps/targets/ssh.ts";
import { localTarget } from "../../steps/targets/local.ts";

/** The targets of one run, by host name. */
export class RunHosts implements AsyncDisposable {
  readonly #targets = new Map<string, SshTarget>();
  readonly #registrations: Registration[] = [];

  /**
   * Targets for `hosts` (nothing connects until a step uses one). `sshConfig`: an ssh config
   * file instead of the user's (default `$THAW_SSH_CONFIG`).
   */
  constructor(
    hosts: Readonly<Record<string, Host>>,
    sshConfig: string | undefined = Deno.env.get("THAW_SSH_CONFIG") || undefined,
  ) {
    for (const [name, host] of Object.entries(hosts)) {
      const t = new SshTarget(name, host, sshConfig !== undefined ? { sshConfig } : {});
      this.#targets.set(name, t);
      try {
        this.#registrations.push(registerTarget(t));
      } catch (error) {
        if (!(error instanceof RegistryError)) throw error; // another run holds the name
      }
    }
  }

  /** The target of a step: its host's (`on:`), or this machine. (Bound: pass it around.) */
  readonly of = (on: string | undefined): Target => {
    if (on === undefined) return localTarget;
    const t = this.#targets.get(on);
    if (t === undefined) throw new Error(`unknown host "${on}" (not in the runbook's hosts)`);
    return t;
  };

  /** The host names. */
  get names(): string[] {
    return [...this.#targets.keys()];
  }

  /** Takes the targets out of the registry and ends their shared connections. */
  async [Symbol.asyncDispose](): Promise<void> {
    for (const r of this.#registrations.splice(0)) r.unregister();
    await Promise.all([...this.#targets.values()].map((t) => t.close().catch(() => {})));
  }
}
