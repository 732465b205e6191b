/**
 * The GitHub Actions workflow the README offers (docs/thaw-drills.yml): valid YAML, a simulated
 * drill on pull requests that touch runbooks/ commenting its Markdown report, a scheduled live
 * drill uploading the HTML report it writes, with tasks and flags thaw has.
 *
 * @module
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { load } from "js-yaml";
import { fromFileUrl } from "./paths.ts";

const ROOT = fromFileUrl(new URL("../", import.meta.url));

interface Step {
  run?: string;
  uses?: string;
  if?: string;
  with?: Record<string, unknown>;
}

Deno.test("docs/thaw-drills.yml simulates on pull requests and uploads a scheduled drill's page", async () => {
  const wf = load(await Deno.readTextFile(`${ROOT}docs/thaw-drills.yml`)) as {
    on: Record<string, unknown>;
    jobs: Record<string, { if: string; steps: Step[] }>;
  };
  deepEqual((wf.on.pull_request as { paths: string[] }).paths, ["runbooks/**"]);
  ok(Array.isArray(wf.on.schedule) && wf.on.schedule.length === 1);
  const tasks = Object.keys(JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks);

  const sim = wf.jobs.simulate!;
  match(sim.if, /pull_request/);
  const predict = sim.steps.find((s) => s.run?.includes("--simulate"))!;
  const [, task, report] = /deno task (\w+) --simulate runbooks\/ --report (\S+\.md)$/.exec(
    predict.run!,
  )!;
  ok(tasks.includes(task!), `no task ${task}`);
  const comment = sim.steps.find((s) => s.run?.includes("gh pr comment"))!;
  ok(comment.run!.includes(`--body-file ${report}`));
  match(comment.if!, /always\(\)/, "the comment is posted when an objective is missed too");

  const live = wf.jobs["live-drill"]!;
  const drill = live.steps.find((s) => s.run?.startsWith("deno task drill"))!;
  const html = /--report (\S+\.html)/.exec(drill.run!)![1];
  ok(!drill.run!.includes("--simulate"));
  const upload = live.steps.find((s) => s.uses?.startsWith("actions/upload-artifact"))!;
  equal(upload.with!.path, html);
  match(upload.if!, /always\(\)/, "the report is kept when the drill fails too");
});
