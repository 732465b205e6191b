/**
 * What the steering cases (`steer_cases_*.ts`, run by `steer_suite.ts`) share: the store under
 * test, the context a case gets and the `thaw` processes it starts, bounded waits, the runbooks
 * the cases steer, and small steps they take (start a run, wait for a step, ask `thaw serve`).
 *
 * @module
 */
import { equal, match } from "node:assert/strict";
import { join } from "node:path";
import type { Store } from "../engine/store/types.ts";

/** A store for one case: what `--store` names, and how to dispose of it. */
export interface StoreUnderTest {
  /** An SQLite file path or a `postgres://` URL, given to every command as `--store`. */
  readonly store: string;
  /** Where the README says step logs go, for commands run in `cwd`. */
  logs(cwd: string): string;
  /** A secret the store's URL holds, which no output may show (a password). */
  readonly secret?: string;
  cleanup(): Promise<void>;
}

/** The text a child writes on one stream, as it comes. */
export class Lines {
  #text = "";
  #ended = false;
  #wake: (() => void)[] = [];
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        this.#text += chunk;
        for (const w of this.#wake.splice(0)) w();
      }
    })().finally(() => {
      this.#ended = true;
      for (const w of this.#wake.splice(0)) w();
    });
  }

  get text(): string {
    return this.#text;
  }

  /** The first match of `re`, waiting up to `ms` for it. */
  async match(re: RegExp, ms = 20000): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    for (let m = re.exec(this.#text); !m; m = re.exec(this.#text)) {
      if (this.#ended || Date.now() > deadline) {
        throw new Error(
          `no ${re} ${this.#ended ? "before the end" : `within ${ms} ms`} in:\n${this.#text}`,
        );
      }
      await Promise.race([
        new Promise<void>((r) => this.#wake.push(r)),
        new Promise((r) => setTimeout(r, 100)),
      ]);
    }
    return re.exec(this.#text)!;
  }
}

/** A `thaw` process a case started, in its own process group. */
export interface Child {
  readonly process: Deno.ChildProcess;
  /** Set once the process has exited (its pid may then be another's). */
  ended: boolean;
  readonly stdout: Lines;
  readonly stderr: Lines;
}

/** What a finished command said. */
export interface Output {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** What a case gets: its directory, its store, and ways to run `thaw` there. */
export interface Ctx {
  readonly dir: string;
  readonly sut: StoreUnderTest;
  /** The store, opened by the test itself to wait on (never to steer). */
  watch(): Promise<Store>;
  /** `thaw ARGS --store STORE` to its end. */
  thaw(args: string[]): Promise<Output>;
  /** `thaw ARGS --store STORE` started (killed at the end of the case if still running). */
  spawn(args: string[], env?: Record<string, string>): Child;
  /** Fires at the end of the case (for event streams). */
  readonly signal: AbortSignal;
}

/** Whether process `pid` exists and is not a zombie (read from /proc). */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !"ZX".includes(stat[stat.lastIndexOf(")") + 2]!);
  } catch {
    return false;
  }
}

/** Polls `probe` every 50 ms until it gives a value, or throws after `ms` naming `what`. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 20000,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`, { cause: last });
}

/** `promise`, or an error naming `what` (a text, or made when the time is up) after `ms`. */
export async function within<T>(what: string | (() => string), promise: Promise<T>, ms = 20000) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const text = typeof what === "string" ? what : what();
      reject(new Error(`timed out after ${ms} ms waiting for ${text}`));
    }, ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The exit status of `child`, within `ms`. */
export function exited(child: Child, ms = 20000): Promise<Deno.CommandStatus> {
  const what = () => `thaw to exit; it said:\n${child.stdout.text}${child.stderr.text}`;
  return within(what, child.process.status, ms);
}

/** The pids written (one a line) to `file` in `dir`. */
export async function pidsIn(dir: string, file: string): Promise<number[]> {
  const text = await Deno.readTextFile(join(dir, file)).catch(() => "");
  return text.split("\n").filter(Boolean).map(Number);
}

export const GATE = `runbook: 1
name: steer-gate
steps:
  - { id: prep, run: "echo preparing" }
  - { id: gate, needs: [prep], run: "touch gated", approval: "Switch traffic?" }
  - { id: after, needs: [gate], run: "touch after", milestone: up }
`;

/** A step that runs until stopped: its shell (the group's leader) and a child write their pid. */
export const LONG = `runbook: 1
name: steer-cancel
steps:
  - { id: quick, run: "true" }
  - { id: long, run: 'sleep 30 & echo $! > sleep.pid; echo $$ > long.pid; wait' }
`;

export const RESUME = `runbook: 1
name: steer-resume
steps:
  - { id: restore, run: 'echo $$ >> restore.pids; [ -e fail ] && exit 1; sleep 30' }
  - { id: start, needs: [restore], run: "touch started", milestone: up }
`;

export const TOKEN = "steer-t0ken";

/** Writes `text` as `rb.yaml`, starts `thaw run rb.yaml`; the engine, its run id, the store. */
export async function start(t: Ctx, text: string) {
  await Deno.writeTextFile(join(t.dir, "rb.yaml"), text);
  const engine = t.spawn(["run", "rb.yaml"]);
  const started = await engine.stdout.match(/: starting run (\S+);/).catch((e) => {
    throw new Error(`${e.message}\nstderr:\n${engine.stderr.text}`);
  });
  const id = started[1]!;
  return { engine, id, store: await t.watch() };
}

/** Waits until `step` of run `id` has a stored detail matching `re` (while `engine` runs). */
export function stepDetail(store: Store, id: string, step: string, re: RegExp, engine: Child) {
  return until(`${step} of ${id} to match ${re}`, async () => {
    const s = (await store.steps(id)).find((x) => x.step === step);
    if (s?.detail && re.test(s.detail)) return s;
    const said = `${engine.stdout.text}${engine.stderr.text}`;
    return engine.ended ? new Error(`its engine exited:\n${said}`) : undefined;
  }).then((s) => {
    if (s instanceof Error) throw new Error(`${step} of ${id} never matched ${re}: ${s.message}`);
    return s;
  });
}

/** Waits until `step` of LONG or RESUME runs: the pids it wrote, once the store lists it. */
export async function running(t: Ctx, store: Store, id: string, step: string, files: string[]) {
  return await until(`${step} to run`, async () => {
    const pids = (await Promise.all(files.map((f) => pidsIn(t.dir, f)))).map((p) => p[0]);
    const recorded = (await store.processes(id)).some((p) => p.step === step);
    return recorded && pids.every((p) => p && alive(p)) ? pids as number[] : undefined;
  });
}

export const gone = (pids: number[]) =>
  until(`pids ${pids} to end`, () => pids.every((p) => !alive(p)) || undefined, 5000);

export const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/** The state and outcome of run `id` in `thaw status --json`. */
export async function listed(t: Ctx, id: string) {
  const r = await t.thaw(["status", "--json"]);
  equal(r.code, 0, r.stderr);
  const run = (JSON.parse(r.stdout) as { run: string; state: string; outcome: string | null }[])
    .find((x) => x.run === id);
  return [run?.state, run?.outcome];
}

/** A `thaw serve` with the token, and its address. */
export async function serve(t: Ctx) {
  const server = t.spawn(["serve", "--listen", "127.0.0.1:0"], { THAW_TOKEN: TOKEN });
  const url = (await server.stdout.match(/status API on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
  return { server, url };
}

/** Stops a `thaw serve` with SIGTERM: it says so and exits 0. */
export async function stopServe(server: Child): Promise<void> {
  server.process.kill("SIGTERM");
  equal((await exited(server)).code, 0, server.stderr.text);
  await server.stdout.done;
  match(server.stdout.text, /thaw serve: stopped/);
}

/** POSTs with `token` (none: no Authorization header): the status and the JSON body. */
export async function post(url: string, token?: string) {
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  const res = await fetch(url, { method: "POST", headers, signal: AbortSignal.timeout(15000) });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

export async function get(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(15000) });
  const text = await res.text();
  return {
    status: res.status,
    etag: res.headers.get("etag"),
    body: text ? JSON.parse(text) : null,
  };
}
