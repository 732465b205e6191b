/**
 * Takeover trials (contract revision 3): 20 takeovers by `thaw standby` on one throwaway
 * PostgreSQL cluster (`tests/pg_cluster.ts`), alternating the two scenarios of
 * `tests/takeover_scenarios.ts`: `kill -9` of the active engine (and of everything it started,
 * as when its machine dies) mid-run, and SIGSTOP of it past its lease, then SIGCONT. Each trial
 * prints the takeover time (from the kill or the pause to the standby's first write: it took
 * the lease) and whether it was clean (no done step ran again, the fetch continued after its
 * bytes, the non-idempotent step waited for a person; the paused engine wrote nothing and
 * stopped its step), then a summary.
 *
 * ```sh
 * deno run -A tests/bench/takeover_trials.ts [--trials 20]
 * ```
 *
 * Needs PostgreSQL (Debian's package) and root (`unshare --uts`: each engine sees its own host
 * name; with iproute2, `unshare --net` too: each engine reaches PostgreSQL and the backup server
 * over a veth pair of its own, 10.213.K.2 to 10.213.K.1, else over the host's loopback). The
 * cluster listens on 0.0.0.0 but lets in only 127.0.0.1 and 10.213.0.0/16. Exits 1 unless every
 * trial was clean and took over within 10 s.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { noPostgres, startCluster } from "../pg_cluster.ts";
import { MACHINE_NET, noUnshare } from "../takeover_rig.ts";
import { killTrial, stopTrial, type Trial } from "../takeover_scenarios.ts";

const { values } = parseArgs({ args: Deno.args, options: { trials: { type: "string" } } });
const n = Number(values.trials ?? 20);
const why = noPostgres ?? noUnshare;
if (why) {
  console.error(`takeover_trials: cannot run: ${why}`);
  Deno.exit(2);
}

const cluster = await startCluster({ allowFrom: MACHINE_NET });
const trials: Trial[] = [];
try {
  for (let i = 0; i < n; i++) {
    const url = await cluster.createDatabase();
    const trial = await (i % 2 === 0 ? killTrial(url) : stopTrial(url)).catch((e) => ({
      kind: i % 2 === 0 ? "kill -9" as const : "SIGSTOP" as const,
      takeoverMs: NaN,
      problems: [String((e as Error)?.message ?? e).split("\n")[0]!],
    }));
    trials.push(trial);
    const clean = trial.problems.length === 0 ? "clean" : `NOT clean: ${trial.problems.join("; ")}`;
    console.log(
      `trial ${String(i + 1).padStart(2)}  ${trial.kind.padEnd(7)}  takeover ` +
        `${(trial.takeoverMs / 1000).toFixed(2)} s  ${clean}`,
    );
  }
} finally {
  await cluster.stop();
}
const times = trials.map((t) => t.takeoverMs).filter(Number.isFinite).sort((a, b) => a - b);
const clean = trials.filter((t) => t.problems.length === 0 && t.takeoverMs < 10000).length;
const s = (ms: number | undefined) => ms === undefined ? "-" : `${(ms / 1000).toFixed(2)} s`;
console.log(
  `${clean}/${trials.length} clean within 10 s; takeover min ${s(times[0])}, median ` +
    `${s(times[Math.floor(times.length / 2)])}, max ${s(times.at(-1))} (lease 5 s, renewed every ` +
    "1 s; standby polls every 1 s)",
);
if (clean !== trials.length) Deno.exit(1);
