/**
 * Entry point of the `thaw` command (`deno task thaw`, `deno task drill`).
 *
 * @module
 */
import { main } from "./cli/cli.ts";

if (import.meta.main) {
  const encoder = new TextEncoder();
  const write = (fd: typeof Deno.stdout) => (text: string) => {
    const bytes = encoder.encode(text);
    for (let done = 0; done < bytes.length;) done += fd.writeSync(bytes.subarray(done));
  };
  const code = await main(Deno.args, {
    cwd: Deno.env.get("INIT_CWD") ?? Deno.cwd(),
    stdout: write(Deno.stdout),
    stderr: write(Deno.stderr),
    tty: Deno.stdout.isTerminal(),
  });
  Deno.exit(code);
}
