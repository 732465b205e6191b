/**
 * The report files `--report FILE.md` and `--report FILE.xml` write, read back with real parsers
 * of each format (marked for Markdown, fast-xml-parser for XML): tables that parse as tables,
 * counts that add up, failures with their reason, and hostile text that stays text.
 *
 * @module
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { marked, type Tokens } from "marked";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { parse as parseHtml } from "parse5";
import { parseRunbook } from "../engine/runbook/load.ts";
import { simulate } from "../engine/simulate/simulate.ts";
import type { Report } from "../engine/schedule/report.ts";
import { junitReport } from "../engine/reports/junit.ts";
import { markdownReport } from "../engine/reports/markdown.ts";
import { reportFormat, reportText } from "../engine/reports/format.ts";

const RUNBOOK = `runbook: 1
name: shop
bandwidth: 10MB/s
objectives: { rto: 1s, btn: 1h, milestones: { catalog: 30s } }
steps:
  - { id: fetch-catalog, fetch: { from: ./b/c, to: ./r/c, size: 20MB } }
  - { id: fetch-history, fetch: { from: ./b/h, to: ./r/h, size: 100MB } }
  - { id: start-shop, needs: [fetch-catalog], run: "true", estimate: 2s, milestone: catalog }
  - { id: check, needs: [fetch-history, start-shop], run: "true", estimate: 1s }
`;

/** Text that would be markup in every format, with a control character XML forbids. */
const HOSTILE =
  `x</td><script>alert(1)</script><img src=x onerror=alert(2)> | ]]> & "q" 'a' *b* \u0001`;

/** A simulated report of RUNBOOK (TTR misses its 1 s objective), with one step failed. */
function hostileReport(): Report {
  const r = simulate(parseRunbook(RUNBOOK, "shop.yaml"));
  const steps = r.steps.map((s) =>
    s.id === "check" ? { ...s, state: "failed" as const, detail: HOSTILE } : s
  );
  return { ...r, runbook: `shop ${HOSTILE}`, outcome: "failed", steps };
}

/** The text of an HTML fragment as a browser would show it, and its element names. */
function htmlText(html: string): { text: string; tags: string[] } {
  const tags: string[] = [];
  let text = "";
  // deno-lint-ignore no-explicit-any
  const walk = (n: any) => {
    if (n.nodeName === "#text") text += n.value;
    else if (n.tagName) tags.push(n.tagName);
    for (const c of n.childNodes ?? []) walk(c);
  };
  walk(parseHtml(html));
  return { text, tags };
}

Deno.test("markdownReport() gives tables a Markdown parser reads as tables, when rendered", () => {
  const r = simulate(parseRunbook(RUNBOOK, "shop.yaml"));
  equal(r.outcome, "missed");
  const md = markdownReport([r]);
  const tables = marked.lexer(md).filter((t): t is Tokens.Table => t.type === "table");
  equal(tables.length, 2, md);
  const [measures, steps] = tables;
  deepEqual(measures!.header.map((h) => h.text), [
    "measure",
    "measured",
    "objective",
    "predicted",
    "serial",
    "lower bound",
  ]);
  equal(measures!.rows.length, 3); // TTR, BTN, milestone catalog
  ok(/missed/.test(measures!.rows[0]![2]!.text), measures!.rows[0]![2]!.text);
  deepEqual(steps!.header.map((h) => h.text).slice(0, 3), ["step", "kind", "state"]);
  equal(steps!.rows.length, r.steps.length);
  deepEqual(
    steps!.rows.map((row) => htmlText(marked.parseInline(row[0]!.text) as string).text),
    ["fetch-catalog", "fetch-history", "start-shop (catalog)", "check"],
  );
});

Deno.test("markdownReport() keeps hostile text as text, when a detail holds HTML and pipes", () => {
  const md = markdownReport([hostileReport()]);
  const tables = marked.lexer(md).filter((t): t is Tokens.Table => t.type === "table");
  const steps = tables.at(-1)!;
  equal(steps.rows.length, 4, "a | in a detail must not break the row");
  equal(steps.rows[3]![0]!.text, "check");
  const html = marked.parse(md) as string;
  const { text, tags } = htmlText(html);
  ok(!tags.includes("script") && !tags.includes("img"), `elements: ${tags}`);
  ok(text.includes(HOSTILE.slice(0, 30)), text);
  ok(text.includes("onerror=alert(2)"), "the hostile text is shown, as text");
});

Deno.test("junitReport() is well-formed XML whose counts add up, with failures and their reasons", () => {
  const xml = junitReport([hostileReport()]);
  equal(XMLValidator.validate(xml), true);
  const doc = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: "",
    trimValues: false,
    isArray: (n) => ["testsuite", "testcase", "property"].includes(n),
  }).parse(xml);
  const suites = doc.testsuites.testsuite;
  equal(suites.length, 1);
  const suite = suites[0];
  equal(suite.name, `shop ${HOSTILE.replace("\u0001", "")}`);
  // 3 objectives (rto, btn, milestone:catalog), 1 milestone, 4 steps.
  const cases = suite.testcase;
  equal(cases.length, 8);
  equal(Number(suite.tests), 8);
  equal(Number(doc.testsuites.tests), 8);
  const failed = cases.filter((c: { failure?: unknown }) => c.failure);
  deepEqual(failed.map((c: { name: string }) => c.name).sort(), ["check", "rto"]);
  equal(Number(suite.failures), 2);
  equal(Number(doc.testsuites.failures), 2);
  const check = cases.find((c: { name: string }) => c.name === "check");
  equal(check.classname.endsWith(".steps"), true);
  equal(check.failure.message, `failed: ${HOSTILE.replace("\u0001", "")}`);
  const rto = cases.find((c: { name: string }) => c.name === "rto");
  ok(/TTR .* is past the objective 1s/.test(rto.failure.message), rto.failure.message);
});

Deno.test("junitReport() puts every runbook in its own suite, when a drill ran several", () => {
  const a = simulate(parseRunbook(RUNBOOK, "shop.yaml"));
  const b = simulate(parseRunbook(RUNBOOK.replace("rto: 1s", "rto: 1h"), "shop.yaml"));
  const xml = junitReport([a, b]);
  equal(XMLValidator.validate(xml), true);
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "" }).parse(xml);
  equal(doc.testsuites.testsuite.length, 2);
  equal(Number(doc.testsuites.tests), 16);
  equal(Number(doc.testsuites.failures), 1); // a's rto; b meets everything
});

Deno.test("reportText() picks the format from the extension, JSON for any other", () => {
  const r = simulate(parseRunbook(RUNBOOK, "shop.yaml"));
  deepEqual(JSON.parse(reportText("out.json", [r])), r);
  deepEqual(JSON.parse(reportText("out.txt", [r])), r);
  equal(reportText("a.ndjson", [r, r]).trim().split("\n").length, 2);
  equal(reportFormat("x.MD"), "md");
  ok(reportText("x.xml", [r]).startsWith("<?xml"));
  ok(reportText("x.md", [r]).startsWith("## "));
  ok(reportText("x.html", [r]).startsWith("<!doctype html>"));
});
