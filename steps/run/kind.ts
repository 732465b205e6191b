/**
 * The `run` step kind as a plug-in: its keys in a runbook step (`run`, `shell`, `background`,
 * `ready`), their checks, its model and spec, its figures for the plan; its execution is
 * {@linkcode ./run.ts}'s `runStep`, loaded when a step first runs (the runbook layer, which reads
 * the kinds, imports no process code).
 *
 * @module
 */
import { z } from "zod";
import { duration, text } from "../../engine/runbook/schema_parts.ts";
import type { Probe, RunStep } from "../../engine/runbook/model.ts";
import type { CheckContext, Located, RawStep, SpecContext, StepKind } from "../kind.ts";
import type { ProbeSpec, RunEffect, RunSpec } from "../types.ts";

const PROBES = ["http", "tcp", "run"] as const;

const ready = z.strictObject({
  http: text.optional().meta({ description: "URL that must answer 2xx" }),
  tcp: text.optional().meta({ description: "host:port that must accept a connection" }),
  run: text.optional().meta({ description: "command that must exit 0" }),
  timeout: duration.optional().meta({ description: "how long to keep probing (default 1m)" }),
  interval: duration.optional().meta({ description: "time between probes (default 250ms)" }),
}).meta({ description: "A probe that must pass for the step to be done: one of http, tcp, run" });

const schema = {
  run: text.optional().meta({ description: "A command (run step)" }),
  shell: z.string().regex(/^\S+$/, "pattern:shell").optional()
    .meta({ description: "Shell for run (default bash)" }),
  background: z.boolean().optional()
    .meta({ description: "Keep running after ready passes (a service)" }),
  ready: ready.optional(),
};

type Ready = z.infer<typeof ready>;

function checkReady(r: Ready, ctx: CheckContext): void {
  const kinds = PROBES.filter((k) => r[k] !== undefined);
  if (kinds.length !== 1) {
    ctx.problem(
      ["ready"],
      "value",
      kinds.length === 0
        ? `the ready probe of ${ctx.name} needs one of http, tcp or run`
        : `the ready probe of ${ctx.name} has ${kinds.join(" and ")}; use exactly one`,
    );
  }
  const tcp = r.tcp;
  if (
    tcp !== undefined && !tcp.includes("${{") &&
    !/^[^\s:]+:\d{1,5}$|^\[[^\]]+\]:\d{1,5}$/.test(tcp)
  ) {
    ctx.problem(["ready", "tcp"], "value", `tcp: expected host:port, got "${tcp}"`);
  }
  const http = r.http;
  if (http !== undefined && !/^(https?:\/\/|\$\{\{)/.test(http)) {
    ctx.problem(
      ["ready", "http"],
      "value",
      `http: expected an http:// or https:// URL, got "${http}"`,
    );
  }
}

function probeSpec(p: Probe, ctx: SpecContext): ProbeSpec {
  return {
    kind: p.kind,
    target: p.kind === "run" ? ctx.command(p.target) : ctx.text(p.target),
    timeoutMs: p.timeout * 1000,
    intervalMs: p.interval * 1000,
  };
}

/** The `run` step kind: a command in its own process group; see `run.ts`. */
export const runKind: StepKind<RunStep, RunSpec, RunEffect> = {
  key: "run",
  summary: "a command",
  schema,

  check(raw: RawStep, ctx: CheckContext): void {
    const r = raw.ready as Ready | undefined;
    if (raw.background === true && !r) {
      ctx.problem(
        ["background"],
        "key",
        `${ctx.name} runs in the background but has no "ready" probe to tell when it is up`,
      );
    }
    ctx.expression(["run"], raw.run, { steps: true });
    if (r && typeof r === "object") {
      checkReady(r, ctx);
      for (const k of PROBES) ctx.expression(["ready", k], r[k], { steps: true });
    }
  },

  model(raw, ctx) {
    const r = raw.ready as Ready | undefined;
    let probe: Probe | undefined;
    if (r) {
      const kind = PROBES.find((k) => r[k] !== undefined) ?? "run";
      probe = {
        kind,
        target: ctx.template(r[kind] ?? ""),
        timeout: ctx.duration(["ready", "timeout"], r.timeout) ?? 60,
        interval: ctx.duration(["ready", "interval"], r.interval) ?? 0.25,
      };
    }
    return {
      kind: "run",
      run: ctx.template((raw.run as string | undefined) ?? ""),
      shell: (raw.shell as string | undefined) ?? "bash",
      background: (raw.background as boolean | undefined) ?? false,
      ready: probe,
    };
  },

  *templates(step): Iterable<Located> {
    yield { path: ["run"], template: step.run };
    if (step.ready) yield { path: ["ready", step.ready.kind], template: step.ready.target };
  },

  spec(step, ctx): RunSpec {
    return {
      command: ctx.command(step.run),
      shell: step.shell,
      retries: step.retries,
      background: step.background,
      ...(step.timeout !== undefined ? { timeoutMs: step.timeout * 1000 } : {}),
      ...(step.ready ? { ready: probeSpec(step.ready, ctx) } : {}),
      ...(step.user !== undefined ? { user: step.user } : {}),
    };
  },

  figures: (step) => ({ type: "time", seconds: step.estimate }),

  async execute(spec, ctx) {
    const { runStep } = await import("./run.ts");
    return await runStep(spec, ctx);
  },
};

export { probeSpec };
