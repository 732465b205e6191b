/**
 * Which format `--report FILE` writes, by FILE's extension: `.html` the page with its timeline,
 * `.md` a Markdown summary, `.xml` JUnit XML; `.json` and anything else the JSON report (one
 * report indented, several one a line), as before.
 *
 * @module
 */
import { extname } from "node:path";
import type { Report } from "../schedule/report.ts";
import { htmlReport } from "./html.ts";
import { junitReport } from "./junit.ts";
import { markdownReport } from "./markdown.ts";

/** The formats a report file can take. */
export type ReportFormat = "json" | "html" | "md" | "xml";

/**
 * The format a file's extension names.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reportFormat } from "./format.ts";
 * assert.equal(reportFormat("out/drill.HTML"), "html");
 * assert.equal(reportFormat("drill.markdown"), "md");
 * assert.equal(reportFormat("drill.ndjson"), "json");
 * ```
 */
export function reportFormat(file: string): ReportFormat {
  const ext = extname(file).toLowerCase();
  if (ext === ".html" || ext === ".htm") return "html";
  if (ext === ".md" || ext === ".markdown") return "md";
  if (ext === ".xml") return "xml";
  return "json";
}

/** The text of the report file `file` for `reports`. */
export function reportText(file: string, reports: readonly Report[]): string {
  switch (reportFormat(file)) {
    case "html":
      return htmlReport(reports);
    case "md":
      return markdownReport(reports);
    case "xml":
      return junitReport(reports);
    case "json":
      return reports.length === 1
        ? JSON.stringify(reports[0], null, 2) + "\n"
        : reports.map((r) => JSON.stringify(r)).join("\n") + "\n";
  }
}
