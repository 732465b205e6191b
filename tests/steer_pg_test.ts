/**
 * The steering suite (`steer_suite.ts`) on a PostgreSQL store: one throwaway cluster for the file
 * (`pg_cluster.ts`), a new database per test, dropped after it. Every command gets the
 * `postgres://` URL with `--store`; none may show its password.
 *
 * Ignored, with a line saying why, where PostgreSQL is not installed.
 *
 * @module
 */
import { join } from "node:path";
import pg from "pg";
import { noPostgres, sharedCluster, stopSharedCluster } from "./pg_cluster.ts";
import { steerSuite } from "./steer_suite.ts";

const ignore = noPostgres !== undefined;
if (noPostgres) console.warn(`steer_pg_test: PostgreSQL tests ignored: ${noPostgres}`);

steerSuite("PostgreSQL", async () => {
  const cluster = await sharedCluster();
  const url = await cluster.createDatabase();
  const db = decodeURIComponent(new URL(url).pathname.slice(1));
  return {
    store: url,
    logs: (cwd) => join(cwd, ".thaw", "logs"),
    secret: cluster.password,
    async cleanup() {
      const client = new pg.Client({ connectionString: cluster.url("postgres") });
      await client.connect();
      try {
        await client.query(`drop database if exists "${db}" with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}, { ignore });

Deno.test({
  name: "the PostgreSQL cluster of this file stops, when the tests are done",
  ignore,
  sanitizeResources: false,
  fn: stopSharedCluster,
});
