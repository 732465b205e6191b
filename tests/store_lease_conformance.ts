/**
 * The lease and fencing contract every store dialect keeps (part of the conformance suite,
 * registered by `storeConformance()`): tokens that only grow, expiry by the database's clock,
 * one winner when standbys race for an expired lease, and an engine that lost its lease
 * changing nothing.
 *
 * @module
 */
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { LeaseLost, StoreError } from "../engine/store/mod.ts";
import type { FetchProgress } from "../engine/store/mod.ts";
import {
  type ConformanceOptions,
  type LeaseStore,
  newRun,
  type OpenedStore,
} from "./store_conformance.ts";

/** Waits (at most ~3 s) until the run's lease has expired by the database's clock. */
export async function expire(s: LeaseStore, run: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if ((await s.expiredLeases()).some((l) => l.run === run)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`the lease of ${run} did not expire`);
}

const sample: FetchProgress = {
  step: "fetch-db",
  bytes: 10,
  total: 100,
  prefetched: 0,
  demanded: false,
  source: 0,
  at: 1,
};

/** Registers the lease tests; those that need two stores only where `options.shared`. */
export function leaseConformance(
  name: string,
  open: () => Promise<OpenedStore>,
  options: ConformanceOptions,
): void {
  const test = (
    title: string,
    fn: (s: LeaseStore, others: () => Promise<LeaseStore>) => Promise<void>,
    two = false,
  ) =>
    two && !options.shared ? undefined : Deno.test({
      name: `${name}: ${title}`,
      ignore: options.ignore ?? false,
      async fn() {
        const { store, reopen, cleanup } = await open();
        const opened: LeaseStore[] = [];
        try {
          await fn(store, async () => {
            const other = await reopen!();
            opened.push(other);
            return other;
          });
        } finally {
          for (const o of opened) await o.close();
          await cleanup();
        }
      },
    });

  test("acquireLease() gives a token that only grows, when acquired again", async (s) => {
    await s.createRun(newRun("r1"));
    equal(await s.lease("r1"), undefined);
    const first = await s.acquireLease("r1", "dr1:100", 60_000);
    deepEqual([first.run, first.holder, first.token], ["r1", "dr1:100", 1]);
    const seen = await s.lease("r1");
    deepEqual([seen?.holder, seen?.token, seen?.expiresAt], ["dr1:100", 1, first.expiresAt]);
    ok(seen!.now <= first.expiresAt && first.expiresAt <= seen!.now + 60_000, "by the db clock");
    const again = await s.acquireLease("r1", "dr1:100", 60_000);
    equal(again.token, 2);
    await s.releaseLease("r1", again.token);
    equal(await s.lease("r1"), undefined);
    equal((await s.acquireLease("r1", "dr2:7", 60_000)).token, 3);
  });

  test("acquireLease() refuses and names the holder, when another engine holds it", async (s) => {
    await s.createRun(newRun("r1"));
    await s.acquireLease("r1", "dr1:100", 60_000);
    await rejects(s.acquireLease("r1", "dr2:7", 60_000), (e: Error) => {
      ok(e instanceof StoreError && !(e instanceof LeaseLost), e.name);
      ok(/dr1:100 holds it/.test(e.message), e.message);
      return true;
    });
    await rejects(s.acquireLease("nope", "dr2:7", 1000), /no run "nope"/);
    equal((await s.lease("r1"))?.token, 1);
  });

  test("renewLease() extends the lease by the database's clock, when still held", async (s) => {
    await s.createRun(newRun("r1"));
    const lease = await s.acquireLease("r1", "dr1:100", 1);
    await expire(s, "r1");
    const renewed = await s.renewLease("r1", lease.token, 60_000);
    deepEqual([renewed.token, renewed.holder], [lease.token, "dr1:100"]);
    ok(renewed.expiresAt > lease.expiresAt);
    deepEqual(await s.expiredLeases(), []);
    equal(await s.takeLease("r1", "standby", 1000), undefined, "not expired any more");
  });

  test("expiredLeases() lists only running runs whose lease expired", async (s) => {
    for (const id of ["held", "expired", "ended", "none", "released"]) {
      await s.createRun(newRun(id));
    }
    await s.acquireLease("held", "e1", 60_000);
    await s.acquireLease("expired", "e2", 1);
    await s.acquireLease("ended", "e3", 1);
    await s.updateRun("ended", { state: "done" });
    const r = await s.acquireLease("released", "e4", 1);
    await s.releaseLease("released", r.token);
    await expire(s, "expired");
    const listed = await s.expiredLeases();
    deepEqual(listed.map((l) => [l.run, l.holder, l.token]), [["expired", "e2", 1]]);
    ok(listed[0]!.expiresAt < listed[0]!.now);
    equal(await s.takeLease("held", "standby", 1000), undefined);
    equal(await s.takeLease("ended", "standby", 1000), undefined);
    equal(await s.takeLease("none", "standby", 1000), undefined);
    equal(await s.takeLease("released", "standby", 1000), undefined);
    equal(await s.takeLease("nope", "standby", 1000), undefined);
  });

  test(
    "takeLease() gives an expired lease to exactly one store, when several race",
    async (s, other) => {
      await s.createRun(newRun("r1"));
      const old = await s.acquireLease("r1", "engine", 1);
      await expire(s, "r1");
      const standbys = [s, await other(), await other(), await other()];
      const got = await Promise.all(
        standbys.map((st, i) => st.takeLease("r1", `standby-${i}`, 60_000)),
      );
      const winners = got.filter((l) => l !== undefined);
      equal(winners.length, 1, JSON.stringify(got));
      equal(winners[0]!.token, old.token + 1);
      equal((await s.lease("r1"))?.holder, winners[0]!.holder);
    },
    true,
  );

  test(
    "an engine that lost its lease changes nothing, when a standby took over",
    async (s, other) => {
      await s.createRun(newRun("r1"));
      const lease = await s.acquireLease("r1", "engine", 1);
      await s.recordSteps("r1", [{ step: "fetch-db", state: "running", at: 0 }]);
      await s.addProcess("r1", { step: "fetch-db", pid: 10, pgid: 10 });
      await expire(s, "r1");
      const standby = await other();
      const taken = await standby.takeLease("r1", "standby", 60_000);
      equal(taken?.token, lease.token + 1);
      const cancel = await s.addCommand("r1", "cancel"); // from outside: never fenced
      const lost = (e: Error) =>
        e instanceof LeaseLost && e.token === lease.token &&
        /taken over by standby/.test(e.message);
      await rejects(s.recordSteps("r1", [{ step: "fetch-db", state: "done", at: 9 }]), lost);
      await rejects(
        s.recordSteps("r1", [], { add: [{ step: "x", pid: 1, pgid: 1 }], remove: [] }),
        lost,
      );
      await rejects(s.updateRun("r1", { state: "failed", outcome: "failed" }), lost);
      await rejects(s.saveProgress("r1", [sample]), lost);
      await rejects(s.addProcess("r1", { step: "start", pid: 11, pgid: 11 }), lost);
      await rejects(s.removeProcess("r1", "fetch-db"), lost);
      await rejects(s.takeCommands("r1"), lost);
      await rejects(s.renewLease("r1", lease.token, 60_000), lost);
      const run = await standby.getRun("r1");
      deepEqual([run?.state, run?.outcome], ["running", null]);
      deepEqual((await standby.stepEvents("r1")).map((e) => [e.seq, e.state]), [[1, "running"]]);
      deepEqual(await standby.progress("r1"), []);
      deepEqual(await standby.processes("r1"), [{ step: "fetch-db", pid: 10, pgid: 10 }]);
      // The standby goes on where the engine left off.
      deepEqual((await standby.takeCommands("r1")).map((c) => c.id), [cancel]);
      await standby.recordSteps("r1", [{ step: "fetch-db", state: "done", at: 9 }]);
      await standby.saveProgress("r1", [sample]);
      await standby.updateRun("r1", { state: "done" });
      deepEqual((await s.stepEvents("r1")).map((e) => e.seq), [1, 2]);
      equal((await s.getRun("r1"))?.state, "done");
    },
    true,
  );

  test(
    "no write of the old engine lands after the takeover, when it keeps writing",
    async (s, other) => {
      await s.createRun(newRun("r1"));
      await s.acquireLease("r1", "engine", 1);
      let writes = 0, ended: unknown;
      const writer = (async () => {
        try {
          for (; writes < 20_000; writes++) { // until fenced off (bounded)
            await s.recordSteps("r1", [{ step: `a${writes}`, state: "running", at: writes }]);
            await new Promise((r) => setTimeout(r, 1));
          }
        } catch (e) {
          ended = e;
        }
      })();
      await expire(s, "r1");
      const standby = await other();
      ok(await standby.takeLease("r1", "standby", 60_000), "the standby took the run");
      await standby.recordSteps("r1", [{ step: "b", state: "running", at: 0 }]);
      await writer;
      ok(ended instanceof LeaseLost, `the engine stopped on LeaseLost, not ${ended}`);
      const events = await standby.stepEvents("r1");
      const b = events.find((e) => e.step === "b")!;
      deepEqual(events.filter((e) => e.seq > b.seq), [], "nothing after the standby's first write");
      deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
      ok(writes >= 1 && events.length === writes + 1, `${writes} writes, ${events.length} events`);
    },
    true,
  );

  test(
    "a store without the lease writes as before, when another engine holds it",
    async (s, other) => {
      await s.createRun(newRun("r1"));
      await s.acquireLease("r1", "engine", 60_000);
      const cli = await other(); // `thaw done`, `thaw cancel`: no lease of their own
      await cli.updateRun("r1", { heartbeatAt: 5 });
      await cli.recordSteps("r1", [{ step: "start-vod", state: "done", at: 3, detail: "by hand" }]);
      await s.recordSteps("r1", [{ step: "fetch-db", state: "running", at: 4 }]);
      deepEqual((await s.stepEvents("r1")).map((e) => [e.seq, e.step]), [
        [1, "start-vod"],
        [2, "fetch-db"],
      ]);
      equal((await s.getRun("r1"))?.heartbeatAt, 5);
    },
    true,
  );
}

const STORE_MOD = new URL("../engine/store/mod.ts", import.meta.url).href;
const ROOT = new URL("..", import.meta.url);

/**
 * Has `n` separate processes, each with its own store on `location`, take the expired lease of
 * `run` at the same wall-clock moment; returns what each got (a lease, or null).
 */
export async function raceInProcesses(
  location: string,
  run: string,
  n: number,
): Promise<({ token: number; holder: string } | null)[]> {
  const code = `
    import { openStore } from ${JSON.stringify(STORE_MOD)};
    const [location, run, at, me] = Deno.args;
    const store = await openStore(location);
    await store.getRun(run); // connected
    while (Date.now() < Number(at)) await new Promise((r) => setTimeout(r, 1));
    const got = await store.takeLease(run, me, 60000);
    await store.close();
    console.log(JSON.stringify(got ?? null));
  `;
  const at = Date.now() + 2500;
  const children = Array.from({ length: n }, (_, i) =>
    new Deno.Command(Deno.execPath(), {
      args: ["eval", code, location, run, String(at), `standby-${i}`],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output());
  const d = new TextDecoder();
  return (await Promise.all(children)).map((o) => {
    if (!o.success) throw new Error(`a standby process failed: ${d.decode(o.stderr)}`);
    return JSON.parse(d.decode(o.stdout));
  });
}
