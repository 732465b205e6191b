/**
 * Registers thaw's built-in step kinds (`run`, then `fetch`) and sources (`http`, `file`, `run`)
 * through the same functions a third party calls. Imported by the runbook schema, so loading any
 * runbook sees them. (The `local` target registers itself in `targets/local.ts`, which only the
 * process side imports.)
 *
 * @module
 */
import { registerStepKind } from "./kind.ts";
import { runKind } from "./run/kind.ts";
import { fetchKind } from "./fetch/kind.ts";
import "./fetch/sources/builtin.ts";

registerStepKind(runKind);
registerStepKind(fetchKind);
