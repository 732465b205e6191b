/**
 * The recovery graph's shape in index form: what `buildGraph` (in `graph.ts`) produces and the
 * plan, the bounds and the scheduler read. Its own module so that `bounds.ts` and `graph.ts` need
 * not import each other; import these from `graph.ts`.
 *
 * @module
 */

/** Step kinds as the scheduler sees them. */
export const FETCH = 0;
/** A step that takes a run slot: a run step, or a drill-skipped step standing in for itself. */
export const RUN = 1;

/**
 * Seconds a lazy fetch (revision 5) takes to be attached, as planning and simulation model it:
 * the live prototype opened its file within a second (daemons up, the image's header read), so
 * the steps that need it start this long after it starts. The lower bounds count 0 instead.
 */
export const LAZY_ATTACH_S = 1;

/** The recovery graph, by step index. */
export interface Graph {
  readonly n: number;
  readonly ids: readonly string[];
  /** {@link FETCH} (crosses the link) or {@link RUN} (takes a run slot). */
  readonly kind: Uint8Array;
  /** 1 for steps skipped in a drill: they take their estimate and move no data. */
  readonly skipped: Uint8Array;
  /** `needs` as CSR: the needs of `i` are `needList[needStart[i] .. needStart[i+1]]`. */
  readonly needStart: Int32Array;
  readonly needList: Int32Array;
  /** Dependents as CSR, the reverse of `needs`. */
  readonly depStart: Int32Array;
  readonly depList: Int32Array;
  /** A topological order (needs before dependents). */
  readonly order: Int32Array;
  /** Run steps: the estimate, seconds (NaN when unknown). Fetches: alone on the link. */
  readonly duration: Float64Array;
  /** Fetches: bytes (NaN when unknown). */
  readonly size: Float64Array;
  /** Fetches: how fast the source delivers on its own (Infinity: as fast as the link). */
  readonly rate: Float64Array;
  /**
   * 1 for fetches marked `local: true`: they cross no link, so they move at their own `rate`
   * (unlimited without one), stay out of the link's queue and out of its lower bounds.
   */
  readonly local: Uint8Array;
  /**
   * 1 for lazy fetches (revision 5): the steps that need one start once it is attached; it is
   * done (home) when every byte is local. Optional: a graph made by hand has none.
   */
  readonly lazy?: Uint8Array;
  /** Capacity of the shared link in bytes per second (Infinity: not limited). */
  readonly bandwidth: number;
  /**
   * Fetches landing on a host with a `bandwidth` of its own (revision 3): the index of that host
   * in {@link hostBandwidth}, else -1 (this machine, an uncapped host, a `local` fetch).
   * Optional: a graph made by hand has none.
   */
  readonly host?: Int32Array;
  /** The own bandwidth of each capped host, bytes per second: its fetches share it. */
  readonly hostBandwidth?: Float64Array;
  /** 1 when the step fails with `on-failure: isolate`. */
  readonly isolate: Uint8Array;
  /**
   * 1 for steps with an `approval` gate: they wait for a person once reached (a drill-skipped
   * step never waits). Optional: a graph made by hand has none.
   */
  readonly gated?: Uint8Array;
  /** Index into `milestones`, or -1. */
  readonly milestone: Int32Array;
  readonly milestones: readonly string[];
}
