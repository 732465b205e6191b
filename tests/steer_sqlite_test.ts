/**
 * The steering suite (`steer_suite.ts`) on an SQLite store: a new file per test, in a directory
 * of its own beside the case's working directory.
 *
 * @module
 */
import { join } from "node:path";
import { steerSuite } from "./steer_suite.ts";

steerSuite("SQLite", async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw-steer-store-" });
  return {
    store: join(dir, "state.db"),
    logs: () => join(dir, "logs"),
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
});
