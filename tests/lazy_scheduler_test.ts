/**
 * The scheduler and lazy fetches (contract revision 5): a lazy fetch starts (is attached) at
 * once, the steps that need it start once attached, its stream crosses the link as a prefetch
 * at the share the scheduler gives it, demanded reads come first and the stream yields to them,
 * and it is done when home. Events in, decisions out: no clock.
 *
 * @module
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { analyse, buildGraph, parseRunbook, Scheduler } from "../mod.ts";
import type { Decision, Strategy } from "../mod.ts";
import { DEMAND_HEADROOM } from "../engine/schedule/lazy.ts";
import { DemandMeter } from "../engine/schedule/lazy_meter.ts";

const MiB = 2 ** 20;

/** A runbook over a 10 MiB/s link: `vol` (lazy), `svc` needs it; `extra` steps appended. */
function runbook(extra = "", head = "bandwidth: 10MiB/s") {
  return parseRunbook(
    `runbook: 1
name: lazy
${head}
steps:
  - { id: vol, fetch: { from: http://b/v.img, to: ./v.img, size: 2GiB, lazy: true } }
  - { id: svc, needs: [vol], run: "true", estimate: 1s, milestone: up }
${extra}`,
    "t.yaml",
  );
}

function scheduler(text = "", strategy: Strategy = "aggressive", head?: string) {
  const rb = runbook(text, head);
  const g = buildGraph(rb);
  const s = new Scheduler(g, { strategy, parallelism: 8, rank: analyse(g).rank });
  const id = (name: string) => g.ids.indexOf(name);
  const show = (ds: Decision[]) =>
    ds.map((d) =>
      `${d.type} ${g.ids[d.step]}${d.type === "share" ? ` ${+(d.rate / MiB).toFixed(3)}` : ""}`
    );
  return { s, g, id, decide: () => show(s.decide()) };
}

Deno.test("Scheduler.decide() attaches a lazy fetch at once and starts its dependents only once attached", () => {
  const { s, id, decide } = scheduler();
  // No share of the link before the volume is attached: attaching moves next to nothing.
  deepEqual(decide(), ["start vol", "freeze svc", "demand vol"]);
  equal(s.state(id("vol")), "running");
  equal(s.state(id("svc")), "frozen");
  s.attached(id("vol"));
  deepEqual(decide(), ["attached vol", "thaw svc", "start svc", "share vol 10"]);
  equal(s.isAttached(id("vol")), true);
  s.complete(id("svc"));
  decide();
  equal(s.finished, false, "BTN waits for the volume to be home");
  equal(s.state(id("vol")), "running");
  s.home(id("vol"));
  decide();
  equal(s.state(id("vol")), "done");
  equal(s.finished, true);
});

Deno.test("Scheduler.attached() changes nothing, when the step is no lazy fetch or is attached already", () => {
  const { s, id, decide } = scheduler(
    "  - { id: plain, fetch: { from: http://b/p, to: ./p, size: 10MiB } }\n" +
      "  - { id: user, needs: [plain], run: 'true', estimate: 1s }",
  );
  decide();
  s.attached(id("plain"));
  s.attached(id("svc"));
  deepEqual(decide(), []);
  equal(s.state(id("user")), "frozen", "an ordinary fetch lets its dependents go when done");
  s.attached(id("vol"));
  decide();
  s.attached(id("vol"));
  deepEqual(decide(), []);
  s.home(id("vol")); // the dependents were let go at attach: not a second time
  decide();
  equal(s.state(id("svc")), "running");
});

Deno.test("Scheduler.setDemandRate() reserves the link for demanded reads and the stream yields, when a service reads", () => {
  const { s, id, decide } = scheduler();
  const vol = id("vol");
  decide();
  s.attached(vol);
  decide();
  equal(s.share(vol), 10 * MiB);
  s.setDemandRate(vol, 2 * MiB);
  deepEqual(decide(), [`share vol ${10 - 2 * DEMAND_HEADROOM}`]);
  equal(s.demandRate(vol), 2 * MiB);
  // Demand that takes the whole link pauses the stream (share 0), never a negative share.
  s.setDemandRate(vol, 6 * MiB);
  deepEqual(decide(), ["share vol 0"]);
  s.setDemandRate(vol, 0);
  deepEqual(decide(), ["share vol 10"]);
  // Nonsense measures count as no demand.
  s.setDemandRate(vol, Number.NaN);
  deepEqual(decide(), []);
});

Deno.test("Scheduler.decide() keeps stream, demand and other fetches within bandwidth, when they share the link", () => {
  const { s, id, decide, g } = scheduler(
    "  - { id: cat, fetch: { from: http://b/c, to: ./c, size: 100MiB, rate: 3MiB/s } }\n" +
      "  - { id: web, needs: [cat], run: 'true', estimate: 1s, milestone: up }\n" +
      "  - { id: logs, fetch: { from: http://b/l, to: ./l, size: 1GiB } }",
  );
  const vol = id("vol"), cat = id("cat"), logs = id("logs");
  decide();
  s.attached(vol);
  decide();
  // cat (a milestone waits for it) first at its source's rate; the stream is a prefetch.
  equal(s.share(cat), 3 * MiB);
  equal(s.share(vol) + s.share(logs), 7 * MiB);
  for (const demand of [0.5, 1, 2, 3.5, 5]) {
    s.setDemandRate(vol, demand * MiB);
    decide();
    const used = [vol, cat, logs].reduce((sum, f) => sum + s.share(f), 0);
    const reserved = Math.min(10, DEMAND_HEADROOM * demand) * MiB;
    ok(used + reserved <= g.bandwidth * (1 + 1e-12), `demand ${demand}: ${used + reserved}`);
    // Work-conserving: what demand does not hold is used (logs takes what the others leave).
    equal(used + reserved, g.bandwidth, `demand ${demand}`);
  }
  // Demanded reads come before the fetch a milestone waits for too.
  equal(s.share(cat), 0);
});

Deno.test("Scheduler.decide() ranks a lazy fetch's stream below a demanded fetch, when both are ready", () => {
  const { s, id, decide } = scheduler(
    "  - { id: db, fetch: { from: http://b/d, to: ./d, size: 100MiB } }\n" +
      "  - { id: restore, needs: [db], run: 'true', estimate: 1s }",
  );
  decide();
  s.attached(id("vol"));
  decide();
  equal(s.share(id("db")), 10 * MiB, "the demanded fetch takes the link");
  equal(s.share(id("vol")), 0, "the stream waits");
  s.complete(id("db"));
  decide();
  equal(s.share(id("vol")), 10 * MiB);
});

Deno.test("Scheduler.decide() attaches a lazy fetch only once demanded, when the strategy is lazy", () => {
  const { s, id, decide } = scheduler(
    "  - { id: other, fetch: { from: http://b/o.img, to: ./o.img, size: 1GiB, lazy: true } }",
    "lazy",
  );
  const first = decide();
  ok(first.includes("start vol"), first.join());
  ok(!first.includes("start other"), "nothing needs it: it waits for the last run step");
  s.attached(id("vol"));
  decide();
  s.complete(id("svc"));
  deepEqual(decide(), ["start other"]);
});

Deno.test("Scheduler.decide() streams at the source's rate less demand, when the link is not limited", () => {
  const { s, id, decide } = scheduler("", "aggressive", "");
  const vol = id("vol");
  decide();
  equal(s.share(vol), 0, "no stream before attach");
  s.setRate(vol, 8 * MiB);
  decide();
  equal(s.share(vol), 0, "no stream before attach, whatever the source's rate");
  s.attached(vol);
  decide();
  equal(s.share(vol), 8 * MiB);
  s.setDemandRate(vol, 1 * MiB);
  decide();
  equal(s.share(vol), 8 * MiB - DEMAND_HEADROOM * MiB);
});

Deno.test("Scheduler.decide() holds a gated lazy fetch for its approval, when it has one", () => {
  const { s, id, decide } = scheduler(
    "  - id: gated\n    approval: Restore the archive volume?\n" +
      "    fetch: { from: http://b/g.img, to: ./g.img, size: 1GiB, lazy: true }",
  );
  ok(decide().includes("wait gated"));
  equal(s.waiting(id("gated")), "approval");
  s.attached(id("gated")); // not started yet: cannot be attached
  deepEqual(decide(), []);
  equal(s.isAttached(id("gated")), false);
  s.approve(id("gated"));
  deepEqual(decide(), ["start gated"]);
});

Deno.test("Scheduler.fail() leaves a lazy fetch's running dependents, when it fails after attach", () => {
  const { s, id, decide } = scheduler(
    "  - { id: later, needs: [vol, svc], run: 'true', estimate: 1s }\n" +
      "  - { id: more, fetch: { from: http://b/m, to: ./m, size: 1MiB } }",
  );
  decide();
  s.attached(id("vol"));
  decide();
  s.setDemandRate(id("vol"), 1 * MiB);
  decide();
  s.fail(id("vol"));
  decide();
  equal(s.state(id("svc")), "running");
  equal(s.state(id("later")), "skipped");
  equal(s.demandRate(id("vol")), 0, "an ended fetch holds no link");
});

Deno.test("DemandMeter.sample() counts bytes beyond the stream as demand, when a service reads", () => {
  const m = new DemandMeter();
  deepEqual(m.sample(0, 0, 0), { onDemand: 0, streamed: 0, rate: 0 });
  // Fake clock, one sample a second: 4 MiB read on demand in the first second.
  const first = m.sample(1, 5 * MiB, 1 * MiB);
  equal(first.onDemand, 4 * MiB);
  equal(first.rate, 4 * MiB, "a rise is taken at once (the stream yields within a sample)");
  // The stream catches up over parts already read: demand never goes down.
  equal(m.sample(2, 6 * MiB, 3 * MiB).onDemand, 4 * MiB);
  // No reads for a while: the rate decays to nothing.
  let last = first.rate;
  for (let t = 3; t < 60; t++) {
    const s = m.sample(t, 6 * MiB + (t - 2) * MiB, 3 * MiB + (t - 2) * MiB);
    ok(s.rate <= last, `t=${t}: ${s.rate} after ${last}`);
    last = s.rate;
  }
  equal(last, 0);
  // Two samples at the same time change the bytes, not the rate.
  const same = m.sample(59, 100 * MiB, 60 * MiB);
  deepEqual([same.onDemand, same.rate], [40 * MiB, 0]);
});

Deno.test("Scheduler.decide() pauses the stream while demand is high and resumes it after, when driven second by second", () => {
  const { s, id, decide } = scheduler();
  const vol = id("vol");
  const meter = new DemandMeter();
  decide();
  s.attached(vol);
  decide();
  let fetched = 0, streamed = 0;
  const shares: number[] = [];
  // A fake clock: each second the stream moves its share, and the service reads `reads`.
  const reads = [0, 8, 8, 8, 0, 0, 0, 0, 0, 0, 0, 0];
  for (const [t, read] of reads.entries()) {
    streamed += s.share(vol);
    fetched += s.share(vol) + read * MiB;
    s.setDemandRate(vol, meter.sample(t, fetched, streamed).rate);
    decide();
    shares.push(+(s.share(vol) / MiB).toFixed(1));
    ok(s.share(vol) + Math.min(10 * MiB, 2 * s.demandRate(vol)) <= 10 * MiB + 1);
  }
  equal(shares[0], 10, "no demand: the stream has the link");
  ok(shares[1]! < 5, `yields at the first second of reads: ${shares}`);
  ok(shares.slice(2, 4).every((x) => x === 0), `paused while reads fill the link: ${shares}`);
  const after = shares.slice(4);
  ok(after.every((x, k) => k === 0 || x >= after[k - 1]!), `resumes, never slower: ${shares}`);
  ok(after.at(-1)! > 9.5, `back to nearly the whole link: ${shares}`);
});
