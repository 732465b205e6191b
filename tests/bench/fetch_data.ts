/**
 * What the fetch benchmarks share: a big file of random blocks with its sha256, and the stand-in
 * backup server (`tests/http_backup_server.ts`) serving a directory in another process.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** One block of the big file: 1 MiB. */
export const BLOCK = 1 << 20;

/** Writes `size` bytes (a multiple of {@link BLOCK}) of random blocks to `path`; its sha256. */
export async function makeFile(path: string, size: number): Promise<string> {
  const block = new Uint8Array(BLOCK);
  for (let i = 0; i < BLOCK; i += 65536) crypto.getRandomValues(block.subarray(i, i + 65536));
  const hash = createHash("sha256");
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  for (let i = 0; i < size / BLOCK; i++) {
    new DataView(block.buffer).setUint32(0, i);
    hash.update(block);
    let offset = 0;
    while (offset < block.length) offset += await file.write(block.subarray(offset));
  }
  return hash.digest("hex");
}

/** Starts the test server in another process; resolves to its base URL. */
export async function serve(dir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const script = new URL("../http_backup_server.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, dir],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the server exited before listening");
    text += value;
  }
  reader.cancel().catch(() => {});
  return {
    url: text.split("\n")[0]!.trim(),
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}
