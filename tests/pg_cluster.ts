/**
 * A throwaway PostgreSQL cluster for tests: Debian's PostgreSQL (`/usr/lib/postgresql/N/bin`),
 * `initdb` in a temporary directory (as user `postgres` when the tests run as root: initdb
 * refuses root), listening on a free port of 127.0.0.1 (or every IPv4 address, for a network
 * {@link ClusterOptions.allowFrom} names) with its Unix socket in that directory, password login
 * over TCP. One cluster per test file ({@link sharedCluster}), a database per
 * test ({@link PgCluster.createDatabase}); stopped and removed at the end, also when a test
 * fails (and when the process exits early).
 *
 * Where PostgreSQL is missing, {@link noPostgres} says why, and the tests are ignored.
 *
 * @module
 */
import { join } from "node:path";
import pg from "pg";

function binDir(): string | undefined {
  try {
    const versions = [...Deno.readDirSync("/usr/lib/postgresql")]
      .map((e) => e.name).filter((n) => /^\d+$/.test(n)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const bin = `/usr/lib/postgresql/${v}/bin`;
      try {
        Deno.statSync(join(bin, "initdb"));
        Deno.statSync(join(bin, "pg_ctl"));
        return bin;
      } catch { /* try an older one */ }
    }
  } catch { /* no PostgreSQL */ }
  return undefined;
}

function idOf(flag: "-u" | "-g", name: string): number | undefined {
  const out = new Deno.Command("id", { args: [flag, name], stdout: "piped", stderr: "null" })
    .outputSync();
  return out.success ? Number(new TextDecoder().decode(out.stdout).trim()) : undefined;
}

/** The directory of PostgreSQL's programs, when installed. */
export const PG_BIN: string | undefined = binDir();

const asRoot = Deno.uid() === 0;
const pgUid = asRoot ? idOf("-u", "postgres") : undefined;
const pgGid = asRoot ? idOf("-g", "postgres") : undefined;

/** Why the PostgreSQL tests cannot run here, or undefined when they can. */
export const noPostgres: string | undefined = PG_BIN === undefined
  ? "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; " +
    "apt-get install postgresql)"
  : asRoot && pgUid === undefined
  ? "running as root and there is no user postgres to run initdb as"
  : undefined;

/** A running throwaway cluster. */
export interface PgCluster {
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** The superuser's password. */
  readonly password: string;
  /** A URL of database `db` on the cluster, as the superuser. */
  url(db: string): string;
  /** Creates a new, empty database (named `name`, or a fresh name) and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Stops the cluster and removes its directory; calling twice is fine. */
  stop(): Promise<void>;
}

/** Runs a PostgreSQL program as user postgres (as root) or as this user. */
function pgCommand(program: string, args: string[]): Deno.Command {
  const path = join(PG_BIN!, program);
  return asRoot
    ? new Deno.Command("setpriv", {
      args: [`--reuid=${pgUid}`, `--regid=${pgGid}`, "--init-groups", "--", path, ...args],
      stdout: "piped",
      stderr: "piped",
      env: { LC_ALL: "C" },
    })
    : new Deno.Command(path, { args, stdout: "piped", stderr: "piped", env: { LC_ALL: "C" } });
}

async function run(program: string, args: string[]): Promise<void> {
  const out = await pgCommand(program, args).output();
  if (!out.success) {
    const d = new TextDecoder();
    throw new Error(
      `${program} failed (${out.code}): ${d.decode(out.stderr)}${d.decode(out.stdout)}`,
    );
  }
}

function freePort(): number {
  using l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return l.addr.port;
}

/** How a cluster listens. */
export interface ClusterOptions {
  /**
   * A network (CIDR, e.g. the takeover rig's network namespaces' "10.213.0.0/16") whose hosts
   * may log in too (by password): the cluster then listens on every IPv4 address (0.0.0.0), and
   * pg_hba.conf lets in this network besides 127.0.0.1. Default: 127.0.0.1 only.
   */
  allowFrom?: string;
}

/**
 * Starts a new cluster; throws when PostgreSQL is missing ({@link noPostgres}). The caller
 * stops it.
 */
export async function startCluster({ allowFrom }: ClusterOptions = {}): Promise<PgCluster> {
  if (noPostgres) throw new Error(noPostgres);
  const dir = await Deno.makeTempDir({ prefix: "thaw-pg-" });
  const data = join(dir, "data");
  const password = crypto.randomUUID().replaceAll("-", "");
  const port = freePort();
  let stopped = false;
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    pgCommand("pg_ctl", ["stop", "-D", data, "-m", "immediate", "-w"]).outputSync();
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* already gone */ }
  };
  // A test file that ends early (an uncaught error) still stops the cluster.
  globalThis.addEventListener("unload", stopSync);
  try {
    if (asRoot) await Deno.chown(dir, pgUid!, pgGid!);
    await Deno.writeTextFile(join(dir, "pwfile"), `${password}\n`);
    if (asRoot) await Deno.chown(join(dir, "pwfile"), pgUid!, pgGid!);
    await run("initdb", [
      "-D",
      data,
      "-U",
      "postgres",
      `--pwfile=${join(dir, "pwfile")}`,
      "--auth-local=trust",
      "--auth-host=scram-sha-256",
      "-E",
      "UTF8",
      "--locale=C",
      "--no-sync",
    ]);
    if (allowFrom) {
      const hba = `host all all ${allowFrom} scram-sha-256\n`;
      await Deno.writeTextFile(join(data, "pg_hba.conf"), hba, { append: true });
    }
    const options = [
      `-p ${port}`,
      `-k ${dir}`,
      `-c listen_addresses=${allowFrom ? "0.0.0.0" : "127.0.0.1"}`,
      "-c fsync=off",
      "-c synchronous_commit=off",
      "-c full_page_writes=off",
      "-c shared_buffers=16MB",
      "-c max_connections=200",
    ].join(" ");
    await run("pg_ctl", [
      "start",
      "-D",
      data,
      "-w",
      "-t",
      "30",
      "-l",
      join(dir, "log"),
      "-o",
      options,
    ]);
  } catch (e) {
    stopSync();
    throw e;
  }
  const url = (db: string) =>
    `postgres://postgres:${password}@127.0.0.1:${port}/${encodeURIComponent(db)}`;
  let n = 0;
  return {
    port,
    password,
    url,
    async createDatabase(name = `t${++n}_${Date.now() % 100000}`) {
      const client = new pg.Client({ connectionString: url("postgres") });
      await client.connect();
      try {
        await client.query(`create database "${name}"`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    stop() {
      globalThis.removeEventListener("unload", stopSync);
      stopSync();
      return Promise.resolve();
    },
  };
}

let shared: Promise<PgCluster> | undefined;

/**
 * The test file's one cluster, started on first use (with the `options` of that first use).
 * Register {@link stopSharedCluster} as the file's last test (it also stops when the process
 * exits).
 */
export function sharedCluster(options: ClusterOptions = {}): Promise<PgCluster> {
  shared ??= startCluster(options);
  return shared;
}

/** Stops the test file's cluster, if one was started. */
export async function stopSharedCluster(): Promise<void> {
  if (shared === undefined) return;
  const c = shared;
  shared = undefined;
  await (await c.catch(() => undefined))?.stop();
}
