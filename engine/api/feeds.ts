/**
 * What the event streams of one run read from the store, read once for all of them: with 500
 * clients on a run, a poll is one `getRun`, one `stepEvents` (the new ones only) and one
 * `progress`, not 500 of each. A run's feed lives while a stream of it is open.
 *
 * @module
 */
import type {
  FetchProgress,
  RunRecord,
  RunState,
  SlSampleRow,
  StepEvent,
  Store,
} from "../store/types.ts";
import { stateOf } from "../live/runs.ts";

/** One run's rows, as fresh as `maxAgeMs`. */
export class RunFeed {
  /** The run record (read first: events read after it ended are all of them). */
  rec: RunRecord;
  /** The run's state at the last refresh (with its lease: an engine gone shows `interrupted`). */
  state: RunState;
  /** Every step change so far, in order. */
  readonly events: StepEvent[] = [];
  /** Fetch progress, at the last refresh. */
  progress: FetchProgress[] = [];
  /** Every service-level sample so far, in `seq` order (`sl` events). */
  readonly sl: SlSampleRow[] = [];
  #at = -Infinity;
  #pending: Promise<void> | undefined;
  /** Streams reading it. */
  refs = 0;
  readonly #store: Store;

  /** A feed of `rec`'s run. */
  constructor(store: Store, rec: RunRecord) {
    this.#store = store;
    this.rec = rec;
    this.state = rec.state;
  }

  /** Reads what changed, unless the last read is younger than `maxAgeMs` (or one is under way). */
  refresh(maxAgeMs: number): Promise<void> {
    if (performance.now() - this.#at < maxAgeMs) return Promise.resolve();
    this.#pending ??= (async () => {
      const id = this.rec.id;
      this.rec = (await this.#store.getRun(id)) ?? this.rec;
      this.state = await stateOf(this.#store, this.rec);
      const last = this.events.at(-1)?.seq ?? 0;
      for (const e of await this.#store.stepEvents(id, last)) this.events.push(e);
      this.progress = await this.#store.progress(id);
      for (const r of await this.#store.slSamples(id, this.sl.at(-1)?.seq ?? 0)) this.sl.push(r);
      this.#at = performance.now();
    })().finally(() => (this.#pending = undefined));
    return this.#pending;
  }
}

/** The feeds of a server's open streams, by run. */
export class Feeds {
  readonly #feeds = new Map<string, RunFeed>();

  /** The feed of `rec`'s run, shared with the other streams of it; give it back with release. */
  acquire(store: Store, rec: RunRecord): RunFeed {
    let feed = this.#feeds.get(rec.id);
    if (!feed) this.#feeds.set(rec.id, feed = new RunFeed(store, rec));
    feed.refs++;
    return feed;
  }

  /** One stream of the feed's run ended; the last one drops it. */
  release(feed: RunFeed): void {
    if (--feed.refs <= 0 && this.#feeds.get(feed.rec.id) === feed) this.#feeds.delete(feed.rec.id);
  }

  /** Runs with a feed now. */
  get size(): number {
    return this.#feeds.size;
  }
}
