/**
 * Test helpers for `notify:` webhooks: an HTTP receiver on 127.0.0.1 that keeps what it got, and
 * a listener that accepts connections and never answers. Shared by the sender's tests and the
 * end-to-end ones through the `thaw` command.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Payload } from "../engine/notify/mod.ts";

/** What a receiver got: the request's URL and path, its headers, its body. */
export interface Received {
  readonly url: string;
  readonly path: string;
  readonly headers: Headers;
  readonly body: Payload;
}

/** An HTTP receiver on 127.0.0.1 answering request `n` (from 1), `r`, with `answer(r, n)`. */
export function receiver(
  answer: (r: Received, n: number) => Response | Promise<Response> = () => new Response("ok"),
) {
  const got: Received[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const r = {
        url: req.url,
        path: new URL(req.url).pathname,
        headers: req.headers,
        body: JSON.parse(await req.text()) as Payload,
      };
      got.push(r);
      return await answer(r, got.length);
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    got,
    /** Waits (at most `ms`) until `n` requests came. */
    async until(n: number, ms = 5000) {
      for (let t = 0; got.length < n && t < ms; t += 10) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(got.length, n, `${got.length} requests, expected ${n}`);
    },
    close: () => server.shutdown(),
  };
}

/** A TCP listener on 127.0.0.1 that accepts connections and never answers. */
export function silent() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const c of listener) conns.push(c);
    } catch { /* closed */ }
  })();
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    get connections() {
      return conns.length;
    },
    async close() {
      listener.close();
      await accepting;
      for (const c of conns) c.close();
    },
  };
}
