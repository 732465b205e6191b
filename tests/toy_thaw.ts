/**
 * The real `thaw` command with the toy source of `toy_source.ts` registered: what a site's own
 * entry point looks like when it adds a source. `deno run -A tests/toy_thaw.ts drill rb.yaml`.
 *
 * @module
 */
import { registerSource } from "../mod.ts";
import { main } from "../engine/cli/cli.ts";
import { toySource } from "./toy_source.ts";

registerSource(toySource);

if (import.meta.main) {
  const encoder = new TextEncoder();
  const write = (fd: typeof Deno.stdout) => (text: string) => {
    const bytes = encoder.encode(text);
    for (let done = 0; done < bytes.length;) done += fd.writeSync(bytes.subarray(done));
  };
  const code = await main(Deno.args, {
    cwd: Deno.cwd(),
    stdout: write(Deno.stdout),
    stderr: write(Deno.stderr),
    tty: false,
  });
  Deno.exit(code);
}
