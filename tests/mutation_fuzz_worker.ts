/**
 * The worker of `fuzzInWorker` (`mutation_fuzz.ts`): runs the mutants it is asked for, saying
 * which one it starts, then posts the counts.
 *
 * @module
 */
import { fuzz, seeds } from "./mutation_fuzz.ts";

const scope = self as unknown as {
  onmessage: (e: MessageEvent) => void;
  postMessage: (data: unknown) => void;
};
scope.onmessage = (e: MessageEvent) => {
  const { seed, count } = e.data as { seed: number; count: number };
  const counts = fuzz(seeds(), seed, count, (at) => scope.postMessage({ at }));
  scope.postMessage({ counts });
};
