/**
 * The HTTP API for real: `thaw serve` in its own process reading the store while a live drill in
 * another process writes it, and `thaw run --listen` serving from the engine's own process,
 * cancelled over HTTP. Servers listen on 127.0.0.1 only.
 *
 * @module
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { RunDetailSchema, StepEventSchema } from "../engine/api/schemas.ts";
import { thawCommand } from "./paths.ts";
import { collectEvents } from "./sse.ts";

const MiB = 1024 * 1024;

/** The lines a child writes on one stream, as they come. */
class Lines {
  #text = "";
  #waiters: (() => void)[] = [];
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        this.#text += chunk;
        for (const w of this.#waiters.splice(0)) w();
      }
      for (const w of this.#waiters.splice(0)) w();
    })();
  }

  get text(): string {
    return this.#text;
  }

  /** The first match of `re` in what came so far, waiting up to `ms` for it. */
  async match(re: RegExp, ms = 30000): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    while (true) {
      const m = re.exec(this.#text);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`no ${re} in:\n${this.#text}`);
      await Promise.race([
        new Promise<void>((r) => this.#waiters.push(r)),
        new Promise((r) => setTimeout(r, 200)),
      ]);
    }
  }
}

function thaw(args: string[], cwd: string, env: Record<string, string> = {}) {
  const child = thawCommand(args, { cwd, env, stdout: "piped", stderr: "piped" }).spawn();
  return { child, stdout: new Lines(child.stdout), stderr: new Lines(child.stderr) };
}

async function writeData(path: string, bytes: number): Promise<void> {
  const block = crypto.getRandomValues(new Uint8Array(65536));
  const f = await Deno.open(path, { create: true, write: true, truncate: true });
  try {
    for (let n = 0; n < bytes; n += block.length) await f.write(block);
  } finally {
    f.close();
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 30000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function getJson(url: string) {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

/** A run of `seconds` of fetching over a capped link, with a service frozen on a small fetch. */
async function setup(dir: string, bigMiB: number, bandwidth: string, extra = ""): Promise<void> {
  await Deno.mkdir(join(dir, "backup"));
  await writeData(join(dir, "backup/small.bin"), MiB);
  await writeData(join(dir, "backup/big.bin"), bigMiB * MiB);
  await Deno.writeTextFile(
    join(dir, "rb.yaml"),
    `runbook: 1
name: served
bandwidth: ${bandwidth}
steps:
  - { id: fetch-small, fetch: { from: ./backup/small.bin, to: ./restore/small.bin, size: 1MiB } }
  - { id: fetch-big, fetch: { from: ./backup/big.bin, to: ./restore/big.bin, size: ${bigMiB}MiB } }
  - { id: start, needs: [fetch-small], run: "true", milestone: service, estimate: 0.1s }
  - { id: check, needs: [fetch-big, start], run: "test -s restore/big.bin", estimate: 0.1s }
${extra}`,
  );
}

Deno.test("thaw serve shows a live drill of another process as it runs, events and all", async () => {
  const dir = await Deno.makeTempDir();
  const serve = thaw(["serve", "--store", "state.db", "--listen", "127.0.0.1:0"], dir);
  let drill: ReturnType<typeof thaw> | undefined;
  try {
    await setup(dir, 24, "8MB/s");
    const url = (await serve.stdout.match(/status API on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
    drill = thaw(["drill", "rb.yaml", "--store", "state.db", "--json"], dir);
    const run = await until("the run in GET /runs", async () => {
      const { body } = await getJson(`${url}/runs`);
      return body[0]?.run as string | undefined;
    });
    const events = fetch(`${url}/runs/${run}/events`).then((r) => collectEvents(r.body!));
    // While it runs: its state, its live bytes, and a prediction.
    const mid = await until("a fetch under way in GET /runs/ID", async () => {
      const { body } = await getJson(`${url}/runs/${run}`);
      const detail = RunDetailSchema.parse(body);
      const big = detail.steps.find((s) => s.id === "fetch-big");
      return detail.state === "running" && big?.state === "running" && big.bytes! > 0
        ? detail
        : undefined;
    });
    ok(mid.predicted !== null, mid.predicted_note ?? "no note");
    ok(mid.predicted.btn_s! > 0);
    const [status, out] = await Promise.all([drill.child.status, drill.stdout.done]);
    equal(status.code, 0, drill.stderr.text);
    const report = JSON.parse(drill.stdout.text);
    const got = await events;
    const steps = got.filter((e) => e.event === "step");
    deepEqual(steps.map((e) => e.lastId), steps.map((_, k) => String(k + 1)));
    ok(
      steps.map((e) => StepEventSchema.parse(JSON.parse(e.data))).some((e) =>
        e.step === "start" && e.state === "frozen"
      ),
    );
    const progress = got.filter((e) => e.event === "progress").map((e) => JSON.parse(e.data));
    const big = progress.filter((p) => p.step === "fetch-big").map((p) => p.bytes as number);
    ok(big.length >= 2, `progress of fetch-big: ${big}`);
    deepEqual(big, [...big].sort((a, b) => a - b));
    deepEqual(
      got.filter((e) => e.event === "milestone").map((e) => JSON.parse(e.data)),
      [{ milestone: "service", at: report.milestones.service }],
    );
    const end = got.at(-1)!;
    equal(end.event, "end");
    deepEqual(JSON.parse(end.data), {
      state: "done",
      outcome: "met",
      ttr_s: report.ttr_s,
      btn_s: report.btn_s,
    });
    const after = RunDetailSchema.parse((await getJson(`${url}/runs/${run}`)).body);
    equal(after.state, "done");
    equal(after.btn_s, report.btn_s);
    void out;
  } finally {
    try {
      drill?.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await drill?.child.status;
    serve.child.kill("SIGTERM");
    const code = (await serve.child.status).code;
    await serve.stdout.done;
    await Deno.remove(dir, { recursive: true });
    equal(code, 0, serve.stderr.text);
    match(serve.stdout.text, /thaw serve: stopped/);
  }
});

Deno.test("thaw run --listen serves from the engine, and a cancel with the token stops it", async () => {
  const dir = await Deno.makeTempDir();
  let run: ReturnType<typeof thaw> | undefined;
  try {
    await setup(dir, 32, "4MB/s", "  - { id: wait, run: sleep 60, estimate: 1m }\n");
    run = thaw(["run", "rb.yaml", "--store", "state.db", "--listen", "127.0.0.1:0"], dir, {
      THAW_TOKEN: "tok-123",
    });
    const url = (await run.stderr.match(/status API on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
    const id = await until("a fetch under way", async () => {
      const { body } = await getJson(`${url}/runs`);
      if (!body[0]) return undefined;
      const detail = RunDetailSchema.parse((await getJson(`${url}/runs/${body[0].run}`)).body);
      const big = detail.steps.find((s) => s.id === "fetch-big");
      return big?.bytes ? detail.run : undefined;
    });
    const cancel = (token: string) =>
      fetch(`${url}/runs/${id}/cancel`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}` },
      });
    const wrong = await cancel("tok-12");
    equal(wrong.status, 401);
    await wrong.body?.cancel();
    const res = await cancel("tok-123");
    equal(res.status, 200);
    equal((await res.json()).state, "cancelled");
    const status = await run.child.status;
    equal(status.code, 1, run.stderr.text);
    deepEqual(
      await Array.fromAsync(Deno.readDir(join(dir, "restore"))).then((es) =>
        es.map((e) => e.name).filter((n) => n.includes("big"))
      ),
      [],
    );
  } finally {
    try {
      run?.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await run?.child.status;
    await Promise.all([run?.stdout.done, run?.stderr.done]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("thaw drill --listen lets a watcher of the run's events see its end, before it stops serving", async () => {
  const dir = await Deno.makeTempDir();
  let drill: ReturnType<typeof thaw> | undefined;
  try {
    await Deno.writeTextFile(
      join(dir, "rb.yaml"),
      "runbook: 1\nname: watched\nsteps:\n  - { id: a, run: 'sleep 1', estimate: 1s }\n",
    );
    drill = thaw(["drill", "rb.yaml", "--store", "state.db", "--listen", "127.0.0.1:0"], dir);
    const url = (await drill.stderr.match(/status API on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
    const id = await until("the run", async () => (await getJson(`${url}/runs`)).body[0]?.run);
    // As the run's page does: follow its events until the stream ends, whichever way.
    const res = await fetch(`${url}/runs/${id}/events`);
    const events = await collectEvents(res.body!, (e) => e.event === "end").catch(() => []);
    const status = await drill.child.status;
    equal(status.code, 0, drill.stderr.text);
    equal(events.at(-1)?.event, "end", JSON.stringify(events.map((e) => e.event)));
    equal(JSON.parse(events.at(-1)!.data).outcome, "met");
  } finally {
    try {
      drill?.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await drill?.child.status;
    await Promise.all([drill?.stdout.done, drill?.stderr.done]);
    await Deno.remove(dir, { recursive: true });
  }
});
