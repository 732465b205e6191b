/**
 * How a step ends in the scheduler: done, failed, skipped or cancelled, with what that frees
 * (a run slot, the link, serial's held run steps, lazy's fetches) and what a failure or a
 * cancellation does to the steps after it and to the run.
 *
 * @module
 */
import { RUN } from "../plan/graph.ts";
import { admitAllFetches } from "./link_share.ts";
import { CANCELLED, FROZEN, PENDING, RUNNING, type RunState, SKIPPED } from "./run_state.ts";

/** Step `i` ends in state `to`: its run slot or its share of the link is given back. */
export function finish(s: RunState, i: number, to: number): void {
  const from = s.state[i]!;
  s.state[i] = to;
  s.unfinished--;
  const waited = s.gates.release(i); // a step waiting for a person holds no run slot
  if (s.graph.kind[i] === RUN) {
    s.runLeft--;
    if (from === RUNNING && !waited) s.running--;
    s.runQueue.remove(i);
    if (s.runLeft === 0 && s.strategy === "lazy") admitAllFetches(s);
  } else {
    if (s.demandRate[i]) {
      s.demandRate[i] = 0; // a lazy fetch's reads hold no link once it ended
      s.linkDirty = true;
    }
    if (s.linkQueue.has(i) || s.share[i]! > 0) {
      s.linkQueue.remove(i);
      s.linkDirty = true;
    }
    // Serial: the last fetch to finish, however it finished, lets the held run steps go.
    if (--s.serialLeft === 0) {
      for (const r of s.held) {
        if (s.state[r] === PENDING) s.runQueue.push(r, s.rank[r]!);
      }
      s.held = [];
    }
  }
}

/** What a failure of step `i` does: whatever needs it can never run; the run stops unless it isolates. */
export function failed(s: RunState, i: number): void {
  if (!s.graph.isolate[i]) s.aborted = true;
  const g = s.graph;
  const stack = [i];
  while (stack.length) {
    const j = stack.pop()!;
    for (let k = g.depStart[j]!; k < g.depStart[j + 1]!; k++) {
      const d = g.depList[k]!;
      const ds = s.state[d]!;
      if (ds === PENDING || ds === FROZEN) {
        finish(s, d, SKIPPED);
        s.out.push({ type: "skip", step: d });
        stack.push(d);
      }
    }
  }
  if (s.aborted) stopPending(s, SKIPPED);
}

/** Cancels the run: nothing more starts, running steps are to be stopped. */
export function cancel(s: RunState): void {
  s.aborted = true;
  for (let i = 0; i < s.graph.n; i++) {
    if (s.state[i] === RUNNING) {
      finish(s, i, CANCELLED);
      s.out.push({ type: "cancel", step: i });
    }
  }
  stopPending(s, CANCELLED);
}

/** Ends every pending or frozen step in state `to` (skipped or cancelled). */
function stopPending(s: RunState, to: number): void {
  for (let i = 0; i < s.graph.n; i++) {
    const st = s.state[i]!;
    if (st === PENDING || st === FROZEN) {
      finish(s, i, to);
      s.out.push({ type: to === CANCELLED ? "cancel" : "skip", step: i });
    }
  }
}
