/**
 * The live page in a real browser: Debian's `chromium`, headless, driven with puppeteer-core,
 * reaching nothing but 127.0.0.1. A live drill serves its page with `--listen`; the test opens it
 * while the drill runs and checks that a step's state changes in the page without a reload, that
 * the timeline has a bar per step where the report's times put it, and keeps screenshots under
 * tests/artifacts/ (ignored by git). Without chromium the tests are ignored, and say why.
 *
 * @module
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { reportsPage } from "../engine/pages/pages.ts";
import { parseRunbook } from "../engine/runbook/load.ts";
import { simulate } from "../engine/simulate/simulate.ts";
import { fromFileUrl, thawCommand } from "./paths.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = fromFileUrl(new URL("./artifacts/", import.meta.url));
const MiB = 1024 * 1024;

const missing = await Deno.stat(CHROMIUM).then(() => false, () => true);
if (missing) {
  console.log(
    `browser_test: ignored: no ${CHROMIUM} (apt-get install -y chromium; .ci/run installs it)`,
  );
}

/** Chromium, headless, with every host but 127.0.0.1 unresolvable and no background traffic. */
async function launch(): Promise<Browser> {
  return await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 20000,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-default-apps",
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ],
  });
}

/** Closes the browser, killing it if it does not go within 5 s. */
async function shut(browser: Browser | undefined): Promise<void> {
  if (!browser) return;
  const proc = browser.process();
  const timer = setTimeout(() => proc?.kill("SIGKILL"), 5000);
  try {
    await browser.close();
  } catch {
    proc?.kill("SIGKILL");
  } finally {
    clearTimeout(timer);
  }
}

/** Every request the page makes, to check that none leaves 127.0.0.1 (or a file). */
function watchRequests(page: Page): string[] {
  const urls: string[] = [];
  page.on("request", (r) => void urls.push(r.url()));
  return urls;
}

async function writeData(path: string, bytes: number): Promise<void> {
  const block = crypto.getRandomValues(new Uint8Array(65536));
  using f = await Deno.open(path, { create: true, write: true, truncate: true });
  for (let n = 0; n < bytes; n += block.length) await f.write(block);
}

/**
 * A drill of a few seconds: a service frozen on a small fetch while a big one crosses the link,
 * then two steps that wait for a person's approval (the test gives them over HTTP): the run cannot
 * end, and its server go, before the test has seen what it wants.
 */
async function setup(dir: string): Promise<void> {
  await Deno.mkdir(join(dir, "backup"));
  await writeData(join(dir, "backup/small.bin"), MiB);
  await writeData(join(dir, "backup/big.bin"), 8 * MiB);
  await Deno.writeTextFile(
    join(dir, "rb.yaml"),
    `runbook: 1
name: browser-drill
bandwidth: 4MB/s
objectives: { rto: 30s, btn: 1m }
steps:
  - { id: fetch-small, fetch: { from: ./backup/small.bin, to: ./restore/small.bin, size: 1MiB } }
  - { id: fetch-big, fetch: { from: ./backup/big.bin, to: ./restore/big.bin, size: 8MiB } }
  - { id: start, needs: [fetch-small], run: "true", milestone: service, estimate: 0.1s }
  - { id: check, needs: [fetch-big, start], run: "test -s restore/big.bin", estimate: 0.1s }
  - { id: hold1, needs: [check], run: "true", estimate: 0.1s, approval: "first look" }
  - { id: hold2, needs: [hold1], run: "true", estimate: 0.1s, approval: "second look" }
`,
  );
}

/** Reads a child's stream into a string as it comes; `match` waits for a pattern. */
function reader(stream: ReadableStream<Uint8Array>) {
  let text = "";
  const done = (async () => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text += chunk;
  })();
  return {
    done,
    get text() {
      return text;
    },
    async match(re: RegExp, ms = 30000): Promise<RegExpExecArray> {
      for (const end = Date.now() + ms; Date.now() < end;) {
        const m = re.exec(text);
        if (m) return m;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`no ${re} in:\n${text}`);
    },
  };
}

/** Where each bar is drawn (its rendered box, in the SVG's own units) and the axis scale. */
async function barsInPage(page: Page) {
  return await page.evaluate(`(() => {
    const svg = document.querySelector("svg.timeline");
    const x0 = Number(svg.getAttribute("data-x0"));
    const k = Number(svg.getAttribute("data-px-per-s"));
    const bars = [...svg.querySelectorAll("rect.bar")].map((b) => {
      const box = b.getBBox();
      return { step: b.getAttribute("data-step"), x: box.x, w: box.width };
    });
    return { x0, k, bars };
  })()`) as { x0: number; k: number; bars: { step: string; x: number; w: number }[] };
}

const TOKEN = "browser-test-token";

/** Approves `step` of `run` over HTTP, as a person would. */
async function approve(url: string, run: string, step: string): Promise<void> {
  const res = await fetch(`${url}/runs/${run}/steps/${step}/approve`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
  await res.body?.cancel();
  ok(res.status < 300, `approve ${step}: ${res.status}`);
}

/** The `data-start` and `data-end` of each done step's bar, as the page draws them. */
async function doneTimes(page: Page): Promise<Record<string, [number, number]>> {
  return await page.evaluate(`Object.fromEntries([...document.querySelectorAll(
    "svg.timeline rect.bar.done")].map((b) => [b.getAttribute("data-step"),
    [Number(b.getAttribute("data-start")), Number(b.getAttribute("data-end"))]]))`) as Record<
    string,
    [number, number]
  >;
}

Deno.test({
  name: "the live page follows a drill in chromium: states change without reload, bars in place",
  ignore: missing,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    let browser: Browser | undefined;
    await setup(dir);
    const drill = thawCommand(
      ["drill", "rb.yaml", "--store", "state.db", "--json", "--listen", "127.0.0.1:0"],
      { cwd: dir, stdout: "piped", stderr: "piped", env: { THAW_TOKEN: TOKEN } },
    ).spawn();
    const out = reader(drill.stdout), err = reader(drill.stderr);
    try {
      const url = (await err.match(/status API on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
      let run: string | undefined;
      for (let k = 0; k < 200 && !run; k++) {
        run = (await (await fetch(`${url}/runs`)).json())[0]?.run;
        if (!run) await new Promise((r) => setTimeout(r, 50));
      }
      ok(run, "the drill's run in GET /runs");
      browser = await launch();
      const page = await browser.newPage();
      await page.setViewport({ width: 1100, height: 1000 });
      const requests = watchRequests(page);
      await page.goto(`${url}/runs/${run}/page`, { waitUntil: "domcontentloaded" });
      await page.evaluate(`globalThis.marker = 42`);
      // hold1 waits for its approval (the page may have been opened before: then it saw it come).
      await page.waitForFunction(
        `document.querySelector('tr[data-step="hold1"] .detail')?.textContent.includes("first look")`,
        { timeout: 30000, polling: 100 },
      );
      equal(
        await page.$eval('tr[data-step="hold1"]', (tr) => tr.getAttribute("data-state")),
        "running",
      );
      await page.screenshot({ path: join(ARTIFACTS, "browser_live_waiting.png"), fullPage: true });
      await approve(url, run, "hold1");
      // The page follows: hold1 done in the table and on the timeline, hold2 now waiting.
      await page.waitForFunction(
        `document.querySelector('tr[data-step="hold1"]')?.getAttribute("data-state") === "done" &&
        document.querySelector('svg.timeline rect.bar.done[data-step="hold1"]') !== null &&
        document.querySelector('tr[data-step="hold2"] .detail')?.textContent.includes("second look")`,
        { timeout: 20000, polling: 100 },
      );
      equal(await page.evaluate(`globalThis.marker`), 42, "the page was reloaded");
      const { x0, k, bars } = await barsInPage(page);
      deepEqual(bars.map((b) => b.step), [
        "fetch-small",
        "fetch-big",
        "start",
        "check",
        "hold1",
        "hold2",
      ]);
      const shown = await doneTimes(page);
      await page.screenshot({ path: join(ARTIFACTS, "browser_live.png"), fullPage: true });
      const chart = await page.$(".chart");
      await chart!.screenshot({ path: join(ARTIFACTS, "browser_timeline.png") });
      await approve(url, run, "hold2");
      const status = await drill.status;
      await out.done;
      equal(status.code, 0, err.text);
      const report = JSON.parse(out.text);
      // Each bar drawn where the report's times put it (its rendered box, not only its attributes).
      for (const id of ["fetch-small", "fetch-big", "start", "check", "hold1"]) {
        const s = report.steps.find((x: { id: string }) => x.id === id);
        deepEqual(shown[id], [s.start_s, s.end_s], id);
        const b = bars.find((x) => x.step === id)!;
        ok(Math.abs(b.x - (x0 + s.start_s * k)) < 0.1, `${id}: x ${b.x}`);
        ok(b.w === 1 || Math.abs(b.x + b.w - (x0 + s.end_s * k)) < 0.1, `${id}: w ${b.w}`);
      }
      const away = requests.filter((u) => !u.startsWith(url + "/"));
      deepEqual(away, [], "the page loads nothing but from thaw");
    } finally {
      await shut(browser);
      try {
        drill.kill("SIGKILL");
      } catch { /* already gone */ }
      await drill.status;
      await Promise.all([out.done, err.done]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a report page runs none of a hostile runbook's text in chromium, and shows it as text",
  ignore: missing,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const hostile = `<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>`;
    const rb = parseRunbook(
      "runbook: 1\nname: tiny\nsteps:\n  - { id: a, run: 'true', estimate: 1s }\n",
      "t.yaml",
    );
    const r = simulate(rb);
    const report = { ...r, runbook: hostile, steps: [{ ...r.steps[0]!, detail: hostile }] };
    const dir = await Deno.makeTempDir();
    let browser: Browser | undefined;
    try {
      const file = join(dir, "report.html");
      await Deno.writeTextFile(file, reportsPage([report]));
      browser = await launch();
      const page = await browser.newPage();
      await page.goto(`file://${file}`, { waitUntil: "load" });
      equal(await page.evaluate(() => (globalThis as { pwned?: number }).pwned), undefined);
      equal(await page.$eval('tr[data-step="a"] .detail', (td) => td.textContent), hostile);
      equal(await page.$$eval("img", (imgs) => imgs.length), 0);
    } finally {
      await shut(browser);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
