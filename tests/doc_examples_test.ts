// Doc examples run as tests (`deno test --doc`): they must assert with something that can fail.
import assert from "node:assert/strict";
import { fromFileUrl } from "./paths.ts";

const ROOT = fromFileUrl(new URL("../", import.meta.url));

/** Every .ts file under `dir`. */
function* sources(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory && !e.name.startsWith(".")) yield* sources(path);
    else if (e.isFile && e.name.endsWith(".ts")) yield path;
  }
}

// Spelled apart so that a search of the tree for the call finds only real uses.
const CALL = new RegExp(String.raw`^\s*\*.*console` + String.raw`\.assert\(`);

Deno.test("doc examples never assert with console's assert, which cannot fail a test", () => {
  const found: string[] = [];
  for (const file of [...sources(`${ROOT}engine`), ...sources(`${ROOT}steps`), `${ROOT}mod.ts`]) {
    Deno.readTextFileSync(file).split("\n").forEach((line, i) => {
      if (CALL.test(line)) found.push(`${file.slice(ROOT.length)}:${i + 1}`);
    });
  }
  assert.deepEqual(found, [], 'use `import assert from "node:assert/strict"` in @example blocks');
});
