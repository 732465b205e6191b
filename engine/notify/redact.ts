/**
 * Keeping webhook secrets out of what thaw prints: an address's user and password, its query, a
 * path that holds a secret (a Slack webhook's token is its path), header values, and any value
 * that came from `${{ env.NAME }}`, wherever it shows up in an error text.
 *
 * @module
 */

/** What a hidden value is replaced with. */
export const HIDDEN = "***";

/** Secrets shorter than this are not searched for in free text (they would garble it). */
const MIN_SECRET = 3;

/** A path segment of a secret address this long is a token on its own (Slack's last segment). */
const TOKEN_SEGMENT = 16;

/**
 * The parts of `secret`, if it is an address, that a receiver may echo on their own (a path, a
 * query, a user or password, a long segment): each is as secret as the whole.
 */
function partsOf(secret: string): string[] {
  let u: URL;
  try {
    u = new URL(secret);
  } catch {
    return [];
  }
  const segments = u.pathname.split("/").filter((seg) => seg.length >= TOKEN_SEGMENT);
  return [
    ...(u.pathname.length > 1 ? [u.pathname] : []),
    u.search.slice(1),
    u.username,
    u.password,
    ...segments,
  ].filter((x) => x.length >= MIN_SECRET);
}

const URL_IN_TEXT = /\bhttps?:\/\/[^\s"'<>()\]]+/gi;

/**
 * Hides a set of secrets in addresses and in free text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Redactor } from "./redact.ts";
 * const r = new Redactor(["tok3n"]);
 * assert.equal(r.url("https://u:pw@h.example/hook?key=1"), "https://***@h.example/hook?***");
 * assert.equal(r.url("https://h.example/a/tok3n"), "https://h.example/***");
 * assert.equal(r.text("error sending request for url (https://h.example/a/tok3n?x=1)"),
 *   "error sending request for url (https://h.example/***?***)");
 * // The path of a secret address is secret on its own, as a receiver may echo it.
 * const hook = new Redactor(["https://hooks.example/services/T0/B0/x9"]);
 * assert.equal(hook.text("404: no /services/T0/B0/x9 here"), "404: no *** here");
 * ```
 */
export class Redactor {
  readonly #secrets: string[];

  /** Hides `secrets` (empty ones are ignored). */
  constructor(secrets: Iterable<string>) {
    const all = new Set<string>();
    for (const secret of secrets) {
      for (const s of [secret, ...partsOf(secret)]) {
        if (s.length === 0) continue;
        all.add(s);
        all.add(encodeURIComponent(s));
        all.add(encodeURI(s));
      }
    }
    // Longest first, so a secret that contains another is hidden whole.
    this.#secrets = [...all].sort((a, b) => b.length - a.length);
  }

  /** Whether the path segment `segment` is part of a secret, or holds one. */
  #secretSegment(segment: string): boolean {
    if (segment.length === 0) return false;
    return this.#secrets.some((s) =>
      (s.length >= MIN_SECRET && segment.includes(s)) ||
      (segment.length >= MIN_SECRET && s.includes(segment))
    );
  }

  /**
   * An address as thaw may print it: user and password, query and fragment hidden; the path
   * hidden when a segment of it is (part of) a secret. Not an address: hidden whole.
   */
  url(url: string): string {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return HIDDEN;
    }
    const user = u.username || u.password ? `${HIDDEN}@` : "";
    const secretPath = u.pathname.split("/").some((seg) => this.#secretSegment(seg));
    const path = secretPath ? `/${HIDDEN}` : u.pathname;
    const query = u.search ? `?${HIDDEN}` : "";
    const fragment = u.hash ? `#${HIDDEN}` : "";
    return this.#hide(`${u.protocol}//${user}${u.host}${path}${query}${fragment}`);
  }

  /** Free text (an error message, a response body) with addresses and secrets hidden. */
  text(text: string): string {
    return this.#hide(text.replace(URL_IN_TEXT, (u) => this.url(u)));
  }

  #hide(text: string): string {
    let out = text;
    for (const s of this.#secrets) {
      if (s.length >= MIN_SECRET && out.includes(s)) out = out.replaceAll(s, HIDDEN);
    }
    return out;
  }
}
