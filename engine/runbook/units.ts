/**
 * Durations, sizes and bandwidths as the runbook format writes them.
 *
 * - durations: `250ms`, `30s`, `5m`, `1h30m`, `2d` (units in descending order, each once)
 * - sizes: `B`, `KB`/`MB`/`GB`/`TB` (powers of 1000), `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024)
 * - bandwidth: a size per second (`12.5MB/s`), or bits: `100Mbit/s`, `1Gbps`, `800kbps`
 *
 * Units are case-sensitive (`mb` could be millibits); a near miss gets a suggestion. Every value
 * is finite and at most {@linkcode MAX_DURATION} (10 years), {@linkcode MAX_SIZE} (1 EB) or
 * {@linkcode MAX_BANDWIDTH} (1 EB/s): a 400-digit duration is an error, not an endless plan.
 *
 * @module
 */

const NUM = String.raw`(?:\d+(?:\.\d+)?|\.\d+)`;
const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};
const BIT_UNITS: Record<string, number> = { "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
const DURATION_UNITS: Record<string, number> = { d: 86400, h: 3600, m: 60, s: 1, ms: 0.001 };
const DURATION_ORDER = ["d", "h", "m", "s", "ms"];

/** The longest duration a runbook may write, in seconds: 10 years of 365 days (`3650d`). */
export const MAX_DURATION = 3650 * 86400;
/** The largest size a runbook may write, in bytes: 1 EB. */
export const MAX_SIZE = 1e18;
/** The largest bandwidth a runbook may write, in bytes per second: 1 EB/s. */
export const MAX_BANDWIDTH = 1e18;

/** Pattern of a duration, for the JSON Schema. */
export const DURATION_PATTERN = `^(?:${NUM}(?:d|h|m|s|ms))+$`;
/** Pattern of a size, for the JSON Schema. */
export const SIZE_PATTERN = `^${NUM} ?(?:B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$`;
/** Pattern of a bandwidth, for the JSON Schema. */
export const BANDWIDTH_PATTERN =
  `^${NUM} ?(?:(?:B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)/s|[kMGT]?bit/s|[kMGT]?bps)$`;

const SIZE_RE = new RegExp(`^(${NUM}) ?([A-Za-z]+)$`);
const BANDWIDTH_RE = new RegExp(`^(${NUM}) ?([A-Za-z]+)(/s)?$`);
const DURATION_PART_RE = new RegExp(`(${NUM})([A-Za-z]+)`, "gy");

/** A unit string that does not parse: `message` says why and what was expected. */
export class UnitError extends RangeError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "UnitError";
  }
}

function describe(text: unknown): string {
  if (typeof text !== "string") return String(text);
  // A 400-digit value is shown by its start and its length, not spelled out.
  return text.length > 40
    ? `${JSON.stringify(text.slice(0, 24) + "...")} (${text.length} characters)`
    : JSON.stringify(text);
}

/** `value` if it is finite and at most `max`; a `UnitError` naming the limit otherwise. */
function capped(value: number, max: number, what: string, text: string, limit: string): number {
  if (Number.isFinite(value) && value <= max) return value;
  throw new UnitError(`invalid ${what} ${describe(text)}: too large, at most ${limit}`);
}

function suggestUnit(unit: string, units: string[]): string | undefined {
  return units.find((u) => u.toLowerCase() === unit.toLowerCase());
}

/**
 * Parses a duration into seconds.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./units.ts";
 * import assert from "node:assert/strict";
 * assert.equal(parseDuration("1h30m"), 5400);
 * assert.equal(parseDuration("250ms"), 0.25);
 * ```
 * @throws {UnitError} if `text` is not a duration.
 */
export function parseDuration(text: string): number {
  const hint = "expected a duration such as 250ms, 30s, 5m, 1h30m or 2d";
  if (typeof text !== "string" || text === "") {
    throw new UnitError(`invalid duration ${describe(text)}: ${hint}`);
  }
  DURATION_PART_RE.lastIndex = 0;
  let total = 0;
  let last = -1;
  let match: RegExpExecArray | null;
  let end = 0;
  while ((match = DURATION_PART_RE.exec(text)) !== null) {
    const [, num, unit] = match as unknown as [string, string, string];
    const order = DURATION_ORDER.indexOf(unit);
    if (order < 0) {
      const s = suggestUnit(unit, DURATION_ORDER);
      throw new UnitError(
        `invalid duration ${describe(text)}: unknown unit "${unit}"` +
          (s ? ` (did you mean "${s}"?)` : `; ${hint}`),
      );
    }
    if (order <= last) {
      throw new UnitError(
        `invalid duration ${describe(text)}: units must go from largest to smallest, each once`,
      );
    }
    last = order;
    total += Number(num) * DURATION_UNITS[unit]!;
    end = DURATION_PART_RE.lastIndex;
  }
  if (end !== text.length) {
    const bare = /^\d+(\.\d+)?$/.test(text) ? ` (a unit is required: "${text}s"?)` : `: ${hint}`;
    throw new UnitError(`invalid duration ${describe(text)}${bare}`);
  }
  return capped(total, MAX_DURATION, "duration", text, "10 years (3650d)");
}

/**
 * Parses a size into bytes.
 *
 * @example
 * ```ts
 * import { parseSize } from "./units.ts";
 * import assert from "node:assert/strict";
 * assert.equal(parseSize("40MiB"), 40 * 1024 * 1024);
 * assert.equal(parseSize("2GB"), 2e9);
 * ```
 * @throws {UnitError} if `text` is not a size.
 */
export function parseSize(text: string): number {
  const hint = "expected a size such as 512B, 40MiB, 2GiB or 1.5TB";
  const m = typeof text === "string" ? SIZE_RE.exec(text) : null;
  if (!m) {
    const bare = typeof text === "string" && /^\d+$/.test(text)
      ? ` (a unit is required: "${text}B"?)`
      : `: ${hint}`;
    throw new UnitError(`invalid size ${describe(text)}${bare}`);
  }
  const [, num, unit] = m as unknown as [string, string, string];
  const factor = SIZE_UNITS[unit];
  if (factor === undefined) {
    const s = suggestUnit(unit, Object.keys(SIZE_UNITS));
    throw new UnitError(
      `invalid size ${describe(text)}: unknown unit "${unit}"` +
        (s ? ` (did you mean "${num}${s}"?)` : `; ${hint}`),
    );
  }
  return capped(Math.round(Number(num) * factor), MAX_SIZE, "size", text, "1 EB (1000000TB)");
}

/**
 * Parses a bandwidth into bytes per second.
 *
 * @example
 * ```ts
 * import { parseBandwidth } from "./units.ts";
 * import assert from "node:assert/strict";
 * assert.equal(parseBandwidth("100Mbit/s"), 12.5e6);
 * assert.equal(parseBandwidth("12.5MB/s"), 12.5e6);
 * assert.equal(parseBandwidth("1Gbps"), 125e6);
 * ```
 * @throws {UnitError} if `text` is not a bandwidth.
 */
export function parseBandwidth(text: string): number {
  const hint = "expected a bandwidth such as 12.5MB/s, 100Mbit/s, 1Gbps or 800kbps";
  const m = typeof text === "string" ? BANDWIDTH_RE.exec(text) : null;
  if (!m) throw new UnitError(`invalid bandwidth ${describe(text)}: ${hint}`);
  const [, num, unit, perSecond] = m as unknown as [string, string, string, string | undefined];
  const value = Number(num);
  let bytesPerSecond: number | undefined;
  const bits = /^([kMGT]?)(bit|bps)$/.exec(perSecond ? unit + "ps" : unit);
  if (perSecond && SIZE_UNITS[unit] !== undefined) {
    bytesPerSecond = value * SIZE_UNITS[unit]!;
  } else if (perSecond && /^[kMGT]?bit$/.test(unit)) {
    bytesPerSecond = (value * BIT_UNITS[unit.slice(0, -3)]!) / 8;
  } else if (!perSecond && bits && bits[2] === "bps") {
    bytesPerSecond = (value * BIT_UNITS[bits[1]!]!) / 8;
  }
  if (bytesPerSecond === undefined) {
    if (!perSecond && SIZE_UNITS[unit] !== undefined) {
      throw new UnitError(
        `invalid bandwidth ${describe(text)}: a bandwidth is a size per second ("${text}/s"?)`,
      );
    }
    const known = [
      ...Object.keys(SIZE_UNITS).map((u) => u + "/s"),
      ...["", "k", "M", "G", "T"].flatMap((p) => [p + "bit/s", p + "bps"]),
    ];
    // A capital B is bytes: "10MBps" means 10MB/s, never 10Mbps (8x less).
    const bytes = !perSecond && unit.endsWith("Bps")
      ? suggestUnit(unit.slice(0, -2), Object.keys(SIZE_UNITS))
      : undefined;
    const s = bytes ? bytes + "/s" : suggestUnit(unit + (perSecond ?? ""), known);
    throw new UnitError(
      `invalid bandwidth ${describe(text)}` +
        (s ? `: unknown unit (did you mean "${num}${s}"?)` : `: ${hint}`),
    );
  }
  if (!(bytesPerSecond > 0)) {
    throw new UnitError(`invalid bandwidth ${describe(text)}: must be more than zero`);
  }
  return capped(bytesPerSecond, MAX_BANDWIDTH, "bandwidth", text, "1 EB/s (1000000TB/s)");
}

/**
 * Formats seconds for people: `12s`, `2m05s`, `1h02m`, with milliseconds below ten seconds.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./units.ts";
 * import assert from "node:assert/strict";
 * assert.equal(formatDuration(125), "2m05s");
 * assert.equal(formatDuration(2.5), "2.5s");
 * ```
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "-";
  if (seconds < 10) return `${Number(seconds.toFixed(seconds < 1 ? 3 : 1))}s`;
  const s = Math.round(seconds);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), sec = s % 60;
  const pad = (n: number) => String(n).padStart(2, "0");
  if (d > 0) return `${d}d${pad(h)}h`;
  if (h > 0) return `${h}h${pad(m)}m`;
  if (m > 0) return `${m}m${pad(sec)}s`;
  return `${sec}s`;
}

/**
 * Formats bytes with binary units: `40.0MiB`.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./units.ts";
 * import assert from "node:assert/strict";
 * assert.equal(formatBytes(41943040), "40.0MiB");
 * ```
 */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes, i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v}B` : `${v.toFixed(1)}${units[i]}`;
}
