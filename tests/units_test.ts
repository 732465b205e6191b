import { equal, throws } from "node:assert/strict";
import { formatDuration, parseBandwidth, parseDuration, parseSize } from "../mod.ts";

Deno.test("parseDuration() reads every unit of the spec, when written as specified", () => {
  const cases: [string, number][] = [
    ["250ms", 0.25],
    ["30s", 30],
    ["5m", 300],
    ["1h30m", 5400],
    ["2d", 172800],
    ["1d2h3m4s5ms", 93784.005],
    ["1.5h", 5400],
  ];
  for (const [text, seconds] of cases) equal(parseDuration(text), seconds, text);
});

Deno.test("parseDuration() explains the problem, when the text is not a duration", () => {
  throws(() => parseDuration("30"), /a unit is required: "30s"/);
  throws(() => parseDuration("5min"), /unknown unit "min"/);
  throws(() => parseDuration("30s5m"), /largest to smallest/);
  throws(() => parseDuration("1h1h"), /each once/);
  throws(() => parseDuration(""), /invalid duration/);
});

Deno.test("parseSize() uses powers of 1000 and 1024, when units say so", () => {
  const cases: [string, number][] = [
    ["512B", 512],
    ["1KB", 1000],
    ["40MB", 40e6],
    ["2GB", 2e9],
    ["1TB", 1e12],
    ["1KiB", 1024],
    ["40MiB", 41943040],
    ["2GiB", 2147483648],
    ["1TiB", 1099511627776],
    ["1.5 GB", 1.5e9],
  ];
  for (const [text, bytes] of cases) equal(parseSize(text), bytes, text);
  throws(() => parseSize("40mib"), /did you mean "40MiB"/);
  throws(() => parseSize("1024"), /a unit is required/);
  throws(() => parseSize("10 bytes"), /invalid size/);
});

Deno.test("parseBandwidth() reads bytes and bits per second, when written as specified", () => {
  const cases: [string, number][] = [
    ["12.5MB/s", 12.5e6],
    ["100Mbit/s", 12.5e6],
    ["1Gbps", 125e6],
    ["800kbps", 100e3],
    ["1GiB/s", 1073741824],
    ["8bit/s", 1],
    ["2Gbit/s", 250e6],
  ];
  for (const [text, rate] of cases) equal(parseBandwidth(text), rate, text);
  throws(() => parseBandwidth("100MB"), /a size per second \("100MB\/s"\?\)/);
  throws(() => parseBandwidth("100mbit/s"), /did you mean "100Mbit\/s"/);
  throws(() => parseBandwidth("0MB/s"), /more than zero/);
  throws(() => parseBandwidth("fast"), /invalid bandwidth/);
});

Deno.test("formatDuration() prints short human times, when given seconds", () => {
  equal(formatDuration(0.25), "0.25s");
  equal(formatDuration(12), "12s");
  equal(formatDuration(125), "2m05s");
  equal(formatDuration(5400), "1h30m");
  equal(formatDuration(Infinity), "-");
});

Deno.test("parseDuration(), parseSize() and parseBandwidth() refuse a value, when it is too large to plan", () => {
  const digits = "9".repeat(400);
  throws(() => parseDuration(`${digits}s`), /too large, at most 10 years \(3650d\)/);
  throws(() => parseDuration("3650d1ms"), /too large/);
  equal(parseDuration("3650d"), 3650 * 86400);
  throws(() => parseSize(`${digits}TiB`), /"9{24}\.\.\." \(403 characters\): too large/);
  throws(() => parseSize("1000001TB"), /at most 1 EB/);
  equal(parseSize("1000000TB"), 1e18);
  throws(() => parseBandwidth(`${digits}Gbit/s`), /too large, at most 1 EB\/s/);
  throws(() => parseBandwidth("1000001TB/s"), /too large/);
  equal(parseBandwidth("8000000Tbit/s"), 1e18);
});
