/**
 * The answer of a server at its limits: `503` when every event stream slot is taken.
 *
 * @module
 */
import type { Context } from "hono";

/** `503` with a JSON error saying what to do instead, and when to retry. */
export function tooManyStreams(c: Context, max: number): Response {
  return c.json(
    {
      error: `too many event streams: this server serves at most ${max} at once ` +
        "(THAW_MAX_STREAMS raises it); retry later, or poll GET /runs/ID with If-None-Match",
      status: 503,
    },
    503,
    // The connection is let go too: a server at its limit sheds load.
    { "Retry-After": "5", Connection: "close" },
  );
}
