import { deepEqual, equal, ok } from "node:assert/strict";
import { analyse, buildGraph, parseRunbook, plan, Scheduler, simulate } from "../mod.ts";
import type { Decision, Strategy } from "../mod.ts";
import { EXAMPLE } from "./gen.ts";

function measures(text: string, strategy: Strategy) {
  const r = simulate(parseRunbook(text, "t.yaml"), { strategy });
  const at = (id: string) => r.steps.find((s) => s.id === id)!;
  return { r, ttr: r.ttr_s, btn: r.btn_s, lb: r.lower_bound, at };
}

Deno.test("simulate() gives the hand-computed TTR and BTN, when strategies differ", () => {
  const want = { serial: [18, 38], lazy: [12, 38], aggressive: [12, 32] } as const;
  for (const [strategy, [ttr, btn]] of Object.entries(want)) {
    const m = measures(EXAMPLE, strategy as Strategy);
    deepEqual([m.ttr, m.btn], [ttr, btn], strategy);
    deepEqual(m.lb, { ttr_s: 12, btn_s: 32 }, `${strategy} lower bounds`);
  }
});

Deno.test("simulate() records start, end and frozen time, when a step waits for its data", () => {
  const lazy = measures(EXAMPLE, "lazy");
  deepEqual([lazy.at("s1").start_s, lazy.at("s1").frozen_s], [2, 2]);
  // s2 freezes when s1 is done (12s) and thaws when f2 lands (18s).
  deepEqual([lazy.at("f2").start_s, lazy.at("s2").frozen_s, lazy.at("s2").start_s], [12, 6, 18]);
  const aggressive = measures(EXAMPLE, "aggressive");
  deepEqual([aggressive.at("f2").start_s, aggressive.at("f2").end_s], [2, 8]);
  // Aggressive: s2 is held behind frozen s1, so what s2 will wait for is demanded at once too.
  equal(aggressive.at("f2").demanded, true);
  equal(lazy.at("f2").demanded, true);
  equal(aggressive.at("f1").demanded, true);
});

Deno.test("simulate() prefetches, when a step waits for a running step and not a frozen one", () => {
  const text = `runbook: 1
name: prefetch
bandwidth: 100MB/s
steps:
  - { id: f1, fetch: { from: /b/1, to: ./1, size: 200MB } }
  - { id: s1, needs: [f1], run: "true", estimate: 10s, milestone: up }
  - { id: s0, run: "true", estimate: 6s }
  - { id: f3, fetch: { from: /b/3, to: ./3, size: 300MB } }
  - { id: s3, needs: [s0, f3], run: "true", estimate: 1s }
`;
  const a = measures(text, "aggressive");
  // f1 is demanded and goes first (0-2s); f3 is prefetched behind it (2-5s), before s3 needs it.
  deepEqual([a.at("f3").start_s, a.at("f3").end_s, a.at("f3").demanded], [2, 5, false]);
  deepEqual([a.at("s3").start_s, a.at("s3").frozen_s], [6, 0]);
  deepEqual(a.r.bytes, { total: 500e6, on_demand: 200e6, prefetched: 300e6 });
  // Lazy waits for s3 to freeze at 6s before fetching f3.
  const l = measures(text, "lazy");
  deepEqual([l.at("f3").start_s, l.at("s3").start_s, l.at("s3").frozen_s], [6, 9, 3]);
});

Deno.test("simulate() demands the data of steps held behind a frozen step, when aggressive", () => {
  // s2 (the milestone) waits for s1, frozen on f1; f2 comes from a slow source (10MB/s).
  const text = `runbook: 1
name: held
bandwidth: 100MB/s
steps:
  - { id: f1, fetch: { from: /b/1, to: ./1, size: 1000MB } }
  - { id: s1, needs: [f1], run: "true", estimate: 1s }
  - { id: f2, fetch: { from: /b/2, to: ./2, size: 100MB, rate: 10MB/s } }
  - { id: s2, needs: [s1, f2], run: "true", estimate: 1s, milestone: up }
`;
  const a = measures(text, "aggressive");
  // f2 starts at once at its source's 10MB/s; f1 has the other 90MB/s for 10s, then all of it.
  deepEqual([a.at("f2").start_s, a.at("f2").end_s, a.at("f2").demanded], [0, 10, true]);
  deepEqual([a.at("f1").end_s, a.ttr], [11, 13]);
  deepEqual(a.lb, { ttr_s: 12, btn_s: 12 });
  // Lazy demands f2 only when s2 freezes, after s1: 10 + 1 + 10 + 1.
  equal(measures(text, "lazy").ttr, 22);
});

Deno.test("simulate() shares the link by demand, when a source is slower than the link", () => {
  // f1 (200MB at 50MB/s) feeds the milestone; f2 (300MB) takes what the link has left.
  const text = `runbook: 1
name: slow-source
bandwidth: 100MB/s
steps:
  - { id: f1, fetch: { from: /b/1, to: ./1, size: 200MB, rate: 50MB/s } }
  - { id: s1, needs: [f1], run: "true", estimate: 10s, milestone: up }
  - { id: f2, fetch: { from: /b/2, to: ./2, size: 300MB } }
  - { id: s2, needs: [f2], run: "true", estimate: 5s }
`;
  const a = measures(text, "aggressive");
  // f1 done at 4s; f2 had 50MB/s for 4s, then the whole link for its last 100MB: done at 5s.
  deepEqual([a.at("f1").end_s, a.at("f2").end_s, a.ttr, a.btn], [4, 5, 14, 14]);
  deepEqual(a.lb, { ttr_s: 14, btn_s: 14 });
  const s = measures(text, "serial");
  deepEqual([s.at("s1").start_s, s.ttr, s.btn], [5, 15, 15]);
});

Deno.test("simulate() fetches what no step needs last, when the strategy is lazy", () => {
  const text = `runbook: 1
name: unneeded
bandwidth: 100MB/s
steps:
  - { id: f1, fetch: { from: /b/1, to: ./1, size: 100MB } }
  - { id: logs, fetch: { from: /b/logs, to: ./logs, size: 100MB } }
  - { id: s1, needs: [f1], run: "true", estimate: 1s }
`;
  const lazy = measures(text, "lazy");
  deepEqual([lazy.at("logs").start_s, lazy.btn], [2, 3]);
  const aggressive = measures(text, "aggressive");
  deepEqual([aggressive.at("logs").start_s, aggressive.at("logs").end_s, aggressive.btn], [
    1,
    2,
    2,
  ]);
});

Deno.test("simulate() runs milestone work first, when parallelism is 1", () => {
  const text = `runbook: 1
name: one-slot
parallelism: 1
steps:
  - { id: a, run: "true", estimate: 3s }
  - { id: b, run: "true", estimate: 2s }
  - { id: c, run: "true", estimate: 1s, milestone: up }
`;
  const m = measures(text, "aggressive");
  deepEqual([m.at("c").start_s, m.ttr, m.btn], [0, 1, 6]);
  deepEqual(m.lb, { ttr_s: 1, btn_s: 3 });
});

Deno.test("simulate() reports objectives met and missed, when limits are tight", () => {
  const withObjectives = (rto: string, btn: string, ms: string) =>
    EXAMPLE.replace(
      "bandwidth:",
      `objectives: { rto: ${rto}, btn: ${btn}, milestones: { service: ${ms} } }\nbandwidth:`,
    );
  const met = measures(withObjectives("12s", "32s", "12s"), "aggressive").r;
  deepEqual([met.outcome, met.missed], ["met", []]);
  const missed = measures(withObjectives("11s", "40s", "11500ms"), "aggressive").r;
  deepEqual([missed.outcome, missed.missed], ["missed", ["rto", "milestone:service"]]);
  const serial = measures(withObjectives("12s", "32s", "1m"), "serial").r;
  deepEqual(serial.missed, ["rto", "btn"]);
  deepEqual(serial.objectives, { rto_s: 12, btn_s: 32, milestones: { service: 60 } });
});

Deno.test("simulate() runs a drill-skipped step as its estimate, when the runbook is drilled", () => {
  const text = EXAMPLE + `drill: { skip: [f2] }\n`;
  const rb = parseRunbook(
    text.replace("{ id: f2, fetch:", "{ id: f2, estimate: 1s, fetch:"),
    "t.yaml",
    {
      drill: true,
    },
  );
  const r = simulate(rb, { strategy: "aggressive" });
  const f2 = r.steps.find((s) => s.id === "f2")!;
  deepEqual([f2.state, f2.start_s, f2.end_s, r.btn_s], ["skipped", 0, 1, 32]);
});

Deno.test("plan() gives levels, critical paths and all strategies, for the example", () => {
  const p = plan(parseRunbook(EXAMPLE, "t.yaml"));
  deepEqual(p.levels, [["f1", "f2"], ["s1"], ["s2"]]);
  deepEqual(p.critical_path, { ttr: ["f1", "s1"], btn: ["f1", "s1", "s2"] });
  deepEqual(p.lower_bound, { ttr_s: 12, btn_s: 32 });
  deepEqual(Object.keys(p.simulated), ["serial", "lazy", "aggressive"]);
});

function scheduler(text: string, strategy: Strategy = "aggressive") {
  const g = buildGraph(parseRunbook(text, "t.yaml"));
  const s = new Scheduler(g, { strategy, parallelism: 8, rank: analyse(g).rank });
  const id = (d: Decision) => `${d.type} ${g.ids[d.step]}${d.type === "share" ? " " + d.rate : ""}`;
  const idx = (name: string) => g.ids.indexOf(name);
  return { s, g, idx, decide: () => s.decide().map(id) };
}

const FAILURES = `runbook: 1
name: failures
steps:
  - { id: a, run: "false", estimate: 1s, on-failure: isolate }
  - { id: b, needs: [a], run: "true", estimate: 1s }
  - { id: c, run: "true", estimate: 5s }
  - { id: d, needs: [c], run: "true", estimate: 1s }
`;

Deno.test("Scheduler.fail() skips only what depends on the step, when it isolates", () => {
  const { s, idx, decide } = scheduler(FAILURES);
  // c starts first: its chain (c, d) is the longer one.
  deepEqual(decide(), ["start c", "start a"]);
  s.fail(idx("a"));
  deepEqual(decide(), ["skip b"]);
  s.complete(idx("c"));
  deepEqual(decide(), ["start d"]);
  s.complete(idx("d"));
  deepEqual([s.state(idx("b")), s.state(idx("d")), s.finished], ["skipped", "done", true]);
});

Deno.test("Scheduler.fail() stops starting new steps, when the step aborts", () => {
  const { s, idx, decide } = scheduler(FAILURES.replace(", on-failure: isolate", ""));
  decide();
  s.fail(idx("a"));
  deepEqual(decide(), ["skip b", "skip d"]);
  equal(s.state(idx("c")), "running"); // running steps finish; nothing new starts
  s.complete(idx("c"));
  deepEqual(decide(), []);
  ok(s.finished);
});

Deno.test("Scheduler.cancel() cancels running and pending steps, when asked", () => {
  const { s, decide } = scheduler(FAILURES);
  decide();
  s.cancel();
  deepEqual(decide().sort(), ["cancel a", "cancel b", "cancel c", "cancel d"]);
  ok(s.finished);
});

Deno.test("Scheduler demands the fetches a fetch waits on, when a step freezes", () => {
  const { decide } = scheduler(`runbook: 1
name: chain
bandwidth: 10MB/s
steps:
  - { id: key, fetch: { from: /b/key, to: ./key, size: 1MB } }
  - { id: data, needs: [key], fetch: { from: /b/data, to: ./data, size: 10MB } }
  - { id: other, fetch: { from: /b/o, to: ./o, size: 10MB } }
  - { id: svc, needs: [data], run: "true", estimate: 1s }
`);
  deepEqual(decide(), [
    "freeze svc",
    "demand data",
    "demand key",
    "start key",
    "share key 10000000",
  ]);
});

Deno.test("Scheduler pauses a prefetch, when a frozen step demands another fetch", () => {
  const { s, idx, decide } = scheduler(`runbook: 1
name: preempt
bandwidth: 10MB/s
steps:
  - { id: big, fetch: { from: /b/big, to: ./big, size: 100MB } }
  - { id: gate, run: "true", estimate: 1s }
  - { id: small, fetch: { from: /b/s, to: ./s, size: 10MB } }
  - { id: svc, needs: [gate, small], run: "true", estimate: 1s }
`);
  // Before gate is done, nothing is frozen: big (larger latest finish) and small compete.
  const first = decide();
  ok(first.includes("start gate"));
  s.complete(idx("gate"));
  const next = decide();
  ok(next.includes("freeze svc") && next.includes("demand small"), next.join());
  equal(s.share(idx("small")), 10e6);
  equal(s.share(idx("big")), 0);
});

/**
 * The case: a PostgreSQL recovery (initdb, start, pg_restore of a 500MiB dump, row counts
 * as the milestone) beside a 300MiB image set that no milestone needs. `check-images` verifies the
 * image set, so it freezes at once and demands it, while the dump is not demanded before
 * `restore` freezes at 4s.
 */
const POSTGRES = `runbook: 1
name: postgres
bandwidth: 100MB/s
steps:
  - { id: fetch-dump, fetch: { from: /b/db.dump, to: ./db.dump, size: 500MiB } }
  - { id: fetch-images, fetch: { from: /b/images.tar, to: ./images.tar, size: 300MiB } }
  - { id: initdb, run: "initdb -D ./pgdata", estimate: 3s }
  - { id: start-postgres, needs: [initdb], run: "pg_ctl -D ./pgdata start", estimate: 1s }
  - { id: restore, needs: [start-postgres, fetch-dump], run: "pg_restore -d app ./db.dump", estimate: 7500ms }
  - { id: check-rows, needs: [restore], run: "./count-rows.sh", estimate: 1s, milestone: service }
`;
const CHECK_IMAGES =
  `  - { id: check-images, needs: [fetch-images], run: "sha256sum -c images.sha256", estimate: 2s }
`;

Deno.test("simulate() does not delay the service, when a check step demands data no milestone needs", () => {
  // The dump alone on the link (524.288MB at 100MB/s), then pg_restore and the row counts.
  const alone = 5.243 + 7.5 + 1;
  const without = measures(POSTGRES, "aggressive");
  const withCheck = measures(POSTGRES + CHECK_IMAGES, "aggressive");
  deepEqual([without.ttr, withCheck.ttr], [alone, alone]);
  deepEqual(withCheck.lb, { ttr_s: alone, btn_s: alone });
  // Service first: the dump (not yet demanded) has the link before the demanded image set.
  deepEqual(
    [withCheck.at("fetch-dump").end_s, withCheck.at("fetch-images").start_s],
    [5.243, 5.243],
  );
  deepEqual([withCheck.at("check-images").end_s, withCheck.btn], [10.389, alone]);
  // Lazy fetches only what is demanded: the dump from 4s, not delayed by the images either.
  deepEqual([measures(POSTGRES, "lazy").ttr, measures(POSTGRES + CHECK_IMAGES, "lazy").ttr], [
    17.743,
    17.743,
  ]);
});

Deno.test("Scheduler gives the link to what a milestone needs, when another fetch is demanded", () => {
  const { s, idx, decide } = scheduler(POSTGRES + CHECK_IMAGES);
  const first = decide();
  ok(first.includes("demand fetch-images") && !first.includes("demand fetch-dump"), first.join());
  deepEqual([s.share(idx("fetch-dump")), s.share(idx("fetch-images"))], [100e6, 0]);
  s.complete(idx("initdb"));
  s.complete(idx("start-postgres"));
  ok(decide().includes("demand fetch-dump"));
  deepEqual([s.share(idx("fetch-dump")), s.share(idx("fetch-images"))], [100e6, 0]);
  // Under lazy, only demanded fetches use the link: the image set until the dump is demanded.
  const lazy = scheduler(POSTGRES + CHECK_IMAGES, "lazy");
  lazy.decide();
  equal(lazy.s.share(lazy.idx("fetch-images")), 100e6);
  lazy.s.complete(lazy.idx("initdb"));
  lazy.s.complete(lazy.idx("start-postgres"));
  lazy.decide();
  deepEqual([lazy.s.share(lazy.idx("fetch-dump")), lazy.s.share(lazy.idx("fetch-images"))], [
    100e6,
    0,
  ]);
});

const LOCAL = `runbook: 1
name: local
bandwidth: 100MB/s
steps:
  - { id: snapshot, fetch: { from: /snap/db, to: ./db, size: 1000MB, rate: 500MB/s, local: true } }
  - { id: remote, fetch: { from: /b/media, to: ./media, size: 1000MB } }
  - { id: clone, fetch: { from: /snap/conf, to: ./conf, size: 50MB, local: true } }
  - { id: svc, needs: [snapshot, remote, clone], run: "true", estimate: 1s, milestone: up }
`;

Deno.test("simulate() keeps a local fetch off the link and out of its bounds, when marked local", () => {
  const m = measures(LOCAL, "aggressive");
  // The snapshot copies at its own 500MB/s (2s), the clone at once; the remote fetch has the
  // whole link (10s).
  deepEqual(["snapshot", "remote", "clone"].map((id) => m.at(id).end_s), [2, 10, 0]);
  deepEqual([m.ttr, m.lb], [11, { ttr_s: 11, btn_s: 11 }]);
  const { s, idx, decide } = scheduler(LOCAL);
  decide();
  deepEqual(["snapshot", "remote", "clone"].map((id) => s.share(idx(id))), [
    500e6,
    100e6,
    Infinity,
  ]);
  // A measured rate changes a local fetch's share at once.
  s.setRate(idx("snapshot"), 200e6);
  deepEqual(decide(), ["share snapshot 200000000"]);
});

Deno.test("analyse() bounds TTR by the bytes the longest tails need, when no single step shows it", () => {
  // s and t each need 1000MB and have 100s to go: both start after 2000MB crossed (20s).
  const text = `runbook: 1
name: tails
bandwidth: 100MB/s
steps:
  - { id: a, fetch: { from: /b/a, to: ./a, size: 1000MB } }
  - { id: b, fetch: { from: /b/b, to: ./b, size: 1000MB } }
  - { id: c, fetch: { from: /b/c, to: ./c, size: 1MB } }
  - { id: s, needs: [a], run: "true", estimate: 100s, milestone: up }
  - { id: t, needs: [b], run: "true", estimate: 100s, milestone: up }
  - { id: u, needs: [c], run: "true", estimate: 1s, milestone: up }
  - { id: logs, fetch: { from: /b/logs, to: ./logs, size: 500MB } }
`;
  const g = buildGraph(parseRunbook(text, "t.yaml"));
  const { lowerBound } = analyse(g);
  // Revision 1 gave max(10 + 100, 20.01 + 1) = 110; BTN also waits for the logs' bytes.
  deepEqual(lowerBound, { ttr: 120, btn: 120 });
  deepEqual(measures(text, "aggressive").ttr, 120);
  // Resumed with 400MB of a and 600MB of b home: 1000MB still to cross before s and t start.
  const home = g.ids.map((id) => (id === "a" ? 400e6 : id === "b" ? 600e6 : 0));
  equal(analyse(g, { home }).lowerBound.ttr, 110);
});
