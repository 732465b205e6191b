/**
 * Quoting contexts x hostile values, through the real `bash` and `sh`: every value must come back
 * as exactly itself, one word, and run nothing. The contexts cover every form of parameter
 * expansion (`"${x:-V}"`, `${x#V}`, `"${x/V/r}"`...) where brace expansion once escaped the
 * quoting, and the other places a value can stand in. Fixed seed; all cases of a context run in
 * one shell process, so a few thousand cases take seconds.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseTemplate } from "../engine/runbook/expressions.ts";
import { renderCommand, shellQuote } from "../engine/runbook/shell.ts";
import { hostileValues, prng } from "./shell_fuzz.ts";

/** Where a value stands: `src` uses `${{ vars.v }}`; `s` is set to `subject(v)` first. */
interface Context {
  readonly src: string;
  /** What `p` (prints its argument count, then each argument in brackets) prints. */
  readonly want: (v: string) => string;
  readonly subject?: (v: string) => string;
  readonly bashOnly?: boolean;
  /** Patterns: the empty value means something else there (`${s/""/r}`). */
  readonly nonEmpty?: boolean;
}

const V = "${{ vars.v }}";
const one = (v: string) => `1:[${v}]`;
const both = (v: string) => `2:[${v}][${v}]`;

/** Every form of parameter expansion that takes a word, quoted and not, and nested. */
const PARAM: Context[] = [
  ...["-", ":-", "=", ":="].flatMap((op) => [
    { src: `p "\${u${op}${V}}"`, want: one },
    // Unquoted, `${u=V}` gives the new value of u, which is split like any unquoted expansion.
    ...(op.endsWith("=") ? [] : [{ src: `p \${u${op}${V}}`, want: one }]),
    { src: `p "\${u${op}"${V}"}"`, want: one },
    { src: `p "\${u${op}x${V}y}"`, want: (v: string) => one(`x${v}y`) },
  ]),
  ...["+", ":+"].flatMap((op) => [
    { src: `p "\${s${op}${V}}"`, want: one },
    { src: `p \${s${op}${V}}`, want: one },
    { src: `p "\${s${op}"${V}"}"`, want: one },
    { src: `p "\${s${op}[${V}]}"`, want: (v: string) => one(`[${v}]`) },
  ]),
  ...["#", "##"].flatMap((op) => [
    { src: `p "\${s${op}${V}}"`, want: () => one("rest"), subject: (v: string) => v + "rest" },
    { src: `p \${s${op}${V}}`, want: () => one("rest"), subject: (v: string) => v + "rest" },
  ]),
  ...["%", "%%"].flatMap((op) => [
    { src: `p "\${s${op}${V}}"`, want: () => one("rest"), subject: (v: string) => "rest" + v },
    { src: `p \${s${op}${V}}`, want: () => one("rest"), subject: (v: string) => "rest" + v },
  ]),
  ...["/", "//", "/#", "/%"].flatMap((op) => [
    {
      src: `p "\${s${op}${V}/R}"`,
      want: () => one(op === "/#" ? "R\x01" : op === "/%" ? "\x01R" : "\x01R\x01"),
      subject: (v: string) => op === "/#" ? `${v}\x01` : op === "/%" ? `\x01${v}` : `\x01${v}\x01`,
      bashOnly: true,
      nonEmpty: true,
    },
    {
      src: `p "\${s${op}Q/${V}}"`,
      want: (v: string) =>
        one(op === "/#" ? `${v}\x01` : op === "/%" ? `\x01${v}` : `\x01${v}\x01`),
      subject: () => (op === "/#" ? "Q\x01" : op === "/%" ? "\x01Q" : "\x01Q\x01"),
      bashOnly: true,
    },
  ]),
  { src: `p "\${u:-"\${w:-${V}}"}"`, want: one },
  { src: `p "\${u:-"<${V}>"}"`, want: (v) => one(`<${v}>`) },
  { src: `p "$(cat <<EOF\n\${u:-${V}}.\nEOF\n)"`, want: (v) => one(`${v}.`) },
  { src: 'p "`printf %s. "\\${u:-' + V + '}"`"', want: (v) => one(`${v}.`) },
  { src: `p "\${u:-\${w:-${V}}}"`, want: one },
  { src: `p "\${u:-${V}}\${w:-${V}}"`, want: (v) => one(v + v) },
  { src: `p "\${u:-${V}}" "\${w:-${V}}"`, want: both },
  // bash keeps the quotes of '...' in "${u:-...}" (POSIX): they stay in the value.
  { src: `p "\${u:-'${V}'}"`, want: (v) => one(`'${v}'`), bashOnly: true },
  { src: `p \${u:-'${V}'}`, want: one },
  { src: `p "\${u:-$(printf %s. ${V})}"`, want: (v) => one(`${v}.`) },
  { src: `p {a,b}"\${u:-${V}}"`, want: (v) => `2:[a${v}][b${v}]`, bashOnly: true },
];

/** The other places: bare, quotes, substitutions, a here-document. */
const OTHER: Context[] = [
  { src: `p ${V}`, want: one },
  { src: `p --root=${V}/x`, want: (v) => one(`--root=${v}/x`) },
  { src: `p "[${V}]"`, want: (v) => one(`[${v}]`) },
  { src: `p '[${V}]'`, want: (v) => one(`[${v}]`) },
  { src: `p "$(printf '%s.' ${V})"`, want: (v) => one(`${v}.`) },
  { src: `p "$(printf '%s.' "${V}")"`, want: (v) => one(`${v}.`) },
  { src: `p "\`printf '%s.' ${V}\`"`, want: (v) => one(`${v}.`) },
  { src: `p "$(cat <<EOF\n${V}.\nEOF\n)"`, want: (v) => one(`${v}.`) },
  { src: `p $'[${V}]'`, want: (v) => one(`[${v}]`), bashOnly: true },
  // Brace expansion reads $'\'' as a quote left open: the value after it is escaped instead.
  { src: `p $'\\''${V}`, want: (v) => one(`'${v}`), bashOnly: true },
  { src: `p {a,b}${V}`, want: (v) => `2:[a${v}][b${v}]`, bashOnly: true },
  { src: `p ${V}{a,b}`, want: (v) => `2:[${v}a][${v}b]`, bashOnly: true },
  { src: `p "{${V}}"`, want: (v) => one(`{${v}}`) },
];

/** Renders `src` with the value `v`. */
function render(src: string, v: string): string {
  const t = parseTemplate(src);
  if (!("parts" in t)) throw new Error(`bad template ${src}`);
  return renderCommand(t, () => v);
}

/** Runs every value of `values` in `context` in one `shell`; the outputs and the files left. */
async function runAll(shell: string, context: Context, values: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "thaw_shell_fuzz_" });
  try {
    const lines = values.map((v) =>
      `unset u w; s=${shellQuote(context.subject?.(v) ?? "set")}\n${
        render(context.src, v)
      }\nprintf '\\000'`
    );
    const script = `p() { printf '%s:' "$#"; printf '[%s]' "$@"; }\n${lines.join("\n")}\n`;
    const r = await new Deno.Command(shell, {
      args: ["-c", script],
      cwd: dir,
      env: { HOME: "/home/thaw", PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    const files = [...Deno.readDirSync(dir)].map((e) => e.name);
    return {
      outs: dec.decode(r.stdout).split("\0").slice(0, -1),
      err: dec.decode(r.stderr),
      files,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Checks `context` with `values` in bash and sh; the first difference, or undefined. */
async function check(context: Context, values: string[]): Promise<string | undefined> {
  const vs = context.nonEmpty ? values.filter((v) => v !== "") : values;
  for (const shell of context.bashOnly ? ["bash"] : ["bash", "sh"]) {
    const r = await runAll(shell, context, vs);
    if (r.files.length) return `${shell}: ${context.src}: a value created ${r.files.join(", ")}`;
    for (const [k, v] of vs.entries()) {
      if (r.outs[k] === context.want(v)) continue;
      return `${shell}: ${context.src} with ${JSON.stringify(v)}\n  rendered ${
        JSON.stringify(render(context.src, v))
      }\n  printed ${JSON.stringify(r.outs[k])}, wanted ${JSON.stringify(context.want(v))}\n` +
        r.err.slice(0, 300);
    }
  }
  return undefined;
}

Deno.test("renderCommand() keeps every value one literal word, when brace expansion reads a parameter expansion around it", async () => {
  const values = hostileValues(prng(0x7ea5e), 80);
  const failures = (await Promise.all(PARAM.map((c) => check(c, values)))).filter(Boolean);
  assert.deepEqual(failures, []);
});

Deno.test("renderCommand() keeps every value one literal word, when it stands bare, quoted or substituted", async () => {
  const values = hostileValues(prng(0xb4ace), 80);
  const failures = (await Promise.all(OTHER.map((c) => check(c, values)))).filter(Boolean);
  assert.deepEqual(failures, []);
});

Deno.test('renderCommand() writes {touch,/tmp/x} so that it runs nothing, when it stands in "${RESTORE_DIR:-...}"', async () => {
  const dir = await Deno.makeTempDir({ prefix: "thaw_shell_fuzz_" });
  try {
    const cmd = render(`"\${RESTORE_DIR:-${V}}"`, `{touch,${dir}/x}`);
    await new Deno.Command("bash", { args: ["-c", cmd], stderr: "null" }).output();
    assert.deepEqual([...Deno.readDirSync(dir)], [], cmd);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
