/**
 * `--report FILE` in the format its extension names, and `thaw plan --html FILE`, through the
 * real `thaw` command in a child process; each file read back with a parser of its format.
 *
 * @module
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { marked, type Tokens } from "marked";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { parse } from "parse5";
import { thaw } from "./live_helpers.ts";

const RUNBOOK = (name: string, rto: string) =>
  `runbook: 1
name: ${name}
bandwidth: 10MB/s
objectives: { rto: ${rto} }
steps:
  - { id: fetch-db, fetch: { from: ./b/db, to: ./r/db, size: 20MB } }
  - { id: fetch-logs, fetch: { from: ./b/logs, to: ./r/logs, size: 100MB } }
  - { id: start-db, needs: [fetch-db], run: "true", estimate: 2s, milestone: service }
`;

/** Element names and `data-strategy` values of an HTML document. */
function scan(html: string) {
  const tags: string[] = [], strategies: string[] = [];
  // deno-lint-ignore no-explicit-any
  const walk = (n: any) => {
    if (n.tagName) tags.push(n.tagName);
    const s = n.attrs?.find((a: { name: string }) => a.name === "data-strategy");
    if (s) strategies.push(s.value);
    for (const c of n.childNodes ?? []) walk(c);
  };
  walk(parse(html));
  return { tags, strategies };
}

Deno.test("thaw drill --simulate --report writes JSON, Markdown, JUnit or HTML by extension", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "a.yaml"), RUNBOOK("alpha", "1s"));
    await Deno.writeTextFile(join(dir, "b.yaml"), RUNBOOK("beta", "1h"));
    const files = ["out.xml", "out.md", "out.html", "out.json"];
    for (const f of files) {
      const r = await thaw(dir, ["drill", "--simulate", "a.yaml", "b.yaml", "--report", f]);
      equal(r.code, 3, r.stderr); // alpha misses its rto
    }
    const xml = await Deno.readTextFile(join(dir, "out.xml"));
    equal(XMLValidator.validate(xml), true);
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "" }).parse(xml);
    deepEqual(doc.testsuites.testsuite.map((s: { name: string }) => s.name), ["alpha", "beta"]);
    equal(Number(doc.testsuites.failures), 1);

    const md = await Deno.readTextFile(join(dir, "out.md"));
    const tables = marked.lexer(md).filter((t): t is Tokens.Table => t.type === "table");
    equal(tables.length, 4); // measures and steps, for each runbook
    match(md, /^## ⚠️ alpha: missed/m);
    match(md, /^## ✅ beta: met/m);

    const html = await Deno.readTextFile(join(dir, "out.html"));
    const { tags } = scan(html);
    equal(tags.filter((t) => t === "svg").length, 2);
    ok(!tags.includes("script"), "a report file needs no script");
    ok(!/\b(src|href)="https?:/.test(html), "nothing to load from elsewhere");

    const json = (await Deno.readTextFile(join(dir, "out.json"))).trim().split("\n");
    deepEqual(json.map((l) => JSON.parse(l).runbook), ["alpha", "beta"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw plan --html draws each strategy one under the other; elsewhere it is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "a.yaml"), RUNBOOK("alpha", "1m"));
    const r = await thaw(dir, ["plan", "a.yaml", "--html", "plan.html"]);
    equal(r.code, 0, r.stderr);
    const { strategies } = scan(await Deno.readTextFile(join(dir, "plan.html")));
    deepEqual(strategies, ["serial", "lazy", "aggressive"]);
    const bad = await thaw(dir, ["drill", "--simulate", "a.yaml", "--html", "x.html"]);
    equal(bad.code, 2);
    match(bad.stderr, /--html goes with plan/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
