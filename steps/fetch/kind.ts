/**
 * The `fetch` step kind as a plug-in: its key in a runbook step (`fetch:` and what it holds),
 * its checks (a source every registered {@linkcode Source} can tell apart), its model, spec and
 * figures; its execution is {@linkcode ./fetch.ts}'s `fetchData`, loaded when a fetch first runs.
 *
 * @module
 */
import { basename, dirname, isAbsolute, posix, resolve } from "node:path";
import { z } from "zod";
import { bandwidth, size, text } from "../../engine/runbook/schema_parts.ts";
import type { FetchSource, FetchStep } from "../../engine/runbook/model.ts";
import { closest } from "../../engine/runbook/suggest.ts";
import { checkLazy } from "./lazy_check.ts";
import {
  type CheckContext,
  type Located,
  type RawStep,
  sourceFor,
  sources,
  type SpecContext,
  type StepKind,
} from "../kind.ts";
import type { FetchEffect, FetchSpec, Link, SourceSpec } from "../types.ts";

/** No limit: a fetch run outside the live engine's link shaper. */
const UNLIMITED: Link = { take: () => Promise.resolve() };

const fetch = z.strictObject({
  from: z.union([text, z.array(text).min(1)]).optional()
    .meta({ description: "A source, or a list of sources tried in order (backup tiers)" }),
  run: text.optional()
    .meta({ description: "A command that writes the data set under $THAW_TO" }),
  to: text.meta({ description: "Destination, relative to the runbook's directory" }),
  size: size.optional().meta({ description: "Expected size, when the source cannot tell" }),
  rate: bandwidth.optional().meta({ description: "How fast the source delivers on its own" }),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "pattern:sha256").optional()
    .meta({ description: "Checked before the step is done (64 lowercase hex digits)" }),
  local: z.boolean().optional()
    .meta({
      description: "Crosses no link (a local copy, a clone): not paced, not in link bounds",
    }),
  lazy: z.boolean().optional()
    .meta({
      description: "Attach at once and fetch on demand, streaming the rest (revision 5; " +
        "one file or image served with Range over HTTP; needs size)",
    }),
  writable: z.boolean().optional()
    .meta({ description: "A lazy fetch the service may write to; its writes are kept" }),
});

type Fetch = z.infer<typeof fetch>;

/** A URL scheme at the start of a location: `s3` of `s3://bucket/key`. */
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

/**
 * What is wrong with the source `from` as written, if anything: a URL scheme no registered
 * source serves (with the closest scheme one does).
 */
export function sourceProblem(from: string): string | undefined {
  const scheme = SCHEME.exec(from)?.[1];
  if (scheme === undefined) return undefined;
  if (sourceFor(from) !== undefined) return undefined;
  const all = sources();
  const near = closest(scheme.toLowerCase(), all.flatMap((s) => s.schemes));
  const hint = near === undefined ? "" : ` (did you mean "${near}://"?)`;
  const labels = all.map((s) => s.label).filter((l) => l !== "").join(", ");
  return `unsupported source "${scheme}://"${hint}: use ${labels}, ` +
    `or fetch.run with a command (for example restic or aws s3 cp)`;
}

function checkFetch(f: Fetch, onHost: boolean, ctx: CheckContext): void {
  if ((f.from === undefined) === (f.run === undefined)) {
    ctx.problem(
      ["fetch"],
      "value",
      f.from === undefined
        ? `the fetch of ${ctx.name} needs "from" (a source) or "run" (a command writing under $THAW_TO)`
        : `the fetch of ${ctx.name} has both "from" and "run"; use one`,
    );
  }
  if (typeof f.to === "string") ctx.expression(["fetch", "to"], f.to, { steps: false });
  if (onHost && typeof f.to === "string" && !f.to.includes("${{") && !isAbsolute(f.to)) {
    ctx.problem(
      ["fetch", "to"],
      "value",
      `the fetch of ${ctx.name} runs on a host: "to" must be an absolute path there ` +
        `(the runbook's directory is this machine's)`,
    );
  }
  if (f.run !== undefined) ctx.expression(["fetch", "run"], f.run, { steps: false });
  const from = f.from === undefined ? [] : typeof f.from === "string" ? [f.from] : f.from;
  from.forEach((src, k) => {
    const path = typeof f.from === "string" ? ["fetch", "from"] : ["fetch", "from", k];
    ctx.expression(path, src, { steps: false });
    if (typeof src !== "string") return;
    const problem = sourceProblem(src);
    if (problem !== undefined) ctx.problem(path, "value", problem);
  });
  checkLazy(f, onHost, ctx);
}

/**
 * The absolute destination of a fetch: resolved against the runbook's directory; on a host
 * (`on:`), the path there as written (a relative one fails the step: see `execute`).
 */
function destination(step: FetchStep, ctx: SpecContext): string {
  const to = ctx.text(step.to);
  return step.on !== undefined ? to : ctx.path(to);
}

/** The temporary name a fetch writes to before the rename, beside its destination. */
export function temporaryName(to: string, run: string): string {
  const name = `.${basename(to)}.thaw-${run}.part`;
  return isAbsolute(to) ? resolve(dirname(to), name) : posix.join(dirname(to), name);
}

function sourceSpec(s: FetchSource, step: FetchStep, ctx: SpecContext): SourceSpec {
  if (s.kind === "run") {
    const user = step.user !== undefined ? { user: step.user } : {};
    return { kind: "run", command: ctx.command(s.command), shell: "bash", ...user };
  }
  const loc = ctx.text(s.location);
  return {
    kind: "location",
    location: /^[a-z][a-z0-9+.-]*:\/\//i.test(loc) ? loc : ctx.path(loc),
  };
}

/** The `fetch` step kind: a data set brought home from its sources; see `fetch.ts`. */
export const fetchKind: StepKind<FetchStep, FetchSpec, FetchEffect> = {
  key: "fetch",
  summary: "a data set to bring home",
  destination,
  schema: {
    fetch: fetch.optional().meta({ description: "A data set to bring home (fetch step)" }),
  },

  check(raw: RawStep, ctx: CheckContext): void {
    const f = raw.fetch;
    if (f && typeof f === "object") checkFetch(f as Fetch, typeof raw.on === "string", ctx);
  },

  model(raw, ctx) {
    const f = raw.fetch as Fetch;
    const from: FetchSource[] = f.run !== undefined
      ? [{ kind: "run", command: ctx.template(f.run) }]
      : (typeof f.from === "string" ? [f.from] : f.from ?? []).map((src) => ({
        kind: "location",
        location: ctx.template(src),
      }));
    return {
      kind: "fetch",
      from,
      to: ctx.template(f.to),
      size: ctx.size(["fetch", "size"], f.size),
      rate: ctx.bandwidth(["fetch", "rate"], f.rate),
      sha256: f.sha256,
      local: f.local ?? false,
      ...(f.lazy ? { lazy: true, writable: f.writable ?? false } : {}),
    };
  },

  *templates(step): Iterable<Located> {
    yield { path: ["fetch", "to"], template: step.to };
    const list = step.from.length > 1;
    for (const [j, src] of step.from.entries()) {
      if (src.kind === "run") yield { path: ["fetch", "run"], template: src.command };
      else yield { path: ["fetch", "from", ...(list ? [j] : [])], template: src.location };
    }
  },

  spec(step, ctx): FetchSpec {
    const to = destination(step, ctx);
    return {
      sources: step.from.map((s) => sourceSpec(s, step, ctx)),
      to,
      tmp: temporaryName(to, ctx.run),
      retries: step.retries,
      ...(step.size !== undefined ? { size: step.size } : {}),
      ...(step.sha256 !== undefined ? { sha256: step.sha256.toLowerCase() } : {}),
      ...(step.timeout !== undefined ? { timeoutMs: step.timeout * 1000 } : {}),
      ...(step.user !== undefined ? { user: step.user } : {}),
      ...(step.lazy ? { lazy: { writable: step.writable ?? false } } : {}),
    };
  },

  figures: (step) => ({
    type: "data",
    bytes: step.size,
    rate: step.rate,
    local: step.local,
    ...(step.lazy ? { lazy: true } : {}),
  }),

  async execute(spec, ctx) {
    if (spec.lazy) {
      // Attached at `to`, streamed home; the volume is left served (see lazy/execute.ts).
      const { executeLazy } = await import("./lazy/execute.ts");
      return await executeLazy(spec, ctx) as FetchEffect;
    }
    const { fetchData } = await import("./fetch.ts");
    return await fetchData(spec, {
      ...ctx,
      link: ctx.link ?? UNLIMITED,
      progress: ctx.progress ?? (() => {}),
    });
  },
};
