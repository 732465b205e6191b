/**
 * The runbook format of lazy fetches (contract revision 5): `lazy: true` and `writable: true`
 * on fetch steps load into the model, the plan's figures and the graph; misuse is refused with
 * positioned messages (the full set: testdata/invalid/lazy-fetch-misuse.*).
 *
 * @module
 */
import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import { buildGraph, parseRunbook } from "../mod.ts";
import type { FetchStep } from "../engine/runbook/model.ts";
import { jsonSchema } from "../engine/runbook/schema.ts";
import { estimatesFrom } from "../engine/plan/history.ts";

const steps = (fetch: string) =>
  `runbook: 1
name: lazy
vars: { backup: http://127.0.0.1:8089 }
steps:
  - id: vol
    fetch: ${fetch}
  - { id: svc, needs: [vol], run: "true", estimate: 1s }
`;

Deno.test("parseRunbook() loads lazy and writable, when a fetch reads ranges over HTTP", () => {
  const rb = parseRunbook(
    steps(
      "{ from: '${{ vars.backup }}/v.img', to: ./v.img, size: 1GiB, lazy: true, writable: true }",
    ),
    "t.yaml",
  );
  const vol = rb.steps[0] as FetchStep;
  deepEqual([vol.lazy, vol.writable], [true, true]);
  deepEqual(Array.from(buildGraph(rb).lazy!), [1, 0]);
  const plain = parseRunbook(steps("{ from: https://b/v.img, to: ./v.img, size: 1GiB }"), "t.yaml");
  equal((plain.steps[0] as FetchStep).lazy, undefined);
  equal(buildGraph(plain).lazy, undefined, "no lazy fetch: the graph has no lazy array");
});

Deno.test("parseRunbook() refuses a lazy fetch at its position, when its source serves no ranges", () => {
  throws(
    () =>
      parseRunbook(
        steps("{ from: file:///b/v.img, to: ./v.img, size: 1GiB, lazy: true }"),
        "t.yaml",
      ),
    (e: Error) => {
      match(
        e.message,
        /^t\.yaml:6:\d+: lazy fetches read ranges over HTTP .*"file:\/\/" cannot be lazy/,
      );
      return true;
    },
  );
  throws(
    () => parseRunbook(steps("{ from: https://b/v.img, to: ./v.img, lazy: true }"), "t.yaml"),
    /t\.yaml:6:\d+: a lazy fetch attaches a volume of a known size: add "size"/,
  );
  throws(
    () =>
      parseRunbook(
        steps("{ from: https://b/v.img, to: ./v.img, size: 1GiB, lazy: yes }"),
        "t.yaml",
      ),
    /t\.yaml:6:\d+: .*lazy/,
  );
});

Deno.test("jsonSchema() describes lazy and writable, when a fetch step is written", () => {
  const text = JSON.stringify(jsonSchema());
  ok(/"lazy":\{"description":"Attach at once[^}]*"type":"boolean"/.test(text), "lazy");
  ok(/"writable":\{"description":"A lazy fetch[^}]*"type":"boolean"/.test(text), "writable");
});

Deno.test("estimatesFrom() learns no rate from a lazy fetch's stream, when its pace was the scheduler's", () => {
  const rb = parseRunbook(
    `runbook: 1
name: learn
bandwidth: 10MB/s
steps:
  - { id: vol, fetch: { from: "http://127.0.0.1:1/v.img", to: ./v.img, size: 100MB, lazy: true } }
  - { id: plain, fetch: { from: "http://127.0.0.1:1/p.img", to: ./p.img, size: 100MB } }
`,
    "learn.yaml",
  );
  // Both moved 100 MB in 15 s of moving: 6.7 MB/s, below the 10 MB/s link.
  const samples = ["vol", "plain"].map((step, i) => ({
    run: "r1",
    step,
    seconds: 15,
    moving: 15,
    bytes: 100e6,
    endedAt: i,
  }));
  const e = estimatesFrom(rb, samples);
  equal(e.rate?.has("vol"), false);
  equal(Math.round(e.rate!.get("plain")!), Math.round(100e6 / 15));
});
