/**
 * The typed model of a loaded runbook: units parsed, defaults applied, expressions parsed.
 *
 * @module
 */
import type { Template } from "./expressions.ts";
import type { Host } from "./hosts.ts";
import type { ServiceLevelProbe } from "../service_level/schema.ts";
import type { Webhook } from "../notify/model.ts";
import type { Strategy } from "./schema.ts";

export type { Host } from "./hosts.ts";
export type { Strategy } from "./schema.ts";

/** A loaded, valid runbook. Durations are seconds, sizes bytes, bandwidths bytes per second. */
export interface Runbook {
  /** The file as the user named it (for messages). */
  readonly file: string;
  /** Absolute directory of the file: commands run here, relative paths resolve here. */
  readonly dir: string;
  readonly name: string;
  readonly description?: string;
  readonly objectives: Objectives;
  readonly strategy: Strategy;
  /** Capacity of the shared link; `Infinity` when the runbook sets none. */
  readonly bandwidth: number;
  readonly parallelism: number;
  /** Effective vars: the runbook's, then the drill's overrides (in drills), then `--var`. */
  readonly vars: Readonly<Record<string, string>>;
  readonly env: Readonly<Record<string, Template>>;
  /** Whether the drill overrides are applied. */
  readonly drill: boolean;
  /** The hosts steps may run on (`on:`), by name (revision 3); empty when none. */
  readonly hosts: Readonly<Record<string, Host>>;
  /** Probes sampled while data still arrives (revision 4); empty when none. */
  readonly serviceLevel: readonly ServiceLevelProbe[];
  /** The webhooks told what happens in a live run (`notify:`); empty when none. */
  readonly notify: readonly Webhook[];
  readonly steps: readonly Step[];
  /** The text the runbook was loaded from, to point at problems found after loading. */
  readonly text: string;
}

/** What the recovery must achieve, in seconds. */
export interface Objectives {
  readonly rto?: number;
  readonly btn?: number;
  readonly milestones: Readonly<Record<string, number>>;
}

/** What every step has. */
export interface StepBase {
  readonly id: string;
  /** Position in `Runbook.steps`. */
  readonly index: number;
  readonly needs: readonly string[];
  readonly timeout?: number;
  readonly retries: number;
  readonly env: Readonly<Record<string, Template>>;
  readonly estimate?: number;
  readonly milestone?: string;
  readonly onFailure: "abort" | "isolate";
  readonly approval?: Template;
  /** Listed in `drill.skip` and this is a drill: simulated with its estimate, never run. */
  readonly skip: boolean;
  /** Run the step's commands (and own what it fetches) as this system user. */
  readonly user?: string;
  /** Safe to run again after the engine died while it ran (revision 2). */
  readonly idempotent: boolean;
  /** The host of `Runbook.hosts` the step runs on (revision 3); this machine when absent. */
  readonly on?: string;
}

/** A step that runs a command. */
export interface RunStep extends StepBase {
  readonly kind: "run";
  readonly run: Template;
  readonly shell: string;
  readonly background: boolean;
  readonly ready?: Probe;
}

/** A step that brings a data set home. */
export interface FetchStep extends StepBase {
  readonly kind: "fetch";
  /** Sources tried in order (backup tiers). */
  readonly from: readonly FetchSource[];
  readonly to: Template;
  readonly size?: number;
  readonly rate?: number;
  readonly sha256?: string;
  /** Crosses no link: not paced, not counted in the link's bounds (revision 2). */
  readonly local: boolean;
  /**
   * Revision 5: attached at once (dependents start then), read on demand, the rest streamed;
   * home when every byte is local. Absent: an ordinary fetch.
   */
  readonly lazy?: boolean;
  /** With `lazy`: the service may write to the attached file; its writes are kept. */
  readonly writable?: boolean;
}

/**
 * Any step of the built-in kinds. (A step of a kind registered by a plug-in has the common fields
 * of {@linkcode StepBase}, its `kind` and its kind's fields; see `steps/kind.ts`.)
 */
export type Step = RunStep | FetchStep;

/**
 * Where a fetch's data comes from: a location (`http(s)://`, `file://` or a path, told apart
 * once its expressions are resolved) or a command that writes under `$THAW_TO`.
 */
export type FetchSource =
  | { readonly kind: "location"; readonly location: Template }
  | { readonly kind: "run"; readonly command: Template };

/** A readiness probe. */
export interface Probe {
  readonly kind: "http" | "tcp" | "run";
  readonly target: Template;
  readonly timeout: number;
  readonly interval: number;
}
