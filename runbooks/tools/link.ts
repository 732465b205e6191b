/**
 * A stand-in for the recovery site's network link, for `runbooks/shared-link.yaml`: one budget
 * of bytes per second that every connection through it shares, so the restore traffic and the
 * customers of the service compete as they do on a real site's link. Each `LISTEN:TARGET` pair
 * forwards 127.0.0.1:LISTEN to 127.0.0.1:TARGET (connecting when a client comes, so the target
 * may start later); bytes in both directions take their turn on the budget, chunk by chunk, so
 * two busy connections get about half of it each.
 *
 * ```sh
 * deno run -A runbooks/tools/link.ts MB_PER_S LISTEN:TARGET...   # e.g. 24 18089:18088 18079:18080
 * ```
 *
 * @module
 */

/** The most bytes a chunk takes of the link at once (its turn). */
const CHUNK = 64 * 1024;
/** How far behind the clock the link's next free slot may lag (ms): what timers oversleep. */
const SLACK_MS = 10;

/** The shared budget: each chunk reserves the link's next free slot, and waits for its end. */
export class Link {
  readonly #bytesPerMs: number;
  #free = 0;

  /** A link of `bytesPerSecond`. */
  constructor(bytesPerSecond: number) {
    this.#bytesPerMs = bytesPerSecond / 1000;
  }

  /** Waits until `n` bytes have crossed the link, after every chunk that asked before. */
  async take(n: number): Promise<void> {
    const now = performance.now();
    // A timer that overslept does not cost the link its capacity: the slots it missed are used.
    this.#free = Math.max(now - SLACK_MS, this.#free) + n / this.#bytesPerMs;
    const wait = this.#free - now;
    if (wait >= 1) await new Promise((r) => setTimeout(r, wait));
  }
}

async function pump(from: Deno.Conn, to: Deno.Conn, link: Link): Promise<void> {
  const buf = new Uint8Array(CHUNK);
  try {
    while (true) {
      const n = await from.read(buf);
      if (n === null) break;
      await link.take(n);
      for (let done = 0; done < n;) done += await to.write(buf.subarray(done, n));
    }
  } catch { /* the other side went away */ }
  try {
    await to.closeWrite();
  } catch { /* already closed */ }
}

async function forward(client: Deno.Conn, target: number, link: Link): Promise<void> {
  let upstream: Deno.Conn;
  try {
    upstream = await Deno.connect({ hostname: "127.0.0.1", port: target });
  } catch {
    client.close();
    return;
  }
  // No Nagle: a request's or an answer's last small piece would otherwise wait for the peer's
  // delayed ACK (about 40 ms a small read through the link, as a lazy fetch's demanded reads are).
  for (const c of [client, upstream]) (c as Deno.TcpConn).setNoDelay(true);
  await Promise.all([pump(client, upstream, link), pump(upstream, client, link)]);
  for (const c of [client, upstream]) {
    try {
      c.close();
    } catch { /* closed */ }
  }
}

/** Forwards each `[listen, target]` pair over one link of `bytesPerSecond`. */
export function serveLink(bytesPerSecond: number, pairs: readonly [number, number][]): void {
  const link = new Link(bytesPerSecond);
  for (const [listen, target] of pairs) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: listen });
    (async () => {
      for await (const client of listener) void forward(client, target, link);
    })();
  }
}

if (import.meta.main) {
  const [rate, ...specs] = Deno.args;
  const pairs = specs.map((s) => /^(\d+):(\d+)$/.exec(s)).map((m) =>
    m ? [Number(m[1]), Number(m[2])] as [number, number] : undefined
  );
  if (!(Number(rate) > 0) || !pairs.length || pairs.some((p) => !p)) {
    console.error("usage: link.ts MB_PER_S LISTEN:TARGET...   e.g. link.ts 24 18089:18088");
    Deno.exit(2);
  }
  serveLink(Number(rate) * 1e6, pairs as [number, number][]);
}
