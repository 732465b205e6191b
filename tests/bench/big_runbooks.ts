/**
 * The 50 MB runbooks `tests/invalid_test.ts` once loaded in the suite (it now loads 4 MB ones, to
 * keep the suite's memory low): each generated into a temporary file and loaded by
 * `readRunbook()` in a process of its own, which must fail with the expected positioned message.
 * Prints each one's wall time and peak memory (VmHWM); exits 1 if a message is wrong.
 *
 * ```sh
 * deno run -A tests/bench/big_runbooks.ts [--mib 50]
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fromFileUrl } from "../paths.ts";

const LOAD = fromFileUrl(new URL("../../engine/runbook/load.ts", import.meta.url));
const MiB = 2 ** 20;

/** name, text, the message readRunbook() must give. */
function cases(bytes: number): [string, string, string][] {
  const lines = ["runbook: 1", "name: many-steps", "steps:"];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const id = `  - id: s${i}`, run = `    run: echo ${i}`;
    lines.push(id, run);
    size += id.length + run.length + 2;
  }
  lines.push("  - id: last", "    neds: [s0]", "    run: echo last");
  const item = "- { id: s, run: echo hi }\n";
  return [
    [
      "huge-scalar.yaml",
      `runbook: 1\nname: huge-scalar\ndescription: ${"x".repeat(bytes)}\nsteps: []\n`,
      "huge-scalar.yaml:4:8: steps: must not be empty",
    ],
    [
      "many-steps.yaml",
      lines.join("\n") + "\n",
      `many-steps.yaml:${
        lines.length - 1
      }:5: unknown key "neds" in step "last" (did you mean "needs"?)`,
    ],
    [
      "huge-list.yaml",
      item.repeat(Math.ceil(bytes / item.length)),
      "huge-list.yaml:1:1: a runbook is a mapping (runbook, name, steps), not a list",
    ],
  ];
}

const CHILD = `
import { readRunbook } from ${JSON.stringify(LOAD)};
let message = "loaded";
try { await readRunbook(Deno.args[0], { cwd: Deno.args[1] }); } catch (e) { message = e.message; }
const hwm = /VmHWM:\\s+(\\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"))?.[1];
console.log(JSON.stringify({ message, peakKiB: Number(hwm) }));
`;

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { mib: { type: "string", default: "50" } },
  });
  const dir = await Deno.makeTempDir({ prefix: "thaw-big-" });
  let bad = 0;
  try {
    for (const [name, text, expected] of cases(Number(values.mib) * MiB)) {
      await Deno.writeTextFile(join(dir, name), text);
      const t0 = performance.now();
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", CHILD, name, dir],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      const s = (performance.now() - t0) / 1000;
      const r = JSON.parse(new TextDecoder().decode(out.stdout)) as {
        message: string;
        peakKiB: number;
      };
      const ok = r.message === expected;
      if (!ok) bad++;
      console.log(
        `${name.padEnd(17)} ${(text.length / MiB).toFixed(0)} MiB: ${s.toFixed(1)} s, ` +
          `peak ${(r.peakKiB / 1024).toFixed(0)} MiB${ok ? "" : `; WRONG: ${r.message}`}`,
      );
      await Deno.remove(join(dir, name));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  Deno.exit(bad ? 1 : 0);
}
