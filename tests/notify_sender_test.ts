/**
 * The webhook sender against real HTTP receivers on 127.0.0.1: payloads as received, retries,
 * timeouts, the queue's bound, and secrets kept out of every line it logs.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  notifyModel,
  type Payload,
  resolveWebhooks,
  type SenderOptions,
  type WebhookInput,
  WebhookSender,
} from "../engine/notify/mod.ts";
import type { Reference } from "../engine/runbook/expressions.ts";
import { receiver, silent } from "./webhook_receiver.ts";

/** A sender to the webhooks `inputs`, `env` giving `${{ env.NAME }}`; its log lines in `lines`. */
function sender(
  inputs: WebhookInput[],
  env: Record<string, string> = {},
  options: SenderOptions = {},
) {
  const value = (ref: Reference) => ref.ns === "env" ? env[ref.name] ?? "" : "R1";
  const hooks = resolveWebhooks({ file: "x.yaml", text: "", env: {} }, notifyModel(inputs), value);
  const lines: string[] = [];
  const s = new WebhookSender(hooks, { backoffMs: 20, ...options, log: (l) => lines.push(l) });
  return { sender: s, lines };
}

/** A payload of `event` at `at` seconds. */
function payload(event: Payload["event"], at = 1): Payload {
  return {
    text: `shop: ${event} at ${at}s`,
    event,
    runbook: "shop",
    run: "R1",
    drill: true,
    at_s: at,
    time: new Date(at * 1000).toISOString(),
  };
}

Deno.test("WebhookSender POSTs JSON with its headers, when the webhook takes the event", async () => {
  const a = receiver(), b = receiver();
  const { sender: s, lines } = sender([
    { url: `${a.url}/hook`, on: ["milestone", "end"], headers: { "X-Token": "${{ env.TOKEN }}" } },
    { url: `${b.url}/hook`, on: ["end"] },
  ], { TOKEN: "t0ken-value" });
  try {
    s.send(payload("milestone", 3));
    s.send(payload("approval", 4)); // neither takes it
    s.send(payload("end", 9));
    assert.equal(await s.flush(5000), true);
    await a.until(2);
    await b.until(1);
    assert.deepEqual(a.got.map((r) => r.body), [payload("milestone", 3), payload("end", 9)]);
    assert.deepEqual(b.got.map((r) => r.body), [payload("end", 9)]);
    const h = a.got[0]!.headers;
    assert.equal(h.get("content-type"), "application/json");
    assert.equal(h.get("x-token"), "t0ken-value");
    assert.equal(b.got[0]!.headers.get("x-token"), null);
    assert.equal(b.got[0]!.body.drill, true);
    assert.deepEqual(lines, []);
    assert.deepEqual(s.stats().map((x) => [x.sent, x.failed, x.dropped]), [[2, 0, 0], [1, 0, 0]]);
  } finally {
    await s.close();
    await a.close();
    await b.close();
  }
});

Deno.test("WebhookSender retries with backoff, when the receiver fails twice then accepts", async () => {
  const r = receiver((_, n) =>
    n === 1
      ? new Response("down for maintenance", { status: 503 })
      : n === 2
      ? new Response("oops", { status: 500 })
      : new Response("ok")
  );
  const { sender: s, lines } = sender([{ url: `${r.url}/hook`, retries: 3 }]);
  try {
    s.send(payload("step-failed", 7));
    assert.equal(await s.flush(5000), true);
    await r.until(3);
    assert.deepEqual(r.got.map((x) => x.body), [1, 2, 3].map(() => payload("step-failed", 7)));
    assert.deepEqual(lines, [
      `thaw: notify: step-failed notification to ${r.url}/hook failed: HTTP 503 Service ` +
      "Unavailable: down for maintenance (attempt 1 of 4; again in 0.02s)",
      `thaw: notify: step-failed notification to ${r.url}/hook failed: HTTP 500 Internal Server ` +
      "Error: oops (attempt 2 of 4; again in 0.04s)",
    ]);
    assert.deepEqual(s.stats()[0], {
      url: `${r.url}/hook`,
      sent: 1,
      failed: 0,
      dropped: 0,
      attempts: 3,
      pending: 0,
    });
    assert.deepEqual(s.summary(), []);
  } finally {
    await s.close();
    await r.close();
  }
});

Deno.test("WebhookSender gives up without retrying, when the receiver refuses the request (4xx)", async () => {
  const r = receiver(() => new Response("invalid_payload", { status: 400 }));
  const { sender: s, lines } = sender([{ url: `${r.url}/hook`, retries: 5 }]);
  try {
    s.send(payload("end"));
    assert.equal(await s.flush(5000), true);
    await r.until(1);
    assert.deepEqual(lines, [
      `thaw: notify: end notification to ${r.url}/hook failed: HTTP 400 Bad Request: ` +
      "invalid_payload (attempt 1 of 6; not retried: fix the webhook)",
    ]);
    assert.deepEqual(s.summary(), [
      `thaw: notify: ${r.url}/hook: 0 sent, 1 failed, 0 dropped (last: HTTP 400 Bad Request: ` +
      "invalid_payload)",
    ]);
  } finally {
    await s.close();
    await r.close();
  }
});

Deno.test("WebhookSender is held no longer than its timeout, when a receiver never answers", async () => {
  const dead = silent(), alive = receiver();
  const { sender: s, lines } = sender(
    [
      { url: `${dead.url}/hook`, timeout: "200ms", retries: 1 },
      { url: `${alive.url}/hook` },
    ],
    {},
    { backoffMs: 50 },
  );
  try {
    const started = performance.now();
    const returned = s.send(payload("milestone", 2));
    assert.equal(returned, undefined); // queued: send() never waits for the network
    // The healthy webhook is not held up by the dead one.
    await alive.until(1);
    assert.equal(await s.flush(5000), true);
    const took = performance.now() - started;
    // Two attempts of 200 ms and a 50 ms wait; far below the 5 s flush would allow.
    assert(took < 3000, `the sender was held ${took.toFixed(0)} ms`);
    assert.equal(dead.connections >= 1, true);
    assert.deepEqual(lines, [
      `thaw: notify: milestone notification to ${dead.url}/hook failed: no answer within 0.2s ` +
      "(timeout) (attempt 1 of 2; again in 0.05s)",
      `thaw: notify: milestone notification to ${dead.url}/hook failed: no answer within 0.2s ` +
      "(timeout) (attempt 2 of 2; gave up)",
    ]);
    assert.deepEqual(s.stats().map((x) => [x.sent, x.failed]), [[0, 1], [1, 0]]);
  } finally {
    await s.close();
    await dead.close();
    await alive.close();
  }
});

Deno.test("WebhookSender drops the oldest waiting notification, when its queue is full", async () => {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const r = receiver(async () => {
    await gate; // the webhook is stuck until the test opens it
    return new Response("ok");
  });
  const { sender: s, lines } = sender([{ url: `${r.url}/hook` }], {}, { queue: 2 });
  try {
    for (let at = 1; at <= 5; at++) s.send(payload("objective", at));
    // The first is in flight; of 2, 3, 4, 5 the two oldest were dropped.
    assert.deepEqual(s.stats()[0]!.dropped, 2);
    assert.deepEqual(s.stats()[0]!.pending, 3);
    assert.deepEqual(lines, [
      `thaw: notify: dropped the objective notification of 2s for ${r.url}/hook: 2 were ` +
      "waiting (the webhook is down or slow); 1 dropped so far",
      `thaw: notify: dropped the objective notification of 3s for ${r.url}/hook: 2 were ` +
      "waiting (the webhook is down or slow); 2 dropped so far",
    ]);
    open();
    assert.equal(await s.flush(5000), true);
    await r.until(3);
    assert.deepEqual(r.got.map((x) => x.body.at_s), [1, 4, 5]);
    assert.deepEqual(s.summary(), [`thaw: notify: ${r.url}/hook: 3 sent, 0 failed, 2 dropped`]);
  } finally {
    open();
    await s.close();
    await r.close();
  }
});

Deno.test("WebhookSender never prints a secret, when requests to a secret address fail", async () => {
  // The receiver echoes what it was sent: a careless error text would carry the secrets.
  const r = receiver((req) =>
    new Response(`denied: ${req.headers.get("authorization")} ${req.url}`, { status: 500 })
  );
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const refused = `127.0.0.1:${closed.addr.port}`;
  closed.close(); // nothing listens there now
  const secrets = ["p4ssword", "path-s3cret", "query-s3cret", "header-s3cret"];
  const { sender: s, lines } = sender([
    {
      url: "${{ env.HOOK }}",
      retries: 1,
      headers: { Authorization: "Bearer ${{ env.TOKEN }}", "X-Plain": "plain-header-value" },
    },
    {
      url: `http://user:\${{ env.PW }}@${refused}/T0/\${{ env.PATH_TOKEN }}?key=query-s3cret`,
      retries: 0,
    },
  ], {
    HOOK: `${r.url}/T0/path-s3cret?key=query-s3cret`,
    TOKEN: "header-s3cret",
    PW: "p4ssword",
    PATH_TOKEN: "path-s3cret",
  });
  try {
    s.send(payload("end"));
    assert.equal(await s.flush(5000), true);
    await r.until(2);
    assert.equal(r.got[0]!.headers.get("authorization"), "Bearer header-s3cret");
    const printed = [...lines, ...s.summary(), ...s.stats().map((x) => JSON.stringify(x))];
    assert.equal(lines.length, 3, lines.join("\n"));
    for (const line of printed) {
      for (const secret of [...secrets, "plain-header-value"]) {
        assert(!line.includes(secret), `"${secret}" printed: ${line}`);
      }
    }
    const http500 = lines.filter((l) => l.includes("failed: HTTP 500"));
    assert.equal(http500.length, 2, lines.join("\n"));
    assert.match(http500[0]!, /to http:\/\/127\.0\.0\.1:\d+\/\*\*\*\?\*\*\* failed: HTTP 500 /);
    assert.match(http500[0]!, /denied: \*\*\* http:\/\/127\.0\.0\.1:\d+\/\*\*\*\?\*\*\*/);
    // A connection refused: the error text names the address, redacted.
    const other = lines.filter((l) => l.includes(`@${refused}/`));
    assert.equal(other.length, 1, lines.join("\n"));
    assert.match(
      other[0]!,
      /to http:\/\/\*\*\*@127\.0\.0\.1:\d+\/\*\*\*\?\*\*\* failed: .+ \(attempt 1 of 1; gave up\)$/,
    );
  } finally {
    await s.close();
    await r.close();
  }
});

Deno.test("WebhookSender.close() stops at once, when a request hangs and more are queued", async () => {
  const dead = silent();
  const { sender: s, lines } = sender([{ url: `${dead.url}/hook`, timeout: "1m" }]);
  try {
    s.send(payload("milestone", 1));
    s.send(payload("end", 2));
    for (let t = 0; dead.connections < 1 && t < 5000; t += 10) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(await s.flush(50), false); // still in flight
    await s.close();
    assert.deepEqual(s.stats()[0], {
      url: `${dead.url}/hook`,
      sent: 0,
      failed: 1,
      dropped: 1,
      attempts: 1,
      pending: 0,
      lastError: "thaw stopped while it was being sent",
    });
    assert.equal(lines.length, 2, lines.join("\n"));
    s.send(payload("end", 3)); // after close: nothing, no throw
  } finally {
    await s.close();
    await dead.close();
  }
});

Deno.test("WebhookSender.close() ends a wait between attempts, when the webhook keeps failing", async () => {
  const r = receiver(() => new Response("busy", { status: 503 }));
  const { sender: s, lines } = sender([{ url: `${r.url}/hook` }], {}, { backoffMs: 60_000 });
  try {
    s.send(payload("end"));
    await r.until(1);
    for (let t = 0; lines.length < 1 && t < 5000; t += 10) {
      await new Promise((x) => setTimeout(x, 10));
    }
    assert.match(
      lines[0]!,
      /HTTP 503 Service Unavailable: busy \(attempt 1 of 6; again in 30s\)$/, // 60 s, capped
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = await Promise.race([
      s.close().then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 5000))),
    ]);
    clearTimeout(timer);
    assert.equal(closed, true, "close() waited for the backoff");
    assert.deepEqual(s.stats()[0], {
      url: `${r.url}/hook`,
      sent: 0,
      failed: 0,
      dropped: 1,
      attempts: 1,
      pending: 0,
    });
    assert.equal(r.got.length, 1);
  } finally {
    await s.close();
    await r.close();
  }
});
