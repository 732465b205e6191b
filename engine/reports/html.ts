/**
 * A report as one self-contained HTML file (`--report FILE.html`): the run's page with its
 * timeline, style inline, no script, nothing to load from anywhere.
 *
 * @module
 */
import type { Report } from "../schedule/report.ts";
import { reportsPage } from "../pages/pages.ts";

/**
 * The HTML page of `reports` (one section a runbook).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunbook } from "../runbook/load.ts";
 * import { simulate } from "../simulate/simulate.ts";
 * import { htmlReport } from "./html.ts";
 * const rb = parseRunbook("runbook: 1\nname: tiny\nsteps:\n  - { id: a, run: 'true', estimate: 1s }\n", "t.yaml");
 * const html = htmlReport([simulate(rb)]);
 * assert.match(html, /<svg class="timeline"/);
 * assert(!/<script/.test(html));
 * ```
 */
export function htmlReport(reports: readonly Report[]): string {
  return reportsPage(reports);
}
