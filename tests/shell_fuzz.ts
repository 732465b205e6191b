/**
 * Hostile values for the shell quoting fuzz test (`shell_fuzz_test.ts`): a fixed list of known
 * attacks, then random strings over an alphabet of shell syntax, from a seeded generator.
 *
 * @module
 */

/** mulberry32: a small seeded generator, so failures reproduce. */
export function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Values that broke, or could break, the quoting of some context. */
export const KNOWN = [
  "{touch,X}",
  "{a,b}",
  "{1..3}",
  "x{a,b}y",
  "a,b}",
  "{a",
  "}",
  ",",
  ".",
  "..",
  "'{a,b}'",
  '"{a,b}"',
  "'",
  "''{a,b}",
  '"; touch X; "',
  "$(touch X)",
  "'; touch X; '",
  "`touch X`",
  "$HOME",
  "${HOME}",
  "line 1\nline 2\n",
  "\nEOF\ntouch X\n",
  "EOF",
  "back\\slash\\",
  "\\'\\\"\\",
  "*",
  "?",
  "[a]",
  "<(touch X)",
  ">(touch X)",
  "%",
  "#",
  "/",
  "&",
  "~",
  "-n",
  "a b",
  "",
];

const ALPHABET = [
  ..."'\"$`\\;|& \n\t(){}#*?[]~!=<>-aZ09,./%^@:+",
  "é",
  "☃",
  "𝄞",
  "{a,b}",
  "{1..2}",
  "touch X",
  "$(touch X)",
  "`touch X`",
  "\nEOF\n",
  "'\\''",
  "${HOME}",
];

/** The known values, then random ones up to `n` in all. */
export function hostileValues(rand: () => number, n: number): string[] {
  const values = [...KNOWN];
  while (values.length < n) {
    let s = "";
    for (let k = Math.floor(rand() * 12); k > 0; k--) {
      s += ALPHABET[Math.floor(rand() * ALPHABET.length)]!;
    }
    values.push(s);
  }
  return values;
}
