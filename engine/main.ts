/**
 * Entry point of the `thaw` command (`deno task thaw`, `deno task drill`).
 *
 * @module
 */
import { main } from "./cli/cli.ts";

if (import.meta.main) {
  const encoder = new TextEncoder();
  // Output that cannot be written (a terminal hung up, a pipe whose reader is gone, as with
  // `thaw status | head -1`) is dropped from then on: it must not stop a recovery.
  const write = (fd: typeof Deno.stdout) => {
    let broken = false;
    return (text: string) => {
      if (broken) return;
      const bytes = encoder.encode(text);
      try {
        for (let done = 0; done < bytes.length;) done += fd.writeSync(bytes.subarray(done));
      } catch {
        broken = true;
      }
    };
  };
  const code = await main(Deno.args, {
    cwd: Deno.env.get("INIT_CWD") ?? Deno.cwd(),
    stdout: write(Deno.stdout),
    stderr: write(Deno.stderr),
    tty: Deno.stdout.isTerminal(),
  });
  Deno.exit(code);
}
