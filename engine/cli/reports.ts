/**
 * What the CLI does with reports: the drill loop over runbooks (simulated or live), printing
 * reports and summaries, exit codes, `--report` files, and finding the runbooks under a directory.
 *
 * @module
 */
import { isAbsolute, join, relative, resolve } from "node:path";
import { RunbookErrors, SimulationError, UsageError } from "../runbook/errors.ts";
import { readRunbook } from "../runbook/load.ts";
import type { Runbook } from "../runbook/model.ts";
import { predictionLine, renderReport, renderSummary } from "./render.ts";
import { exitCode, type Report } from "../schedule/report.ts";

/** Where the report commands write. */
export interface ReportContext {
  readonly cwd: string;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/**
 * `thaw drill`, simulated or live: each runbook in turn (with the drill overrides), then a
 * summary table when there are several.
 */
export async function drill(
  files: string[],
  ctx: ReportContext,
  options: { vars: Record<string, string>; json: boolean },
  reportFile: string | undefined,
  rehearse: (rb: Runbook) => Promise<Report>,
): Promise<number> {
  const reports: Report[] = [];
  const rows: { file: string; report?: Report; error?: string }[] = [];
  let code = 0;
  for (const file of files) {
    let report: Report;
    try {
      const rb = await readRunbook(file, { cwd: ctx.cwd, vars: options.vars, drill: true });
      report = await rehearse(rb);
    } catch (e) {
      if (!(e instanceof RunbookErrors || e instanceof SimulationError)) throw e;
      ctx.stderr(e.message + "\n");
      rows.push({ file, error: "invalid" });
      code = worse(code, 2);
      continue;
    }
    reports.push(report);
    rows.push({ file, report });
    code = worse(code, exitCode(report));
    printReport(ctx, report, options.json, rows.length > 1);
  }
  if (!options.json && files.length > 1) ctx.stdout("\n" + renderSummary(rows) + "\n");
  await writeReport(ctx, reportFile, reports);
  return code;
}

/** One report: a JSON line, or the terminal report (and, for a live run, its prediction). */
function printReport(ctx: ReportContext, report: Report, json: boolean, gap: boolean): void {
  if (json) return ctx.stdout(JSON.stringify(report) + "\n");
  const prediction = predictionLine(report);
  ctx.stdout(
    (gap ? "\n" : "") + renderReport(report) + "\n" + (prediction ? prediction + "\n" : ""),
  );
}

/** Prints live reports (terminal or JSON) and returns the exit code of the worst. */
export async function finishLive(
  ctx: ReportContext,
  reports: Report[],
  json: boolean,
  reportFile: string | undefined,
): Promise<number> {
  let code = 0;
  for (const r of reports) {
    printReport(ctx, r, json, false);
    code = worse(code, exitCode(r));
  }
  await writeReport(ctx, reportFile, reports);
  return code;
}

/** 2 (invalid) beats 1 (failed) beats 3 (missed) beats 0. */
function worse(a: number, b: number): number {
  const order = [0, 3, 1, 2];
  return order.indexOf(b) > order.indexOf(a) ? b : a;
}

/** `--report FILE`: the reports in the format the extension names (loaded for this flag only). */
export async function writeReport(ctx: ReportContext, file: string | undefined, reports: Report[]) {
  if (!file) return;
  // The extension names the format: .json (and any other), .html, .md, .xml.
  const { reportText } = await import("../reports/format.ts");
  await Deno.writeTextFile(resolve(ctx.cwd, file), reportText(file, reports));
}

/** Expands directories into the runbooks under them (`*.yaml`, `*.yml`), sorted. */
export async function expand(paths: string[], cwd: string): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const full = isAbsolute(p) ? p : resolve(cwd, p);
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(full);
    } catch {
      throw new UsageError(`${p}: no such file or directory`);
    }
    if (!info.isDirectory) {
      out.push(p);
      continue;
    }
    const found: string[] = [];
    const walk = async (dir: string) => {
      for await (const e of Deno.readDir(dir)) {
        const child = join(dir, e.name);
        if (e.isDirectory && !e.name.startsWith(".")) await walk(child);
        else if (e.isFile && /\.ya?ml$/.test(e.name)) found.push(relative(full, child));
      }
    };
    await walk(full);
    if (!found.length) throw new UsageError(`${p}: no runbooks (*.yaml) in this directory`);
    out.push(...found.sort().map((f) => join(p, f)));
  }
  return out;
}
