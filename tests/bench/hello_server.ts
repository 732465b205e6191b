/**
 * A bare Hono hello-world on 127.0.0.1 (a free port): the baseline that
 * {@link ./api_poll.ts} compares the status API's requests per second against, served by the
 * same Deno and the same Hono as `thaw serve`.
 *
 * ```sh
 * deno run -A tests/bench/hello_server.ts [BYTES]   # prints its URL, serves until killed
 * ```
 *
 * `GET /json` answers a JSON body of BYTES bytes (default 1200) with the headers `GET /runs/ID`
 * sends: the reference for what the size of an answer costs on its own.
 *
 * @module
 */
import { Hono } from "hono";

const app = new Hono();
app.get("/", (c) => c.text("Hello Hono!"));
const bytes = Number(Deno.args[0] ?? 1200);
const json = JSON.stringify({ pad: "x".repeat(Math.max(0, bytes - 10)) });
const headers: [string, string][] = [
  ["ETag", '"0123456789abcdefghijklmnopq"'],
  ["Cache-Control", "no-cache"],
  ["Content-Type", "application/json"],
];
app.get("/json", () => new Response(json, { headers }));

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ hostname, port }) => console.log(`http://${hostname}:${port}/`),
}, app.fetch);
