/**
 * A host's own link, for real (revision 3: `hosts: { web1: { bandwidth: 1Gbit/s } }`): the
 * fetches landing on a host with a `bandwidth` of its own are paced together to it, on top of
 * their share of the shared link. The shared link (`link.ts`) keeps its `bandwidth` across all
 * hosts, since every fetch, remote or not, takes its share there first.
 *
 * One pacer per host, shared by all its fetches (a {@linkcode LinkShaper} whose one "fetch" is
 * the host): the bytes of all of them by any time never exceed the host's bandwidth times that
 * time. A fetch marked `local: true` crosses no link and is not paced here either.
 *
 * @module
 */
import type { Host } from "../runbook/model.ts";
import type { Clock, Link } from "../../steps/types.ts";
import { LinkShaper } from "./link.ts";

/** The links of the hosts that have a bandwidth of their own. */
export class HostLinks {
  readonly #shapers = new Map<string, LinkShaper>();

  /** Pacers for the hosts of `hosts` with a `bandwidth`. */
  constructor(clock: Clock, hosts: Readonly<Record<string, Host>>) {
    for (const [name, h] of Object.entries(hosts)) {
      if (h.bandwidth === undefined || !Number.isFinite(h.bandwidth)) continue;
      const shaper = new LinkShaper(clock);
      shaper.setShare(0, h.bandwidth);
      this.#shapers.set(name, shaper);
    }
  }

  /**
   * The link of a fetch landing on `host` (`on:`; absent: this machine): `shared` (its share of
   * the shared link), then its host's own link when the host has one and the fetch crosses links.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { HostLinks } from "./host_link.ts";
   * import { realClock, unlimitedLink } from "../../steps/types.ts";
   * const links = new HostLinks(realClock, { web1: { ssh: "web1", bandwidth: 1e6 } });
   * assert.equal(links.wrap(undefined, false, unlimitedLink), unlimitedLink);
   * const link = links.wrap("web1", false, unlimitedLink);
   * const started = performance.now();
   * await link.take(20_000, new AbortController().signal); // 20 kB at 1 MB/s: 20 ms
   * assert.ok(performance.now() - started >= 15);
   * ```
   */
  wrap(host: string | undefined, local: boolean, shared: Link): Link {
    const shaper = host === undefined || local ? undefined : this.#shapers.get(host);
    if (shaper === undefined) return shared;
    const own = shaper.link(0);
    return {
      take: async (bytes, signal) => {
        await shared.take(bytes, signal);
        await own.take(bytes, signal);
      },
    };
  }
}
