/**
 * The hosts of a runbook (revision 3): the `hosts:` mapping (name → `{ ssh, port, identity,
 * bandwidth }`) and the `on:` key of a step that names one. Its schema fragment, its checks (an
 * `on:` naming no host, with a "did you mean"; the reserved name `local`) and its model.
 *
 * Host values are written literally: they are not expanded (`${{ … }}` is an error), so the same
 * host is reached in every run. `identity: ~/…` is kept as written; the ssh target expands it
 * when it connects.
 *
 * @module
 */
import { z } from "zod";
import { bandwidth, HOST_PATTERN } from "./schema_parts.ts";
import type { Path } from "./source.ts";
import { didYouMean } from "./suggest.ts";
import type { Problem } from "./validate.ts";

/** The name of the machine that runs thaw, as a target: no host may take it. */
export const LOCAL_TARGET = "local";

/** An ssh destination: `USER@HOST` or a host (or an alias of the ssh config); never an option. */
export const SSH_DESTINATION_PATTERN = "^[^\\s-][^\\s]*$";

const host = z.strictObject({
  ssh: z.string().regex(new RegExp(SSH_DESTINATION_PATTERN), "pattern:ssh destination")
    .meta({ description: "USER@HOST, or a host (an alias of your ssh config works too)" }),
  port: z.int().min(1).max(65535).optional()
    .meta({ description: "The ssh port (default: your ssh config's, else 22)" }),
  identity: z.string().min(1).optional()
    .meta({ description: "A private key file; ~/ is your home (default: ssh config, agent)" }),
  bandwidth: bandwidth.optional()
    .meta({ description: "The host's own link, if slower than the shared one" }),
}).meta({ description: "A host reached over OpenSSH" });

/** The schema of `hosts:` (a fragment of the runbook schema). */
export const hostsSchema = z.record(
  z.string().regex(new RegExp(HOST_PATTERN), "pattern:host name"),
  host,
).meta({ description: "Hosts steps may run on (`on: NAME`), reached over OpenSSH" });

/** A host as written, after validation of its shape. */
export type HostInput = z.infer<typeof host>;

/** A host of a loaded runbook: what the ssh target needs (see `steps/targets/ssh.ts`). */
export interface Host {
  /** `USER@HOST`, or a host or an alias of the ssh config. */
  readonly ssh: string;
  /** The ssh port, when the runbook sets one. */
  readonly port?: number;
  /** The private key file as written (`~/` still unexpanded). */
  readonly identity?: string;
  /** The host's own bandwidth, bytes per second, when the runbook sets one. */
  readonly bandwidth?: number;
}

/** The parts of a runbook the host checks read. */
interface HostsDoc {
  readonly hosts?: Readonly<Record<string, Partial<HostInput>>> | undefined;
  readonly steps: readonly ({ readonly on?: unknown } | undefined)[];
}

/**
 * The problems of `hosts:` and of every step's `on:`: a host named `local`, a value holding an
 * expression, an `on:` naming no host (with the closest name).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkHosts } from "./hosts.ts";
 * const problems = checkHosts({ hosts: { db1: { ssh: "pg@10.0.0.5" } }, steps: [{ on: "db2" }] });
 * assert.match(problems[0]!.message, /unknown host "db2" in on \(did you mean "db1"\?\)/);
 * ```
 */
export function checkHosts(doc: HostsDoc): Problem[] {
  const problems: Problem[] = [];
  const hosts = doc.hosts ?? {};
  for (const [name, h] of Object.entries(hosts)) {
    if (name === LOCAL_TARGET) {
      problems.push({
        path: ["hosts", name],
        at: "key",
        message: `host name "local" means the machine that runs thaw; give this host another name`,
      });
    }
    if (h === null || typeof h !== "object") continue; // reported by the schema
    for (const [key, value] of Object.entries(h)) {
      if (typeof value === "string" && value.includes("${{")) {
        problems.push({
          path: ["hosts", name, key],
          at: "value",
          message: `host "${name}": expressions are not expanded in hosts; write the value itself`,
        });
      }
    }
  }
  const valid = new RegExp(HOST_PATTERN);
  const names = Object.keys(hosts).filter((n) => n !== LOCAL_TARGET && valid.test(n));
  doc.steps.forEach((s, i) => {
    const on = s?.on;
    if (typeof on !== "string" || Object.hasOwn(hosts, on) && on !== LOCAL_TARGET) return;
    const path: Path = ["steps", i, "on"];
    const known = names.length
      ? `${didYouMean(on, names)}; hosts: ${names.join(", ")}`
      : ` (the runbook has no hosts: add it under "hosts")`;
    const local = on === LOCAL_TARGET ? "; a step without on: runs on this machine" : "";
    problems.push({ path, at: "value", message: `unknown host "${on}" in on${known}${local}` });
  });
  return problems;
}

/**
 * The typed hosts. `bandwidth` parses a bandwidth at a path (reporting a value out of range).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelHosts } from "./hosts.ts";
 * const hosts = modelHosts({ web1: { ssh: "deploy@web1", bandwidth: "8Mbit/s" } }, () => 1e6);
 * assert.deepEqual(hosts, { web1: { ssh: "deploy@web1", bandwidth: 1e6 } });
 * ```
 */
export function modelHosts(
  hosts: Readonly<Record<string, HostInput>> | undefined,
  bandwidth: (path: Path, text: string | undefined) => number | undefined,
): Record<string, Host> {
  const out: Record<string, Host> = {};
  for (const [name, h] of Object.entries(hosts ?? {})) {
    const rate = bandwidth(["hosts", name, "bandwidth"], h.bandwidth);
    out[name] = {
      ssh: h.ssh,
      ...(h.port !== undefined ? { port: h.port } : {}),
      ...(h.identity !== undefined ? { identity: h.identity } : {}),
      ...(rate !== undefined ? { bandwidth: rate } : {}),
    };
  }
  return out;
}
