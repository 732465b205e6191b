/**
 * A drill's report as JUnit XML (`--report FILE.xml`), the format CI systems already show: one
 * `testsuite` a runbook; each objective, milestone, step (and service-level probe, when the report
 * has them) a `testcase`; a missed objective, a milestone not reached or a failed step a `failure`
 * with its reason. Steps that never ran are `skipped`.
 *
 * @module
 */
import type { Report, StepReport } from "../schedule/report.ts";
import { formatDuration } from "../runbook/units.ts";
import { slOutcome, slSummaries } from "../pages/service_level.ts";

/** One test case. */
interface Case {
  readonly classname: string;
  readonly name: string;
  readonly time: number;
  readonly failure?: { readonly type: string; readonly message: string };
  readonly skipped?: string;
}

/**
 * Text safe in XML content and attribute values: the five entities escaped, and the characters
 * XML 1.0 forbids (control characters, lone surrogates) left out.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { xmlText } from "./junit.ts";
 * assert.equal(xmlText(`<a b="c">&'\u0001`), "&lt;a b=&quot;c&quot;&gt;&amp;&apos;");
 * ```
 */
export function xmlText(text: unknown): string {
  return String(text ?? "")
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

const t = (s: number | null | undefined) =>
  s === null || s === undefined || !Number.isFinite(s) ? "-" : formatDuration(s);

/**
 * The JUnit XML of `reports`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunbook } from "../runbook/load.ts";
 * import { simulate } from "../simulate/simulate.ts";
 * import { junitReport } from "./junit.ts";
 * const rb = parseRunbook("runbook: 1\nname: tiny\nsteps:\n  - { id: a, run: 'true', estimate: 1s }\n", "t.yaml");
 * assert.match(junitReport([simulate(rb)]), /<testsuites name="thaw" tests="1" failures="0"/);
 * ```
 */
export function junitReport(reports: readonly Report[]): string {
  const suites = reports.map((r) => ({ r, cases: casesOf(r) }));
  const count = (f: (c: Case) => boolean) =>
    suites.reduce((n, s) => n + s.cases.filter(f).length, 0);
  const tests = count(() => true), failures = count((c) => !!c.failure);
  const skipped = count((c) => c.skipped !== undefined);
  const body = suites.map(({ r, cases }) => suite(r, cases)).join("");
  return `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<testsuites name="thaw" tests="${tests}" failures="${failures}" errors="0" ` +
    `skipped="${skipped}">\n${body}</testsuites>\n`;
}

function suite(r: Report, cases: Case[]): string {
  const failures = cases.filter((c) => c.failure).length;
  const skipped = cases.filter((c) => c.skipped !== undefined).length;
  const props: [string, unknown][] = [
    ["run", r.run],
    ["mode", r.mode],
    ["strategy", r.strategy],
    ["outcome", r.outcome],
    ["ttr_s", r.ttr_s ?? ""],
    ["btn_s", r.btn_s ?? ""],
  ];
  return `  <testsuite name="${xmlText(r.runbook)}" tests="${cases.length}" ` +
    `failures="${failures}" errors="0" skipped="${skipped}" time="${
      secs(r.btn_s ?? lastEnd(r))
    }">\n` +
    `    <properties>\n${
      props.map(([k, v]) => `      <property name="${k}" value="${xmlText(v)}"/>\n`).join("")
    }    </properties>\n${cases.map(testcase).join("")}  </testsuite>\n`;
}

function testcase(c: Case): string {
  const head = `    <testcase classname="${xmlText(c.classname)}" name="${xmlText(c.name)}" ` +
    `time="${secs(c.time)}"`;
  if (c.failure) {
    return `${head}>\n      <failure type="${xmlText(c.failure.type)}" message="${
      xmlText(c.failure.message)
    }">${xmlText(c.failure.message)}</failure>\n    </testcase>\n`;
  }
  if (c.skipped !== undefined) {
    return `${head}>\n      <skipped message="${xmlText(c.skipped)}"/>\n    </testcase>\n`;
  }
  return `${head}/>\n`;
}

function secs(s: number | null | undefined): string {
  return typeof s === "number" && Number.isFinite(s) && s >= 0 ? s.toFixed(3) : "0";
}

function lastEnd(r: Report): number {
  return Math.max(0, ...r.steps.map((s) => s.end_s ?? 0));
}

/** The objectives, the milestones, the steps, and the service level's probes as test cases. */
function casesOf(r: Report): Case[] {
  const base = r.runbook;
  const cases: Case[] = [];
  const o = r.objectives;
  const objective = (name: string, at: number | null, limit: number, what: string) => {
    const failure = at === null
      ? { type: "missed", message: `${what} not reached (run ${r.outcome}); objective ${t(limit)}` }
      : at > limit + 1e-9
      ? {
        type: "missed",
        message: `${what} ${t(at)} is past the objective ${t(limit)} by ${t(at - limit)}`,
      }
      : undefined;
    cases.push({
      classname: `${base}.objectives`,
      name,
      time: at ?? 0,
      ...(failure ? { failure } : {}),
    });
  };
  if (o.rto_s !== undefined) objective("rto", r.ttr_s, o.rto_s, "TTR");
  if (o.btn_s !== undefined) objective("btn", r.btn_s, o.btn_s, "BTN");
  for (const [name, limit] of Object.entries(o.milestones)) {
    objective(`milestone:${name}`, r.milestones[name] ?? null, limit, `milestone ${name}`);
  }
  for (const [name, at] of Object.entries(r.milestones)) {
    cases.push({
      classname: `${base}.milestones`,
      name,
      time: at ?? 0,
      ...(at === null
        ? {
          failure: {
            type: "not-reached",
            message: `milestone ${name} not reached (run ${r.outcome})`,
          },
        }
        : {}),
    });
  }
  for (const s of r.steps) cases.push(stepCase(base, s));
  for (const [name, p] of slSummaries(r)) {
    // A simulated drill's service level is the last live drill's: shown, never its failure.
    const failure = p.outcome === "missed" && !p.last_measured
      ? { type: "missed", message: `service level ${name} missed its objective` }
      : undefined;
    cases.push({
      classname: `${base}.service_level`,
      name: p.last_measured ? `${name} (${slOutcome(p)})` : name,
      time: p.below_objective_s ?? 0,
      ...(failure ? { failure } : {}),
    });
  }
  return cases;
}

function stepCase(base: string, s: StepReport): Case {
  const time = s.start_s !== null && s.end_s !== null ? s.end_s - s.start_s : 0;
  const c = { classname: `${base}.steps`, name: s.id, time };
  if (s.state === "failed") {
    return {
      ...c,
      failure: { type: "failed", message: s.detail ? `failed: ${s.detail}` : "failed" },
    };
  }
  if (s.state === "done") return c;
  if (s.state === "skipped") return { ...c, skipped: s.detail ?? "skipped" };
  return { ...c, skipped: `${s.state}${s.detail ? `: ${s.detail}` : ""} (never finished)` };
}
