/**
 * The PostgreSQL dialect of the store (`--store postgres://USER@HOST/DB`): several thaw
 * processes on several machines share the runs. Kysely's `PostgresDialect` over the `pg`
 * driver's pool.
 *
 * - `bigint` columns (milliseconds, bytes, tokens) come back as numbers (all stay well below
 *   2^53).
 * - A session idle inside a transaction for {@link IDLE_IN_TRANSACTION_MS} is ended by the
 *   server, and a statement waits at most {@link LOCK_TIMEOUT_MS} for a lock: an engine that is
 *   stopped (SIGSTOP) or whose machine dies mid-transaction cannot hold its run's row, so a
 *   standby can take the run over.
 * - The pool's connections pipeline: a transaction of the engine takes two round trips (BEGIN
 *   with its first statement, its writes with COMMIT), not one per statement; the statements
 *   sent together leave in one write, and each connection parses and plans each of the store's
 *   statements once (named prepared statements), then only binds values.
 * - Errors name the server (`host:port`) and give its words; a password in the URL is never
 *   shown.
 *
 * @module
 */
import type { Writable } from "node:stream";
import pg from "pg";
import { Kysely, PostgresDialect, type QueryResult, sql } from "kysely";
import { StoreError } from "../errors.ts";
import { redactUrl } from "./url.ts";
import { migrate, migrationsFor, POSTGRES_TYPES, type StoreDatabase } from "../migrations.ts";
import { type Failure, messageOf, type Row, type Send, type StoreDialect } from "./dialect.ts";

/** How long opening a connection may take before the store gives up, in ms. */
export const CONNECT_TIMEOUT_MS = 5000;
/** How long a statement waits for a lock another session holds, in ms. */
export const LOCK_TIMEOUT_MS = 5000;
/** After this long idle inside a transaction, the server ends the session (and its locks). */
export const IDLE_IN_TRANSACTION_MS = 3000;

/**
 * The server a URL names, as `host:port` (the socket directory for a Unix socket).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serverOf } from "./postgres.ts";
 * assert.equal(serverOf("postgres://u:pw@db1.example:6432/thaw"), "db1.example:6432");
 * assert.equal(serverOf("postgres://u@db1/thaw"), "db1:5432");
 * assert.equal(serverOf("postgres:///thaw?host=/run/pg&port=5433"), "/run/pg:5433");
 * ```
 */
export function serverOf(url: string): string {
  try {
    const u = new URL(url);
    const host = u.searchParams.get("host") ?? (decodeURIComponent(u.hostname) || "localhost");
    const port = u.port || u.searchParams.get("port") || "5432";
    return `${host}:${port}`;
  } catch {
    return "an unreadable URL";
  }
}

const NETWORK = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "ENOENT",
]);

function reach(server: string, code: string | undefined, m: string): string {
  const why = code === "ECONNREFUSED"
    ? "connection refused (is PostgreSQL running, and listening on that address?)"
    : code === "ENOTFOUND" || code === "EAI_AGAIN"
    ? "no such host"
    : code === "ENOENT"
    ? "no socket there (is PostgreSQL running?)"
    : /timeout/i.test(m)
    ? `no answer within ${CONNECT_TIMEOUT_MS / 1000}s`
    : m;
  return `cannot reach PostgreSQL at ${server}: ${why}`;
}

/** What an error of the `pg` driver (or the server) means for the store at `server`. */
export function classifyPostgres(e: unknown, server: string): Failure | undefined {
  const code = (e as { code?: unknown })?.code;
  const c = typeof code === "string" ? code : undefined;
  const m = messageOf(e);
  if (c === "23503") return { kind: "no-run" };
  if (c === "23505") return { kind: "exists" };
  if (c === "40P01" || c === "55P03" || c === "57014") {
    return { kind: "busy", why: `PostgreSQL at ${server} gave up waiting for a lock: ${m}` };
  }
  if (c !== undefined && NETWORK.has(c) || /Connection terminated|timeout expired/i.test(m)) {
    return { kind: "unreachable", why: reach(server, c, m) };
  }
  // Connection exceptions, the login refused, no such database, the server shutting down.
  if (c !== undefined && (/^(08|28)/.test(c) || c === "3D000" || /^57P0[1-3]$/.test(c))) {
    return { kind: "unreachable", why: `PostgreSQL at ${server} says: ${m}` };
  }
  return undefined;
}

function poolFor(url: string, max: number): pg.Pool {
  const base = pg.types;
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: "thaw",
    // Statements sent together go in one round trip (a transaction's writes and its COMMIT).
    pipeline: true,
    lock_timeout: LOCK_TIMEOUT_MS,
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
    types: {
      // bigint (int8) as a number: milliseconds, bytes and counts stay below 2^53.
      getTypeParser: ((oid: number, format?: string) =>
        oid === base.builtins.INT8
          ? (v: string) =>
            Number(v)
          : base.getTypeParser(oid, format as "text")) as typeof base.getTypeParser,
    },
  });
  // A connection the server ended (idle in the pool, or held between two statements) must not
  // end the process: the statement that uses it next fails with the reason, and the pool
  // connects anew.
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  return pool;
}

/**
 * Connects to the PostgreSQL database at `url` and migrates the schema to the latest version
 * (migrations take an advisory lock, so several thaw processes may open it at once). Throws a
 * {@link StoreError} naming the server and the cause (unreachable, the login refused, no such
 * database), never the password. `max` bounds the pool's connections.
 */
export async function openPostgres(url: string, max = 10): Promise<StoreDialect> {
  const where = redactUrl(url);
  const server = serverOf(url);
  const password = passwordOf(url);
  const message = (e: unknown) => {
    const m = messageOf(e);
    return password ? m.split(password).join("***") : m;
  };
  const classify = (e: unknown) => classifyPostgres(e, server);
  const fail = (e: unknown) => {
    const f = classify(e instanceof StoreError ? e.cause ?? e : e);
    const why = f?.kind === "unreachable" || f?.kind === "busy" ? f.why : message(e);
    return new StoreError(`cannot open the store ${where}: ${why}`, { cause: e });
  };
  let pool: pg.Pool;
  try {
    pool = poolFor(url, max);
  } catch (e) {
    throw fail(e);
  }
  const db = new Kysely<StoreDatabase>({ dialect: new PostgresDialect({ pool }) });
  const names = new StatementNames();
  try {
    await sql`select 1`.execute(db);
    await migrate(db, migrationsFor(POSTGRES_TYPES));
  } catch (e) {
    await db.destroy().catch(() => {});
    throw fail(e);
  }
  return {
    name: "postgres",
    where,
    db,
    types: POSTGRES_TYPES,
    // One clock for every machine: the server's.
    now: sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`,
    maxParams: 65535,
    begin: "begin",
    pipelines: true,
    // Row locks, not one write lock: numbering and fencing write the run's row to lock it.
    locksOnBegin: false,
    session: (fn) => session(pool, names, fn),
    classify,
    message,
    close: () => db.destroy(),
  };
}

function passwordOf(url: string): string {
  try {
    const u = new URL(url);
    return decodeURIComponent(u.password) || u.searchParams.get("password") || "";
  } catch {
    return "";
  }
}

/** Most statements a store keeps prepared on each connection. */
const MAX_NAMED = 256;

/**
 * Names for the statements a session sends, so that each connection parses and plans each of
 * them once (a named prepared statement) and only binds values after that.
 */
class StatementNames {
  readonly #names = new Map<string, string>();

  /** The name of the statement `sql` (undefined once {@link MAX_NAMED} are named). */
  of(sql: string): string | undefined {
    let name = this.#names.get(sql);
    if (name === undefined && this.#names.size < MAX_NAMED) {
      name = `thaw_${this.#names.size + 1}`;
      this.#names.set(sql, name);
    }
    return name;
  }
}

/**
 * Holds a pooled connection for `fn`; each `send` pipelines its statements (one round trip).
 * Statements with parameters run as named prepared statements.
 */
async function session<T>(
  pool: pg.Pool,
  names: StatementNames,
  fn: (send: Send) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const lost = (e: Error) => broken = e;
  client.on("error", lost);
  // The driver writes each statement as it is given (pipelined): corked, they leave in one write.
  const stream = (client as unknown as { connection?: { stream?: Partial<Writable> } })
    .connection?.stream;
  const send: Send = async (queries) => {
    stream?.cork?.();
    let sent: Promise<pg.QueryResult<Row>>[];
    try {
      sent = queries.map((q) =>
        q.parameters.length === 0
          ? client.query<Row>(q.sql)
          : client.query<Row>({ name: names.of(q.sql), text: q.sql, values: [...q.parameters] })
      );
    } finally {
      stream?.uncork?.();
    }
    const settled = await Promise.allSettled(sent);
    const failed = settled.find((r) => r.status === "rejected");
    if (failed) {
      const e = failed.reason;
      // A statement's error leaves the connection usable; a lost connection does not.
      if (!(typeof e?.code === "string" && /^[0-9A-Z]{5}$/.test(e.code))) broken = e;
      throw e;
    }
    return settled.map((r) => {
      const res = (r as PromiseFulfilledResult<pg.QueryResult<Row>>).value;
      const out: QueryResult<Row> = { rows: res.rows ?? [] };
      return res.command === "UPDATE" || res.command === "DELETE" || res.command === "INSERT"
        ? { ...out, numAffectedRows: BigInt(res.rowCount ?? 0) }
        : out;
    });
  };
  try {
    return await fn(send);
  } finally {
    client.off("error", lost);
    client.release(broken);
  }
}
