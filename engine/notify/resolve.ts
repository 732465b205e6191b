/**
 * `notify` when a run starts: every `${{ env.NAME }}` must be set (else the run is refused, exit 2,
 * like the rest of the runbook), then each webhook's address and headers are resolved, keeping
 * the values that came from the environment as secrets, so nothing thaw prints shows them.
 *
 * @module
 */
import { RunbookErrors } from "../runbook/errors.ts";
import { type Reference, renderTemplate, type Template } from "../runbook/expressions.ts";
import type { Path } from "../runbook/source.ts";
import type { Problem } from "../runbook/validate.ts";
import { locate, urlProblem, type Webhook } from "./model.ts";
import { Redactor } from "./redact.ts";
import type { NotifyEvent } from "./schema.ts";

/** A `${{ env.NAME }}` of `notify`, where it stands (the shape `env_check.ts` collects). */
export interface NotifyEnvUse {
  readonly name: string;
  readonly path: Path;
  /** Offset of the `${{` in the string at `path`. */
  readonly inner: number;
}

/** Each template of `hook` and where it stands in the runbook. */
function templates(hook: Webhook): [Path, Template][] {
  return [
    [["notify", hook.index, "url"], hook.url],
    ...Object.entries(hook.headers).map(([k, t]): [Path, Template] => [
      ["notify", hook.index, "headers", k],
      t,
    ]),
  ];
}

/**
 * Every `${{ env.NAME }}` of the webhooks, where it stands.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notifyModel } from "./model.ts";
 * import { notifyEnvUses } from "./resolve.ts";
 * const hooks = notifyModel([{ url: "${{ env.HOOK }}" }]);
 * assert.deepEqual(notifyEnvUses(hooks), [{ name: "HOOK", path: ["notify", 0, "url"], inner: 0 }]);
 * ```
 */
export function notifyEnvUses(hooks: readonly Webhook[]): NotifyEnvUse[] {
  const uses: NotifyEnvUse[] = [];
  for (const hook of hooks) {
    for (const [path, t] of templates(hook)) {
      for (const p of t.parts) {
        if (typeof p !== "string" && p.ref.ns === "env") {
          uses.push({ name: p.ref.name, path, inner: p.offset });
        }
      }
    }
  }
  return uses;
}

/** The runbook as these checks need it: its file, its text, the names of its `env`. */
export interface RunbookText {
  readonly file: string;
  readonly text: string;
  /** The runbook's `env` (only its names are read). */
  readonly env: Readonly<Record<string, unknown>>;
}

/**
 * Checks that every `${{ env.NAME }}` of the webhooks has a value in `env` (the engine's
 * environment) or the runbook's `env`: an unset one would POST to an empty address, or send an
 * empty token.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunbook } from "../runbook/load.ts";
 * import { checkNotifyEnv } from "./resolve.ts";
 * const text = "runbook: 1\nname: x\nnotify:\n  - url: ${{ env.HOOK }}\n" +
 *   "steps:\n  - { id: s, run: 'true' }\n";
 * const hooks = parseRunbook(text, "x.yaml").notify;
 * checkNotifyEnv({ file: "x.yaml", text, env: {} }, hooks, { HOOK: "https://h.example/x" });
 * assert.throws(
 *   () => checkNotifyEnv({ file: "x.yaml", text, env: {} }, hooks, {}),
 *   /x\.yaml:4:10: env\.HOOK is not set/,
 * );
 * ```
 * @throws {RunbookErrors} naming each unset variable where it is used.
 */
export function checkNotifyEnv(
  runbook: RunbookText,
  hooks: readonly Webhook[],
  env: Readonly<Record<string, string>>,
): void {
  const problems: Problem[] = [];
  for (const u of notifyEnvUses(hooks)) {
    if (Object.hasOwn(env, u.name) || Object.hasOwn(runbook.env, u.name)) continue;
    problems.push({
      path: u.path,
      at: "value",
      inner: u.inner,
      message: `env.${u.name} is not set, neither in the runbook's env nor in the environment ` +
        `thaw runs in: export ${u.name} or add it to env (notify would use an empty value)`,
    });
  }
  if (problems.length) {
    throw new RunbookErrors(runbook.file, locate(runbook.file, runbook.text, problems));
  }
}

/** A webhook ready to be sent to: its address and headers resolved. */
export interface ResolvedWebhook {
  readonly index: number;
  readonly url: string;
  readonly on: ReadonlySet<NotifyEvent>;
  readonly headers: Readonly<Record<string, string>>;
  /** Per request, ms. */
  readonly timeoutMs: number;
  readonly retries: number;
  /** Hides the secrets of this webhook (values from the environment, header values). */
  readonly redactor: Redactor;
  /** The address as thaw prints it: `https://hooks.example.com/***`. */
  readonly shown: string;
}

/**
 * Resolves the webhooks for a run. `value` gives each reference its text: `env.NAME` from the
 * runbook's `env` else the engine's environment (as {@linkcode checkNotifyEnv} checked), `vars`
 * and `run.id` as elsewhere; the values of `env` references are kept as secrets.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { notifyModel } from "./model.ts";
 * import { resolveWebhooks } from "./resolve.ts";
 * const hooks = notifyModel([{ url: "https://h.example/${{ env.TOKEN }}" }]);
 * const [hook] = resolveWebhooks({ file: "x.yaml", text: "", env: {} }, hooks, () => "s3cret");
 * assert.equal(hook!.url, "https://h.example/s3cret");
 * assert.equal(hook!.shown, "https://h.example/***");
 * ```
 * @throws {RunbookErrors} when an address resolves to something that is not an http(s) URL.
 */
export function resolveWebhooks(
  runbook: RunbookText,
  hooks: readonly Webhook[],
  value: (ref: Reference) => string,
): ResolvedWebhook[] {
  const problems: Problem[] = [];
  const out = hooks.map((hook) => {
    const secrets: string[] = [];
    const render = (t: Template) =>
      renderTemplate(t, (ref) => {
        const v = value(ref);
        if (ref.ns === "env") secrets.push(v);
        return v;
      });
    const url = render(hook.url);
    const headers: Record<string, string> = {};
    for (const [k, t] of Object.entries(hook.headers)) headers[k] = render(t);
    const redactor = new Redactor([...secrets, ...Object.values(headers)]);
    const problem = urlProblem(url);
    if (problem) {
      problems.push({
        path: ["notify", hook.index, "url"],
        at: "value",
        message: `${problem} (it resolves to ${JSON.stringify(redactor.url(url))})`,
      });
    }
    return {
      index: hook.index,
      url,
      on: new Set(hook.on),
      headers,
      timeoutMs: Math.round(hook.timeout * 1000),
      retries: hook.retries,
      redactor,
      shown: redactor.url(url),
    };
  });
  if (problems.length) {
    throw new RunbookErrors(runbook.file, locate(runbook.file, runbook.text, problems));
  }
  return out;
}
