/**
 * The service level in the report files and the terminal: a live run's own (a missed probe a
 * JUnit failure), and a simulated drill's last measured one, labelled so in Markdown, JUnit, HTML
 * and the terminal, never a failure of the simulated run.
 *
 * @module
 */
import assert from "node:assert/strict";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { parseRunbook } from "../engine/runbook/load.ts";
import { simulate } from "../engine/simulate/simulate.ts";
import { junitReport } from "../engine/reports/junit.ts";
import { markdownReport } from "../engine/reports/markdown.ts";
import { htmlReport } from "../engine/reports/html.ts";
import { renderReport } from "../engine/cli/render.ts";
import {
  lastMeasured,
  type ServiceLevelReport,
  withServiceLevel,
} from "../engine/service_level/report.ts";
import { withLastMeasured } from "../engine/service_level/last.ts";

const RUNBOOK = `runbook: 1
name: shop
steps:
  - { id: start-shop, run: ./shop, estimate: 1s, milestone: service }
`;

const SL: ServiceLevelReport = {
  "catalog-page": {
    kind: "http",
    from_s: 1,
    recovery: { samples: 20, success: 1, p50_ms: 50, p95_ms: 412, max_ms: 500 },
    normal: { samples: 20, success: 1, p50_ms: 15, p95_ms: 18, max_ms: 20 },
    degradation: 21.89,
    below_objective_s: 3.5,
    outcome: "missed",
    missed: ["p95 412ms > 300ms"],
    objective: { p95_ms: 300 },
    samples: [{ t_s: 1, value: 50, ok: true }],
  },
};

function junitCases(xml: string): { name: string; failure?: unknown }[] {
  assert.equal(XMLValidator.validate(xml), true);
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "" }).parse(xml);
  const suites = [doc.testsuites.testsuite].flat();
  return suites.flatMap((s: { testcase: unknown }) => [s.testcase].flat()) as {
    name: string;
    failure?: unknown;
  }[];
}

Deno.test("report files show a live run's missed service level as missed, a JUnit failure", () => {
  const report = withServiceLevel(simulate(parseRunbook(RUNBOOK, "shop.yaml")), SL);
  assert.equal(report.outcome, "missed");
  const sl = junitCases(junitReport([report])).find((c) => c.name === "catalog-page");
  assert.ok(sl?.failure, "no failure for a missed probe");
  assert.match(markdownReport([report]), /\| catalog-page \|.*\| missed \|/);
  const text = renderReport(report);
  assert.match(text, /service level\n {2}catalog-page: recovery p95 412ms, 20 samples, 100% ok;/);
  assert.match(text, /degradation 2189%; below objective 3\.5s; missed \(p95 412ms > 300ms\)/);
});

Deno.test("report files label a simulated drill's service level last measured, never a failure", () => {
  const simulated = simulate(parseRunbook(RUNBOOK, "shop.yaml"));
  const report = withLastMeasured(simulated, lastMeasured(SL, "01LIVE", null));
  assert.equal(report.outcome, "met");
  const cases = junitCases(junitReport([report]));
  const sl = cases.find((c) => c.name.startsWith("catalog-page"));
  assert.equal(sl?.name, "catalog-page (last measured: missed (drill 01LIVE))");
  assert.equal(sl?.failure, undefined);
  assert.match(markdownReport([report]), /last measured: missed \(drill 01LIVE\)/);
  assert.match(htmlReport([report]), /last measured: missed \(drill 01LIVE\)/);
  assert.match(renderReport(report), /; last measured: missed \(drill 01LIVE\)\noutcome: met/);
});
