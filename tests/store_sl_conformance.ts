/**
 * The service-level samples every store dialect keeps (part of the conformance suite, registered
 * by `storeConformance()`): samples stored as taken, read back in `seq` order after a given
 * `seq`, a row stored twice kept once, failed samples with their reason, and writes fenced by
 * the lease like the engine's other writes.
 *
 * @module
 */
import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import { LeaseLost, type SlSampleRow, StoreError } from "../engine/store/mod.ts";
import type { ConformanceOptions, OpenedStore } from "./store_conformance.ts";
import { newRun } from "./store_conformance.ts";

const row = (seq: number, over: Partial<SlSampleRow> = {}): SlSampleRow => ({
  seq,
  probe: "catalog-search",
  t_s: 10 + seq * 0.25,
  value: 12.5 + seq,
  ok: true,
  error: null,
  ...over,
});

/** Registers the service-level sample tests. */
export function slConformance(
  name: string,
  open: () => Promise<OpenedStore>,
  options: ConformanceOptions,
): void {
  const test = (title: string, fn: (o: OpenedStore) => Promise<void>) =>
    Deno.test({
      name: `${name}: ${title}`,
      ignore: options.ignore ?? false,
      async fn() {
        const opened = await open();
        try {
          await fn(opened);
        } finally {
          await opened.cleanup();
        }
      },
    });

  test("addSlSamples() keeps samples as taken, read back in seq order", async ({ store: s }) => {
    await s.createRun(newRun("r1"));
    await s.createRun(newRun("r2"));
    const failed = row(2, { value: null, ok: false, error: "HTTP 503" });
    await s.addSlSamples("r1", [row(3), failed]);
    await s.addSlSamples("r1", [row(1, { probe: "stream-rate", value: 1.25e9, t_s: 0.5 })]);
    await s.addSlSamples("r2", [row(1)]);
    deepEqual(await s.slSamples("r1"), [
      row(1, { probe: "stream-rate", value: 1.25e9, t_s: 0.5 }),
      failed,
      row(3),
    ]);
    deepEqual((await s.slSamples("r1", 2)).map((r) => r.seq), [3]);
    deepEqual(await s.slSamples("r1", 3), []);
    deepEqual(await s.slSamples("r2"), [row(1)]);
    deepEqual(await s.slSamples("nobody"), []);
  });

  test("addSlSamples() keeps the first row, when a seq is stored twice", async ({ store: s }) => {
    await s.createRun(newRun("r1"));
    await s.addSlSamples("r1", [row(1)]);
    await s.addSlSamples("r1", [row(1, { value: 99 }), row(2)]);
    deepEqual((await s.slSamples("r1")).map((r) => r.value), [13.5, 14.5]);
    await s.addSlSamples("r1", []);
    equal((await s.slSamples("r1")).length, 2);
  });

  test("addSlSamples() stores thousands in one call, when they exceed a statement", async ({ store: s }) => {
    await s.createRun(newRun("r1"));
    const rows = Array.from({ length: 3000 }, (_, i) => row(i + 1));
    await s.addSlSamples("r1", rows);
    const back = await s.slSamples("r1");
    equal(back.length, 3000);
    deepEqual(back[2999], rows[2999]);
  });

  test("addSlSamples() throws a StoreError naming the run, when it is unknown", async ({ store: s }) => {
    await rejects(s.addSlSamples("ghost", [row(1)]), (e) => {
      ok(e instanceof StoreError);
      ok(/ghost|service-level/.test(e.message), e.message);
      return true;
    });
  });

  test("addSlSamples() changes nothing, when another engine took the lease", async (o) => {
    if (!o.reopen) return; // needs a second connection
    const s = o.store;
    await s.createRun(newRun("r1"));
    const mine = await s.acquireLease("r1", "engine-a", 50);
    await s.addSlSamples("r1", [row(1)]);
    const other = await o.reopen();
    try {
      let taken;
      for (let i = 0; i < 300 && !taken; i++) {
        taken = await other.takeLease("r1", "engine-b", 60_000);
        if (!taken) await new Promise((r) => setTimeout(r, 10));
      }
      ok(taken, "the lease never expired");
      await rejects(s.addSlSamples("r1", [row(2)]), LeaseLost);
      deepEqual((await other.slSamples("r1")).map((r) => r.seq), [1]);
      equal(mine.token + 1, taken.token);
    } finally {
      await other.close();
    }
  });
}
