import { deepEqual, equal, throws } from "node:assert/strict";
import { parseTemplate } from "../engine/runbook/expressions.ts";
import { renderCommand, shellQuote } from "../engine/runbook/shell.ts";

/** Renders `src` with every reference standing for `v`. */
function render(src: string, v: string): string {
  const t = parseTemplate(src);
  if (!("parts" in t)) throw new Error(`bad template ${src}: ${JSON.stringify(t.problems)}`);
  return renderCommand(t, () => v);
}

interface Ran {
  out: string;
  err: string;
  files: string[];
}

/** Runs `script` with `shell -c` in a fresh directory; what it printed and the files it left. */
async function sh(shell: string, script: string): Promise<Ran> {
  const dir = await Deno.makeTempDir({ prefix: "thaw_shell_" });
  try {
    const r = await new Deno.Command(shell, {
      args: ["-c", script],
      cwd: dir,
      env: { HOME: "/home/thaw" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const files = [...Deno.readDirSync(dir)].map((e) => e.name);
    const dec = new TextDecoder();
    return { out: dec.decode(r.stdout), err: dec.decode(r.stderr), files };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const SHELLS = ["bash", "sh"];

interface Place {
  name: string;
  src: string;
  want: (v: string) => string;
  bashOnly?: boolean;
}

const PLACES: Place[] = [
  { name: "bare", src: "printf '%s' ${{ vars.v }}", want: (v) => v },
  {
    name: "bare, glued to text",
    src: "printf '%s' --root=${{ vars.v }}/x",
    want: (v) => `--root=${v}/x`,
  },
  { name: 'inside "..."', src: "printf '%s' \"[${{ vars.v }}]\"", want: (v) => `[${v}]` },
  { name: "inside '...'", src: "printf '%s' '[${{ vars.v }}]'", want: (v) => `[${v}]` },
  {
    name: 'bare in $( ) inside "..."',
    src: "printf '%s' \"$(printf '%s.' ${{ vars.v }})\"",
    want: (v) => `${v}.`,
  },
  {
    name: '"..." in $( ) inside "..."',
    src: "printf '%s' \"$(printf '%s.' \"${{ vars.v }}\")\"",
    want: (v) => `${v}.`,
  },
  {
    name: "bare in backquotes",
    src: "printf '%s' \"`printf '%s.' ${{ vars.v }}`\"",
    want: (v) => `${v}.`,
  },
  {
    name: '${x:-...} inside "..."',
    src: "printf '%s' \"${thaw_unset:-${{ vars.v }}}\"",
    want: (v) => v,
  },
  { name: "here-document", src: "cat <<EOF\n${{ vars.v }}\nEOF", want: (v) => `${v}\n` },
  {
    name: "$'...'",
    src: "printf '%s' $'[${{ vars.v }}]'",
    want: (v) => `[${v}]`,
    bashOnly: true,
  },
];

const HOSTILE = [
  '"; touch X; "',
  "$(touch X)",
  "'; touch X; '",
  "`touch X`",
  "$HOME",
  "line 1\nline 2\n",
  "\nEOF\ntouch X\n",
  "back\\slash\\",
  "\\'\\\"\\",
  "*",
  "<(touch X)",
  "",
];

/**
 * Runs every value at `place` in one script, outputs separated by NUL; checks each output, and
 * that no file appeared. In `sh`, `$'...'` does not exist: only the absence of files is checked.
 */
async function check(place: Place, values: string[]): Promise<void> {
  const script = values.map((v) => `${render(place.src, v)}\nprintf '\\000'`).join("\n");
  for (const shell of SHELLS) {
    const r = await sh(shell, script);
    const where = `${place.name}, ${shell}: ${r.err}`;
    deepEqual(r.files, [], `a value created a file (${where})`);
    if (place.bashOnly && shell !== "bash") continue;
    const outs = r.out.split("\0");
    deepEqual(outs.slice(0, -1), values.map(place.want), where);
  }
}

Deno.test("shellQuote() writes one single-quoted word, when the value holds quotes or nothing", () => {
  equal(shellQuote("a b"), "'a b'");
  equal(shellQuote("it's"), "'it'\\''s'");
  equal(shellQuote(""), "''");
});

Deno.test("renderCommand() quotes a value as one word, when it stands bare", () => {
  equal(render("rm -rf ${{ vars.v }}", "a b; c"), "rm -rf 'a b; c'");
  equal(render("x --root=${{ vars.v }}/db", "it's"), "x --root='it'\\''s'/db");
  equal(render("x ${{ vars.v }}", ""), "x ''");
});

Deno.test("renderCommand() keeps a value literal, when it stands inside double quotes", () => {
  equal(render('cp "${{ vars.v }}/db.dump" .', 'a"$b`c\\d'), 'cp "a\\"\\$b\\`c\\\\d/db.dump" .');
  equal(render('x "${{ vars.v }}"', "l1\nl2 'q'"), "x \"l1\nl2 'q'\"");
});

Deno.test("renderCommand() closes and reopens the quote, when a value stands inside single quotes", () => {
  equal(render("x '<${{ vars.v }}>'", "it's"), "x '<it'\\''s>'");
  equal(render("x $'<${{ vars.v }}>'", "it's \\n"), "x $'<it'\\'$'s \\\\n>'");
});

Deno.test("renderCommand() opens a fresh bare context, when a value stands in $( ) or backquotes", () => {
  equal(render('x "$(cat ${{ vars.v }})"', "a b"), "x \"$(cat 'a b')\"");
  equal(render('x "$(cat "${{ vars.v }}")"', "a$b"), 'x "$(cat "a\\$b")"');
  equal(render("x `cat ${{ vars.v }}`", "a`b$c"), "x `cat 'a\\`b\\$c'`");
  equal(
    render("x $(case y in y) cat ${{ vars.v }};; esac) z", "a b"),
    "x $(case y in y) cat 'a b';; esac) z",
  );
  equal(render('x "$(echo ")") ${{ vars.v }}"', "$y"), 'x "$(echo ")") \\$y"');
});

Deno.test("renderCommand() quotes for the expansion, when a value stands in ${...}", () => {
  equal(render('x "${y:-${{ vars.v }}}"', "a'b$c"), 'x "${y:-a"\'b\\$c"}"');
  equal(render("x ${y:-${{ vars.v }}}", "a b"), "x ${y:-'a b'}");
  equal(render(`x "\${y:-'\${{ vars.v }}'}"`, "a'b"), `x "\${y:-'a$(printf \\\\047)b'}"`);
});

Deno.test('renderCommand() keeps bash\'s parser on track, when a value stands in "${...}"', () => {
  equal(render('x "${y:-${{ vars.v }}}"', "<(a"), 'x "${y:-"<${-:+}(a"}"');
  equal(render('x "${y:-"${{ vars.v }}"}"', ">(a"), 'x "${y:-">${-:+}(a"}"');
  equal(render('x "<(${{ vars.v }}"', "<(a"), 'x "<(<(a"');
  equal(render(`x "\${y:-'}" \${{ vars.v }}`, "a b"), `x "\${y:-'}" 'a b'`);
});

Deno.test('renderCommand() reads special parameters whole, when "$" is followed by one', () => {
  equal(render("x $${x#<<EOF\n${{ vars.v }}", "$(y)"), "x $${x#<<EOF\n\\$(y)"); // a here-document
  equal(render('x "$#${{ vars.v }}"', "a"), 'x "$#a"');
});

Deno.test('renderCommand() unescapes \\" in backquotes as bash does, when they stand in "${...}"', () => {
  equal(render('x "`y \\"${{ vars.v }}\\"`"', "a b"), 'x "`y \\"a b\\"`"');
  equal(render('x "${y:-`z \\"${{ vars.v }}\\"`}"', "a b"), 'x "${y:-`z \\\\"\'a b\'\\\\"`}"');
});

Deno.test("renderCommand() escapes every symbol, when a value stands in arithmetic", () => {
  equal(render("echo $(( ${{ vars.v }} + 1 ))", "41"), "echo $(( 41 + 1 ))");
  equal(render("echo $(( ${{ vars.v }} ))", "a[$(x)]"), "echo $(( a\\[\\$\\(x\\)\\] ))");
  equal(render("a[${{ vars.v }}]=1", "-1"), "a[-1]=1");
  equal(
    render('echo "${a[${{ vars.v }}]} ${s:${{ vars.v }}}"', "1 2"),
    'echo "${a[1\\ 2]} ${s:1\\ 2}"',
  );
  equal(
    render("((${{ vars.v }} > 1)); for ((i=${{ vars.v }};;)); do :; done", "'"),
    "((\\' > 1)); for ((i=\\';;)); do :; done",
  );
});

Deno.test("renderCommand() keeps a comment on its line, when a value with newlines stands there", () => {
  equal(
    render("echo hi # ${{ vars.v }}\necho ${{ vars.v }}", "a\nb"),
    "echo hi # 'a'$'\\n''b'\necho 'a\nb'",
  );
  equal(render("echo a#${{ vars.v }}", "b c"), "echo a#'b c'");
});

Deno.test("renderCommand() neutralizes the text before a reference, when it would change the value", () => {
  equal(render("x \\${{ vars.v }}", "'a"), "x \\\\''\\''a'");
  equal(render('x "$${{ vars.v }}"', "(y)"), 'x "${-+$}(y)"');
  equal(render("x $${{ vars.v }}", "y"), "x ${-+$}'y'");
  equal(render('x "$HOME${{ vars.v }}"', "_x"), 'x "$HOME${-:+}_x"');
});

Deno.test("renderCommand() keeps a here-document open, when a value holds its delimiter line", () => {
  equal(render("cat <<EOF\n${{ vars.v }}\nEOF", "a$b\nEOF"), "cat <<EOF\na\\$b\n${-:+}EOF\nEOF");
  equal(render("cat <<-EOF\n${{ vars.v }}\nEOF", "\tEOF"), "cat <<-EOF\n${-:+}\tEOF\nEOF");
  equal(render("cat <<EOF\n${{ vars.v }}EOF\nEOF", ""), "cat <<EOF\n${-:+}EOF\nEOF");
  equal(
    render("cat <<'EOF'\n${{ vars.v }}\nEOF\nx ${{ vars.v }}", "$a"),
    "cat <<'EOF'\n$a\nEOF\nx '$a'",
  );
  equal(
    render("cat <<EOF; x ${{ vars.v }}\n\"${{ vars.v }}\n'EOF\nEOF\nx", "'"),
    "cat <<EOF; x ''\\'''\n\"'\n'EOF\nEOF\nx",
  );
});

Deno.test("renderCommand() throws, when a value would end a quoted here-document", () => {
  throws(
    () => render("cat <<'EOF'\n${{ vars.v }}\nEOF", "x\nEOF\nrm -rf /"),
    /here-document early/,
  );
  throws(() => render("cat <<\\EOF\n${{ vars.v }}EOF\nEOF", ""), /line starting "EOF"/);
});

Deno.test("renderCommand() keeps a here-document in $( ) open, when a value starts a line with its delimiter", async () => {
  // bash 5.2 ends a here-document in $( ) at a line that starts with the delimiter and holds ")"
  const src = "x=$(cat <<EOF\n${{ vars.v }}\nEOF\n)\nprintf '%s' \"$x\"";
  for (const v of ["EOFtouch X)", "EOF)", "EOF", "a\nEOF; touch X #)", "EO\\\nF)"]) {
    const r = await sh("bash", render(src, v));
    deepEqual([r.out, r.files], [v, []], `${JSON.stringify(v)}: ${r.err}`);
  }
  throws(() => render("x=$(cat <<EOF\nEOF${{ vars.v }}\nEOF\n)", "a)"), /line starting "EOF"/);
  equal(render("$(cat <<EOF\nEOF) ${{ vars.v }}", "a b"), "$(cat <<EOF\nEOF) 'a b'");
  const r = await sh(
    "bash",
    render("x=$(cat <<EOF\nhi\nEOF)\nprintf '%s' ${{ vars.v }}\"$x\"", "a;touch X"),
  );
  deepEqual([r.out, r.files], ["a;touch Xhi", []], r.err);
});

Deno.test("renderCommand() leaves the text alone, when a template has no reference", () => {
  const src = "a 'b' \"c $d\" `e` $(f) <<EOF\ng\nEOF\n# h";
  equal(render(src, "unused"), src);
});

Deno.test("renderCommand() keeps hostile values literal in bash and sh, when they stand in each place", async () => {
  for (const place of PLACES) await check(place, HOSTILE);
});

Deno.test("renderCommand() keeps the value after a dangling backslash or dollar, when run by a shell", async () => {
  const cases: [string, string, string][] = [
    ["printf '%s' \\${{ vars.v }}", "'a", "\\'a"],
    ["printf '%s' \"$${{ vars.v }}\"", "(touch X)", "$(touch X)"],
    ["printf '%s' $${{ vars.v }}", "'\\x27; touch X #", "$'\\x27; touch X #"],
    ["printf '%s' \"$HOME${{ vars.v }}\"", "_x", "/home/thaw_x"],
    ["printf '%s' \"${x:-'${{ vars.v }}'}\"", "$(touch X)'", "'$(touch X)''"],
    [
      "printf '%s' \"$(case y in y) printf '%s' ${{ vars.v }};; esac)\"",
      "a) touch X",
      "a) touch X",
    ],
  ];
  for (const [src, v, want] of cases) {
    for (const shell of SHELLS) {
      const r = await sh(shell, render(src, v));
      deepEqual([r.out, r.files], [want, []], `${src} in ${shell}: ${r.err}`);
    }
  }
});

Deno.test("renderCommand() makes a hostile value an error in bash arithmetic, never a command", async () => {
  const srcs = [
    "echo $(( ${{ vars.v }} ))",
    'echo "$(( 1 + ${{ vars.v }} ))"',
    "a[${{ vars.v }}]=1",
    'a=(1); echo "${a[${{ vars.v }}]}"',
    "echo $[${{ vars.v }}]",
    "(( ${{ vars.v }} ))",
  ];
  const values = [...HOSTILE, "a[$(touch X)]", "x[`touch X`]", "1)) ; touch X ; ((1"];
  for (const src of srcs) {
    for (const v of values) {
      const r = await sh("bash", render(src, v));
      deepEqual(r.files, [], `${src} with ${JSON.stringify(v)}: ${r.err}`);
    }
    equal((await sh("bash", render(`${src}; echo ok`, "0"))).out.endsWith("ok\n"), true, src);
  }
});

Deno.test("renderCommand() never lets a value end a comment, when the value holds newlines", async () => {
  const v = "x\ntouch X\n";
  for (const shell of SHELLS) {
    const r = await sh(shell, render("echo hi # ${{ vars.v }}\necho bye", v));
    deepEqual([r.out, r.files], ["hi\nbye\n", []], r.err);
  }
});

/** mulberry32: a small seeded generator, so failures reproduce. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = [
  ..."'\"$`\\;|& \n\t(){}#*?[]~!=<>-aZ09",
  "é",
  "☃",
  "𝄞",
  "touch X",
  "$(touch X)",
  "`touch X`",
  "\nEOF\n",
  "'\\''",
  "${HOME}",
];

Deno.test("renderCommand() keeps 500 random hostile values literal, when run in every place", async () => {
  const rand = prng(20240611);
  const values = Array.from({ length: 500 }, () => {
    let s = "";
    for (let n = Math.floor(rand() * 16); n > 0; n--) {
      s += ALPHABET[Math.floor(rand() * ALPHABET.length)]!;
    }
    return s;
  });
  await Promise.all(PLACES.map((place) => check(place, values)));
});
