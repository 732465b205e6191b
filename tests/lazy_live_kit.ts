/**
 * What the live tests of lazy fetches share (tests/lazy_live_test.ts, tests/lazy_service_test.ts):
 * a Range-serving backup on 127.0.0.1 that counts what it sends, a runbook of a lazy volume and a
 * service, and a temp dir that is cleaned of daemons, mounts and socket directories after a test.
 *
 * @module
 */
import { createHash } from "node:crypto";

export const MiB = 1 << 20;
export const SIZE = 24 * MiB;

/** A backup serving `image` with `Range: bytes=A-B`, counting the body bytes sent. */
export function rangeServer(image: Uint8Array) {
  // ranges: [start, end, time in ms (performance.now)] of each body sent.
  const state = { sent: 0, down: false, refused: 0, ranges: [] as [number, number, number][] };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    if (state.down) {
      state.refused++;
      return new Response("down\n", { status: 503 });
    }
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("range") ?? "");
    const start = m ? Number(m[1]) : 0;
    const end = m && m[2] ? Math.min(Number(m[2]), image.length - 1) : image.length - 1;
    const headers: Record<string, string> = {
      "accept-ranges": "bytes",
      "content-length": String(end - start + 1),
    };
    if (m) headers["content-range"] = `bytes ${start}-${end}/${image.length}`;
    if (req.method === "HEAD") return new Response(null, { status: m ? 206 : 200, headers });
    state.sent += end - start + 1;
    state.ranges.push([start, end + 1, performance.now()]);
    return new Response(image.slice(start, end + 1), { status: m ? 206 : 200, headers });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/disk.img`, state, server };
}

export function image(): Uint8Array {
  const data = new Uint8Array(SIZE);
  for (let off = 0; off < SIZE; off += 65536) {
    crypto.getRandomValues(data.subarray(off, off + 65536));
  }
  return data;
}

export const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

export function runbook(
  url: string,
  opts: { bandwidth: string; sha?: string; service: string; user?: string; retries?: number },
) {
  return `runbook: 1
name: lazy-live
bandwidth: ${opts.bandwidth}
steps:
  - id: volume
    fetch:
      from: ${url}
      to: ./restore/disk.img
      size: ${SIZE / MiB}MiB
${opts.sha ? `      sha256: ${opts.sha}\n` : ""}      lazy: true
${opts.retries !== undefined ? `    retries: ${opts.retries}\n` : ""}${
    opts.service.includes("conv=notrunc") ? "      writable: true\n" : ""
  }  - id: service
    needs: [volume]
${opts.user ? `    user: ${opts.user}\n` : ""}    run: ${JSON.stringify(opts.service)}
    milestone: service
`;
}

/** Processes whose command line names `dir` or `url` (daemons of the test's runs). */
export async function daemonsIn(dir: string, url = dir): Promise<string[]> {
  const found: string[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`).catch(() => "");
    if ((cmd.includes(dir) || cmd.includes(url)) && !cmd.includes("deno")) {
      found.push(cmd.replaceAll("\0", " "));
    }
  }
  return found;
}

export const mountsIn = async (dir: string) =>
  (await Deno.readTextFile("/proc/self/mountinfo")).split("\n").filter((l) => l.includes(dir));

/** Runs `body` in a temp dir with a backup of a fresh image; stops everything left after. */
export async function withBackup(
  body: (dir: string, data: Uint8Array, backup: ReturnType<typeof rangeServer>) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "thaw-lazy-live-" });
  const data = image();
  const backup = rangeServer(data);
  try {
    await body(dir, data, backup);
  } finally {
    for (const line of await mountsIn(dir)) {
      const point = line.split(" ")[4]!;
      await new Deno.Command("fusermount3", { args: ["-u", "-z", point] }).output();
    }
    // What a failed test left: its daemons, and their socket directories (thaw-lazy-ID).
    const runDirs = new Set<string>();
    for await (const e of Deno.readDir("/proc")) {
      const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`).catch(() => "");
      if (/^\d+$/.test(e.name) && (cmd.includes(dir) || cmd.includes(backup.url))) {
        for (const m of cmd.matchAll(/\/[^\0 ']*\/thaw-lazy-[0-9a-f]{12}/g)) runDirs.add(m[0]);
        try {
          Deno.kill(Number(e.name), "SIGKILL");
        } catch { /* gone */ }
      }
    }
    for (const d of runDirs) await Deno.remove(d, { recursive: true }).catch(() => {});
    await backup.server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}
