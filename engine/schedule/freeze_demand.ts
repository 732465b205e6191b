/**
 * The scheduler's frozen-step bookkeeping: a step whose run needs are done but whose data is
 * not yet there freezes and demands the fetches it waits on (aggressive: also those of the run
 * steps downstream); it thaws and queues once they landed.
 *
 * @module
 */
import { FETCH, RUN } from "../plan/graph.ts";
import { admit, eligible } from "./link_share.ts";
import { DONE, FROZEN, PENDING, type RunState } from "./run_state.ts";

/** Re-examines step `i` after one of its needs finished (or at the start of the run). */
export function evaluate(s: RunState, i: number): void {
  const st = s.state[i]!;
  if (st !== PENDING && st !== FROZEN) return;
  const g = s.graph;
  if (s.runNeedsLeft[i] !== 0) return;
  if (s.fetchNeedsLeft[i] !== 0) {
    if (g.kind[i] === RUN && st === PENDING) {
      s.state[i] = FROZEN;
      s.out.push({ type: "freeze", step: i });
      demandNeeds(s, i);
      if (s.strategy === "aggressive") demandDownstream(s, i);
    }
    return;
  }
  if (st === FROZEN) {
    s.state[i] = PENDING;
    s.out.push({ type: "thaw", step: i });
  }
  s.ready[i] = 1;
  if (g.kind[i] === RUN) {
    if (s.strategy === "serial" && s.serialGate[i] && s.serialLeft > 0) {
      s.held.push(i);
    } else s.runQueue.push(i, s.rank[i]!);
  } else if (eligible(s, i)) admit(s, i);
}

/** Demands every unfinished fetch `i` waits on, and the fetches those wait on. */
function demandNeeds(s: RunState, i: number): void {
  const g = s.graph;
  const stack = [i];
  while (stack.length) {
    const j = stack.pop()!;
    for (let k = g.needStart[j]!; k < g.needStart[j + 1]!; k++) {
      const f = g.needList[k]!;
      if (g.kind[f] !== FETCH || s.demanded[f] || s.state[f] === DONE) continue;
      s.demanded[f] = 1;
      s.out.push({ type: "demand", step: f });
      if (s.ready[f] && eligible(s, f)) admit(s, f);
      stack.push(f);
    }
  }
}

/**
 * Aggressive: freezing spreads, so the run steps downstream of frozen step `i` are held by the
 * same missing data; what they will wait on too is demanded now rather than when they freeze.
 */
function demandDownstream(s: RunState, i: number): void {
  const g = s.graph;
  const blocked = s.blocked;
  const stack = [i];
  while (stack.length) {
    const j = stack.pop()!;
    for (let k = g.depStart[j]!; k < g.depStart[j + 1]!; k++) {
      const d = g.depList[k]!;
      if (g.kind[d] !== RUN || blocked[d]) continue;
      blocked[d] = 1;
      demandNeeds(s, d);
      stack.push(d);
    }
  }
}
