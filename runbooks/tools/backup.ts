/**
 * A stand-in backup site for the example runbooks, so they rehearse anywhere with nothing but
 * Deno: `make` writes deterministic backup data (the same bytes, and so the same sha256, on every
 * machine), `serve` serves a directory over HTTP on 127.0.0.1 with Range requests.
 *
 * ```sh
 * deno run -A runbooks/tools/backup.ts make DIR NAME:SIZE_MIB...   # e.g. catalog.db:8 media/a.bin:64
 * deno run -A runbooks/tools/backup.ts serve DIR PORT
 * deno run -A runbooks/tools/backup.ts sha256 NAME:SIZE_MIB        # what `make` will write
 * deno run -A runbooks/tools/backup.ts verify FILE NAME:SIZE_MIB   # FILE holds what `make` wrote
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { dirname, join, normalize } from "node:path";

const MIB = 1024 * 1024;

/** The i-th MiB of the data set `name`: xorshift32 seeded by the name and the block number. */
export function block(name: string, i: number, out = new Uint8Array(MIB)): Uint8Array {
  let s = 2166136261 ^ i;
  for (let k = 0; k < name.length; k++) s = Math.imul(s ^ name.charCodeAt(k), 16777619);
  s = (s ^ (i * 2654435761)) >>> 0 || 1;
  const words = new Uint32Array(out.buffer, out.byteOffset, out.byteLength >> 2);
  for (let k = 0; k < words.length; k++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    words[k] = s >>> 0;
  }
  return out;
}

/** Writes `name` (size MiB) under `dir`, unless it is already there with that size. */
export async function make(dir: string, name: string, mib: number): Promise<void> {
  const path = join(dir, name);
  try {
    if ((await Deno.stat(path)).size === mib * MIB) return;
  } catch { /* not there yet */ }
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
  const buf = new Uint8Array(MIB);
  for (let i = 0; i < mib; i++) {
    const b = block(name, i, buf);
    for (let done = 0; done < b.length;) done += await f.write(b.subarray(done));
  }
  f.close();
  await Deno.rename(tmp, path);
}

/** The sha256 of what {@link make} writes for `name`. */
export function sha256(name: string, mib: number): string {
  const h = createHash("sha256");
  const buf = new Uint8Array(MIB);
  for (let i = 0; i < mib; i++) h.update(block(name, i, buf));
  return h.digest("hex");
}

/**
 * Whether the file at `path` holds exactly what {@link make} writes for `name` (size MiB):
 * undefined when it does, else what differs.
 */
export async function verify(path: string, name: string, mib: number): Promise<string | undefined> {
  const f = await Deno.open(path);
  try {
    const size = (await f.stat()).size;
    if (size !== mib * MIB) return `${path}: ${size} bytes, expected ${mib * MIB}`;
    const want = new Uint8Array(MIB), got = new Uint8Array(MIB);
    for (let i = 0; i < mib; i++) {
      for (let n = 0; n < MIB;) {
        const r = await f.read(got.subarray(n));
        if (r === null) return `${path}: ends early in MiB ${i}`;
        n += r;
      }
      block(name, i, want);
      for (let k = 0; k < MIB; k++) {
        if (want[k] !== got[k]) return `${path}: differs at byte ${i * MIB + k}`;
      }
    }
    return undefined;
  } finally {
    f.close();
  }
}

/** Serves `dir` on 127.0.0.1:`port`, with Range requests. */
export function serve(dir: string, port: number): Deno.HttpServer {
  return Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (req) => {
    const path = normalize(decodeURIComponent(new URL(req.url).pathname));
    if (path === "/healthz") return new Response("ok\n");
    if (path.includes("..")) return new Response("bad path\n", { status: 400 });
    let file: Deno.FsFile;
    let size: number;
    try {
      file = await Deno.open(join(dir, path));
      size = (await file.stat()).size;
    } catch {
      return new Response("not found\n", { status: 404 });
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("range") ?? "");
    if (!range) {
      // accept-ranges: clients that read a part at a time (nbdkit's curl plugin) look for it.
      const headers = { "content-length": String(size), "accept-ranges": "bytes" };
      if (req.method === "HEAD") file.close();
      return new Response(req.method === "HEAD" ? null : file.readable, { headers });
    }
    const start = Number(range[1]),
      end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    if (start >= size) {
      file.close();
      return new Response(null, { status: 416, headers: { "content-range": `bytes */${size}` } });
    }
    await file.seek(start, Deno.SeekMode.Start);
    let left = end - start + 1;
    const body = file.readable.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, c) {
          if (left <= 0) return;
          const part = chunk.subarray(0, Math.min(left, chunk.length));
          left -= part.length;
          c.enqueue(part);
          if (left <= 0) c.terminate(); // read no further than the range
        },
      }),
    );
    return new Response(body, {
      status: 206,
      headers: {
        "content-length": String(end - start + 1),
        "accept-ranges": "bytes",
        "content-range": `bytes ${start}-${end}/${size}`,
      },
    });
  });
}

function spec(arg: string): [string, number] {
  const m = /^(.+):(\d+)$/.exec(arg);
  if (!m) throw new Error(`expected NAME:SIZE_MIB, got "${arg}"`);
  return [m[1]!, Number(m[2])];
}

if (import.meta.main) {
  const [command, ...rest] = Deno.args;
  if (command === "make" && rest.length >= 2) {
    const [dir, ...sets] = rest;
    for (const s of sets) await make(dir!, ...spec(s));
  } else if (command === "serve" && rest.length === 2) {
    serve(rest[0]!, Number(rest[1]));
  } else if (command === "sha256" && rest.length === 1) {
    console.log(sha256(...spec(rest[0]!)));
  } else if (command === "verify" && rest.length === 2) {
    const problem = await verify(rest[0]!, ...spec(rest[1]!));
    if (problem) {
      console.error(problem);
      Deno.exit(1);
    }
    console.log(`${rest[0]}: ${spec(rest[1]!)[1]} MiB, every byte as backed up`);
  } else {
    console.error(
      "usage: backup.ts make DIR NAME:MIB... | serve DIR PORT | sha256 NAME:MIB | " +
        "verify FILE NAME:MIB",
    );
    Deno.exit(2);
  }
}
