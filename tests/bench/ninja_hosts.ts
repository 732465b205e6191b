/**
 * The 1,000-step DAG of `ninja_dag.ts` spread over 4 hosts (4 real sshd on 127.0.0.1, started
 * here with keys of their own; `tests/sshd.ts`) against the same DAG run on this machine: the
 * per-step overhead of a step on a host, over one shared ssh connection and one command loop
 * (`steps/targets/ssh_loop_script.ts`) per host (target: at most 3x the local run's). Step `sK`
 * runs `on: hK mod 4`; both runs use the same parallelism.
 *
 * Prints the median wall time of each run (the whole `thaw run`, start-up included), each run's
 * start-up (a 1-step DAG: for the hosts, with the ssh login), the per-step time without start-up,
 * their ratio and the load average before and after; exits 1 if the ratio is above 3.
 *
 * ```sh
 * deno run -A tests/bench/ninja_hosts.ts [--steps 1000] [--rounds 3] [--parallelism 2]
 * ```
 *
 * Needs Debian's openssh-server (`/usr/sbin/sshd`) and the ssh client.
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { dag } from "./ninja_dag.ts";
import { childEnv, fromFileUrl } from "../paths.ts";
import { type SshdHost, startSshd, writeSshConfig } from "../sshd.ts";

const MAIN = fromFileUrl(new URL("../../engine/main.ts", import.meta.url));
const MAX_RATIO = 3;
const HOSTS = 4;

/** The runbook: one `run: "true"` step (`shell: sh`) per node, on host `h(K mod 4)` if `hosts`. */
function runbook(d: number[][], parallelism: number, hosts: boolean): string {
  const lines = ["runbook: 1", "name: dag", `parallelism: ${parallelism}`];
  if (hosts) {
    lines.push("hosts:");
    for (let h = 0; h < HOSTS; h++) lines.push(`  h${h}: { ssh: bench-h${h} }`);
  }
  lines.push("steps:");
  d.forEach((needs, i) => {
    const n = needs.length ? `, needs: [${needs.map((j) => `s${j}`).join(", ")}]` : "";
    const on = hosts ? `, on: h${i % HOSTS}` : "";
    lines.push(`  - { id: s${i}, run: "true", shell: sh${on}${n} }`);
  });
  return lines.join("\n") + "\n";
}

/** Wall time (ms) of `thaw run` of `text` in a fresh directory. */
async function timeRun(text: string, config: string): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "thaw-bench-hosts-" });
  try {
    await Deno.writeTextFile(join(dir, "dag.yaml"), text);
    const t0 = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "run", "dag.yaml", "--store", "s.db"],
      cwd: dir,
      env: { ...childEnv(), THAW_SSH_CONFIG: config },
      clearEnv: true,
      stdout: "null",
      stderr: "piped",
    }).output();
    const ms = performance.now() - t0;
    if (!out.success) throw new Error(`thaw run failed: ${new TextDecoder().decode(out.stderr)}`);
    return ms;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      steps: { type: "string", default: "1000" },
      rounds: { type: "string", default: "3" },
      parallelism: { type: "string", default: "2" },
    },
  });
  const rounds = Number(values.rounds), p = Number(values.parallelism);
  const d = dag(Number(values.steps)), one = dag(1);
  const hosts: SshdHost[] = [];
  const dir = await Deno.makeTempDir({ prefix: "thaw-bench-ssh-" });
  try {
    for (let h = 0; h < HOSTS; h++) hosts.push(await startSshd(`bench-h${h}`));
    const config = await writeSshConfig(join(dir, "ssh_config"), hosts);
    const loadBefore = loadAverage();
    const local: number[] = [],
      remote: number[] = [],
      local1: number[] = [],
      remote1: number[] = [];
    await timeRun(runbook(d, p, true), config); // warm-up: module cache, page cache, sshd
    for (let r = 0; r < rounds; r++) {
      local.push(await timeRun(runbook(d, p, false), config));
      remote.push(await timeRun(runbook(d, p, true), config));
      local1.push(await timeRun(runbook(one, p, false), config));
      remote1.push(await timeRun(runbook(one, p, true), config));
    }
    const l = median(local), r = median(remote), l1 = median(local1), r1 = median(remote1);
    const perLocal = (l - l1) / d.length, perRemote = (r - r1) / d.length;
    const ratio = perRemote / perLocal;
    const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");
    console.log(
      `${values.steps}-step DAG of \`true\` through sh, parallelism ${p}, median of ${rounds}`,
    );
    console.log(`  on this machine     ${l.toFixed(0)} ms  (${list(local)})`);
    console.log(`  over ${HOSTS} ssh hosts    ${r.toFixed(0)} ms  (${list(remote)})`);
    console.log(
      `  1-step DAG (start-up): local ${l1.toFixed(0)} ms, on a host ${r1.toFixed(0)} ms`,
    );
    console.log(
      `  per step without start-up: local ${perLocal.toFixed(2)} ms, ` +
        `on hosts ${perRemote.toFixed(2)} ms`,
    );
    console.log(`  hosts / local per step: ${ratio.toFixed(2)} (target <= ${MAX_RATIO})`);
    console.log(`  load average before: ${loadBefore}, after: ${loadAverage()}`);
    Deno.exitCode = ratio <= MAX_RATIO ? 0 : 1;
  } finally {
    for (const h of hosts) await h.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
