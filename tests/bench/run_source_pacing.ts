/**
 * How closely a `run:` source is held to its share of the link: `thaw run` (a child process)
 * fetches with a `run:` command under a `bandwidth:` cap, alone on the link (its share is the
 * whole cap), while this process measures the bytes under its temporary name every 20 ms. Over
 * every 5 s window between its first byte and its last, the bytes it wrote are compared with the
 * share: the worst window's error is the figure (the target: within 10 %).
 *
 * ```sh
 * deno run -A tests/bench/run_source_pacing.ts [--seconds 8]
 * ```
 *
 * Cases: `head -c` from `/dev/zero` (the fastest writer there is, about 100x its share), and a
 * shell loop writing 200 kB pieces. Exits 1 if a case misses the target.
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fromFileUrl } from "../paths.ts";

const MAIN = fromFileUrl(new URL("../../engine/main.ts", import.meta.url));
const MB = 1e6;
const WINDOW_S = 5;
const SAMPLE_MS = 20;
const TARGET = 0.1;

interface Case {
  readonly name: string;
  /** Bytes per second. */
  readonly share: number;
  /** The `run:` command, writing `bytes` at `$THAW_TO`. */
  readonly command: (bytes: number) => string;
}

const CASES: readonly Case[] = [
  {
    name: "head -c /dev/zero, 10 MB/s",
    share: 10 * MB,
    command: (bytes) => `head -c ${bytes} /dev/zero > "$THAW_TO"`,
  },
  {
    name: "head -c /dev/zero, 50 MB/s",
    share: 50 * MB,
    command: (bytes) => `head -c ${bytes} /dev/zero > "$THAW_TO"`,
  },
  {
    name: "a loop of 200 kB pieces, 10 MB/s",
    share: 10 * MB,
    command: (bytes) =>
      `for i in $(seq ${
        Math.round(bytes / 200e3)
      }); do head -c 200000 /dev/zero; done > "$THAW_TO"`,
  },
];

/** The bytes under `out/`'s temporary file (or the landed file) now. */
async function bytesNow(out: string): Promise<number> {
  let total = 0;
  try {
    for await (const e of Deno.readDir(out)) {
      if (e.isFile) total += (await Deno.stat(join(out, e.name)).catch(() => ({ size: 0 }))).size;
    }
  } catch { /* not yet created */ }
  return total;
}

/**
 * Runs one case; returns the samples (ms since the engine started, bytes) and how many
 * `TimeoutOverflowWarning`s Node printed.
 */
async function measure(
  c: Case,
  seconds: number,
): Promise<{ samples: [number, number][]; warnings: number }> {
  const dir = await Deno.makeTempDir();
  const bytes = Math.round(c.share * seconds);
  try {
    await Deno.writeTextFile(
      join(dir, "rb.yaml"),
      `runbook: 1
name: pacing
bandwidth: ${c.share / MB}MB/s
steps:
  - id: f
    fetch:
      run: '${c.command(bytes)}'
      to: ./out/f.bin
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "run", "rb.yaml", "--store", join(dir, "s.db"), "--json"],
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const started = performance.now();
    let exited = false;
    const status = child.output().then((o) => {
      exited = true;
      return o;
    });
    const samples: [number, number][] = [];
    while (!exited) {
      samples.push([performance.now() - started, await bytesNow(join(dir, "out"))]);
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
    }
    // Bytes only grow: a sample taken during the final rename (neither name listed) is the last.
    for (let k = 1; k < samples.length; k++) {
      samples[k]![1] = Math.max(samples[k]![1], samples[k - 1]![1]);
    }
    const out = await status;
    const stderr = new TextDecoder().decode(out.stderr);
    if (out.code !== 0) throw new Error(`${c.name}: thaw run failed\n${stderr}`);
    return { samples, warnings: stderr.match(/TimeoutOverflowWarning/g)?.length ?? 0 };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Bytes at `t` ms, interpolated between samples. */
function at(samples: readonly [number, number][], t: number): number {
  let k = 1;
  while (k < samples.length - 1 && samples[k]![0] < t) k++;
  const [t0, b0] = samples[k - 1]!, [t1, b1] = samples[k]!;
  if (t >= t1) return b1;
  return t1 === t0 ? b1 : b0 + ((b1 - b0) * (t - t0)) / (t1 - t0);
}

/**
 * The worst and mean error of 5 s windows, between the first byte and the last (one window from
 * the first byte when the whole transfer took less than 5 s: it outran its share).
 */
function windows(samples: readonly [number, number][], share: number) {
  const final = samples[samples.length - 1]![1];
  const first = samples.find(([, b]) => b > 0)![0];
  const last = samples.find(([, b]) => b >= final)![0];
  const errors: number[] = [];
  for (const [t] of samples) {
    if (t < first || t > Math.max(first, last - WINDOW_S * 1000)) continue;
    const rate = (at(samples, t + WINDOW_S * 1000) - at(samples, t)) / WINDOW_S;
    errors.push(Math.abs(rate - share) / share);
  }
  const mean = errors.reduce((a, b) => a + b, 0) / errors.length;
  return {
    worst: Math.max(...errors),
    mean,
    windows: errors.length,
    rate: final / ((last - first) / 1000),
  };
}

if (import.meta.main) {
  const args = parseArgs({
    args: Deno.args,
    options: { seconds: { type: "string", default: "8" } },
  });
  const seconds = Number(args.values.seconds);
  let missed = false;
  for (const c of CASES) {
    const { samples, warnings } = await measure(c, seconds);
    const w = windows(samples, c.share);
    const ok = w.worst <= TARGET && warnings === 0;
    missed ||= !ok;
    console.log(
      `${c.name}: worst ${WINDOW_S} s window ${(100 * w.worst).toFixed(1)} % off its share ` +
        `(mean ${(100 * w.mean).toFixed(1)} %, ${w.windows} windows; ` +
        `${(w.rate / MB).toFixed(2)} MB/s overall; ${warnings} TimeoutOverflowWarning(s)) ` +
        (ok ? "ok" : "MISSED"),
    );
  }
  Deno.exit(missed ? 1 : 0);
}
