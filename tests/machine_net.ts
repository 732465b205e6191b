/**
 * A network link of its own for each "machine" of the takeover rig (`takeover_rig.ts`): the
 * machine runs in a new network namespace (`unshare --net`) and reaches this host over a veth
 * pair the rig makes: the host end `veth-thawK` holds 10.213.K.1/30, the machine's end
 * (`veth-thawKc`, moved into its namespace) 10.213.K.2/30, with a route to 10.213.0.0/16
 * through the host end (so a machine reaches a server bound to another machine's host end, as
 * two machines reach a third). Nothing else: no route out, no change to the host's own
 * interfaces. A pair goes away with its machine ({@link Link.remove}, or when its namespace
 * dies; and when this process exits).
 *
 * Where network namespaces cannot be made (not root, no `ip`, `unshare --net` refused),
 * {@link noNetns} says why and the rig runs its machines on the host's network (also when
 * `THAW_TEST_NETNS=0`, to try that path).
 *
 * @module
 */

/** The network the machines' links take their addresses from (for pg_hba.conf). */
export const MACHINE_NET = "10.213.0.0/16";

/** The `ip` program (iproute2), or undefined. */
export const IP: string | undefined = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
  .find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });

/** Why machines cannot have network namespaces of their own here, or undefined when they can. */
export const noNetns: string | undefined = (() => {
  if (Deno.env.get("THAW_TEST_NETNS") === "0") return "THAW_TEST_NETNS=0 says not to";
  if (Deno.build.os !== "linux") return "needs Linux network namespaces";
  if (Deno.uid() !== 0) return "making veth pairs needs root";
  if (IP === undefined) return "no ip (iproute2)";
  try {
    // A veth pair in a namespace of its own: it goes away with the namespace.
    const out = new Deno.Command("unshare", {
      args: ["--net", IP, "link", "add", "thawprobe", "type", "veth", "peer", "name", "thawprobe2"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return out.success ? undefined : "unshare --net with a veth pair is not allowed here";
  } catch {
    return "no unshare (util-linux)";
  }
})();

/** A veth pair made for one machine. */
export interface Link {
  /** K: the host end is 10.213.K.1, the machine's 10.213.K.2. */
  readonly k: number;
  /** The host end's name. */
  readonly host: string;
  /** The machine's end's name (in the host's namespace until {@link Link.moveTo}). */
  readonly peer: string;
  /** The host end's address: the machine reaches this host there. */
  readonly hostAddress: string;
  /** Moves the machine's end into the namespace of process `pid`. */
  moveTo(pid: number): void;
  /** Shell commands, run inside the machine's namespace, that configure its end and lo. */
  readonly inside: string;
  /** Removes the pair (both ends) if it is still there, and waits until it is gone. */
  remove(): Promise<void>;
}

const live = new Set<string>();
globalThis.addEventListener("unload", () => {
  for (const name of live) ipSync(["link", "del", name]);
});

function ipSync(args: string[]): { ok: boolean; err: string } {
  const out = new Deno.Command(IP!, { args, stdout: "null", stderr: "piped" }).outputSync();
  return { ok: out.success, err: new TextDecoder().decode(out.stderr).trim() };
}

function exists(name: string): boolean {
  try {
    Deno.statSync(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
}

let next = (Deno.pid * 7) % 254;

/**
 * Makes a veth pair with a free K (its name says K, so a name taken, here or by another test
 * process, is a K taken), its host end addressed and up. Throws when none is free.
 */
export function makeLink(): Link {
  let last = "";
  for (let tries = 0; tries < 254; tries++) {
    const k = (next++ % 254) + 1;
    const host = `veth-thaw${k}`;
    const peer = `veth-thaw${k}c`;
    const made = ipSync(["link", "add", host, "type", "veth", "peer", "name", peer]);
    if (!made.ok) {
      last = made.err;
      continue;
    }
    live.add(host);
    const hostAddress = `10.213.${k}.1`;
    const up = ipSync(["addr", "add", `${hostAddress}/30`, "dev", host]);
    const on = up.ok ? ipSync(["link", "set", host, "up"]) : up;
    if (!on.ok) {
      ipSync(["link", "del", host]);
      live.delete(host);
      throw new Error(`cannot set up ${host}: ${on.err}`);
    }
    return {
      k,
      host,
      peer,
      hostAddress,
      moveTo(pid) {
        const moved = ipSync(["link", "set", peer, "netns", String(pid)]);
        if (!moved.ok) throw new Error(`cannot move ${peer} into process ${pid}: ${moved.err}`);
      },
      inside: [
        `${IP} addr add 10.213.${k}.2/30 dev ${peer}`,
        `${IP} link set ${peer} up`,
        `${IP} link set lo up`,
        `${IP} route add ${MACHINE_NET} via ${hostAddress}`,
      ].join(" && "),
      async remove() {
        if (exists(host)) ipSync(["link", "del", host]);
        // A dying namespace takes its pairs with it, a moment later: wait for that too.
        for (let i = 0; i < 100 && (exists(host) || exists(peer)); i++) {
          await new Promise((r) => setTimeout(r, 50));
        }
        live.delete(host);
      },
    };
  }
  throw new Error(`no free veth pair name veth-thaw1..veth-thaw254: ${last}`);
}

/**
 * `url` as seen from a machine whose link's host end is `address`: 127.0.0.1 becomes `address`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reachFrom } from "./machine_net.ts";
 * assert.equal(
 *   reachFrom("postgres://u:p@127.0.0.1:5432/db", "10.213.4.1"),
 *   "postgres://u:p@10.213.4.1:5432/db",
 * );
 * ```
 */
export function reachFrom(url: string, address: string): string {
  return url.replace(/^([a-z]+:\/\/(?:[^@/]*@)?)127\.0\.0\.1(?=[:/]|$)/, `$1${address}`);
}
