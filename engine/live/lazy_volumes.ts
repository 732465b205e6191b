/**
 * The live engine's side of a lazy fetch (contract revision 5): the {@linkcode LazyHooks} the
 * executor gives one, which carry what the fetch reports to the scheduler and the recorder and
 * hand it the scheduler's decisions, deciding nothing themselves:
 * - attached: `Scheduler.attached` (the steps that need it may start; an `attached` decision);
 * - its stream's speed: the `share` the scheduler gave it, which the loop hands the link shaper
 *   (0: paused);
 * - each second, what it fetched and how far the stream is, through a `DemandMeter`:
 *   `Scheduler.setDemandRate` (the stream yields to reads) and `Recorder.demandBytes` (the
 *   report's bytes on demand).
 * Home is the step's end (`Scheduler.complete`, which is `home`), as for any fetch.
 *
 * @module
 */
import { DemandMeter } from "../schedule/lazy_meter.ts";
import type { LazyHooks } from "../../steps/fetch/lazy/hooks.ts";
import type { LiveState } from "./context.ts";
import type { LinkShaper } from "./link.ts";

/**
 * The hooks of lazy fetch `i` of the run of `s`: its share is read from `shaper`; `wake` wakes
 * the loop so that what the scheduler decides is carried out at once.
 */
export function lazyHooks(
  s: LiveState,
  i: number,
  shaper: LinkShaper,
  wake: () => void,
): LazyHooks {
  const meter = new DemandMeter();
  return {
    attached: () => {
      s.scheduler.attached(i);
      wake();
    },
    share: () => shaper.share(i),
    // The link's cap (or the source's rate) holds for the stream and the demand together.
    ceiling: () =>
      s.graph.local[i] ? s.graph.rate[i]! : Math.min(s.graph.bandwidth, s.graph.rate[i]!),
    sample: (fetched, streamed) => {
      const d = meter.sample(s.clock.now() / 1000, fetched, streamed);
      s.recorder.crossed[i] = fetched; // over the link, not through the shaper: for the bounds
      s.recorder.demandBytes(i, d.onDemand);
      const before = s.scheduler.demandRate(i);
      s.scheduler.setDemandRate(i, d.rate);
      if (s.scheduler.demandRate(i) !== before) wake();
    },
  };
}
