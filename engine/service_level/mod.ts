/**
 * The service level (contract revision 4), self-contained: the `service_level` schema and model
 * (`schema.ts`), the pure measures (`measures.ts`), one sample of a probe (`probes.ts`), the live
 * sampler (`sampler.ts`), the report part (`report.ts`), the `/metrics` lines (`metrics.ts`) and
 * the stored rows and `sl` events (`events.ts`), the last measured level (`last.ts`) and the
 * terminal lines (`text.ts`).
 *
 * @module
 */
export * from "./schema.ts";
export * from "./measures.ts";
export * from "./probes.ts";
export * from "./sampler.ts";
export * from "./report.ts";
export * from "./metrics.ts";
export * from "./events.ts";
export * from "./last.ts";
export * from "./text.ts";
