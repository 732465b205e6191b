/**
 * The pieces of the runbook schema that step kinds share with it: values written in a unit
 * (durations, sizes, bandwidths, each checked by its parser), step ids, scalars, plain text.
 *
 * A value of the right shape is parsed too, so one out of range (too large) is reported with the
 * rest. Messages tagged `unit:` or `pattern:` are turned into advice by `validate.ts`.
 *
 * @module
 */
import { z } from "zod";
import {
  BANDWIDTH_PATTERN,
  DURATION_PATTERN,
  parseBandwidth,
  parseDuration,
  parseSize,
  SIZE_PATTERN,
} from "./units.ts";

/** Step ids: `[a-z0-9][a-z0-9_-]*`. */
export const STEP_ID_PATTERN = "^[a-z0-9][a-z0-9_-]*$";

const parses = (parse: (text: string) => number) => (text: string) => {
  try {
    parse(text);
    return true;
  } catch {
    return false;
  }
};
const unit = (pattern: string, tag: string, parse: (text: string) => number) =>
  z.string().regex(new RegExp(pattern), { message: tag, abort: true })
    .refine(parses(parse), tag);

/** A duration: `250ms`, `30s`, `5m`, `1h30m`, `2d`. */
export const duration = unit(DURATION_PATTERN, "unit:duration", parseDuration)
  .meta({ description: "A duration: 250ms, 30s, 5m, 1h30m, 2d", examples: ["30s", "1h30m"] });
/** A size: `B`, `KB`/`MB`/`GB`/`TB` (1000), `KiB`/`MiB`/`GiB`/`TiB` (1024). */
export const size = unit(SIZE_PATTERN, "unit:size", parseSize)
  .meta({ description: "A size: B, KB/MB/GB/TB (1000), KiB/MiB/GiB/TiB (1024)" });
/** A bandwidth: `12.5MB/s`, `100Mbit/s`, `1Gbps`. */
export const bandwidth = unit(BANDWIDTH_PATTERN, "unit:bandwidth", parseBandwidth)
  .meta({ description: "A bandwidth: 12.5MB/s, 100Mbit/s, 1Gbps, 800kbps" });
/** A step id. */
export const stepId = z.string().regex(new RegExp(STEP_ID_PATTERN), "pattern:step id");
/** Host names (`hosts:` keys, `on:`): the step id pattern. */
export const HOST_PATTERN = STEP_ID_PATTERN;
/** A host name. */
export const hostName = z.string().regex(new RegExp(HOST_PATTERN), "pattern:host name");
/** A string, number or boolean, taken as its text. */
export const scalar = z.union([z.string(), z.number(), z.boolean()])
  .meta({ description: "A string (numbers and booleans are taken as their text)" });
/** Plain text. */
export const text = z.string();
