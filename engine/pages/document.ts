/**
 * The HTML document around a page's content: inline style, and (for a live page) the inline
 * script that follows the run's event stream. Nothing is loaded from anywhere else.
 *
 * @module
 */
import { esc, scriptJson } from "./escape.ts";
import { LIVE_SCRIPT } from "./live_script.ts";
import { STYLE } from "./style.ts";

/** What goes in the document. */
export interface DocumentParts {
  /** The page's title (plain text). */
  readonly title: string;
  /** The heading line's HTML (already escaped). */
  readonly heading: string;
  /** The `<main>` content's HTML (already escaped). */
  readonly main: string;
  /**
   * A live page: the event stream to follow and the run's seconds when the page was made; the
   * page refreshes its content from its own address as events come.
   */
  readonly live?: {
    readonly events: string;
    readonly now_s: number | null;
    readonly ended: boolean;
  };
  /** A page that refreshes from its own address every few seconds (the list of runs). */
  readonly refreshMs?: number;
  /** The footer line (plain text). */
  readonly footer?: string;
}

/**
 * A complete HTML document.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { htmlDocument } from "./document.ts";
 * const html = htmlDocument({ title: "<x>", heading: "h", main: "<p>m</p>" });
 * assert(html.startsWith("<!doctype html>"));
 * assert(html.includes("<title>&lt;x&gt;</title>"));
 * assert(!html.includes("<script"));
 * ```
 */
export function htmlDocument(parts: DocumentParts): string {
  const live = parts.live
    ? { events: parts.live.events, now_s: parts.live.now_s, ended: parts.live.ended }
    : parts.refreshMs
    ? { refreshMs: parts.refreshMs }
    : undefined;
  // Only the page's own script runs (its nonce), whatever a runbook's text might smuggle in.
  const nonce = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(12))));
  const script = live
    ? `<script type="application/json" id="thaw-live">${scriptJson(live)}</script>` +
      `<script nonce="${nonce}">${LIVE_SCRIPT}</script>`
    : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'nonce-${nonce}'; connect-src 'self'">
<title>${esc(parts.title)}</title><style>${STYLE}</style></head>
<body><header class="top">${parts.heading}<span class="conn" id="conn">${
    parts.live ? "connecting…" : parts.refreshMs ? `refreshed every ${parts.refreshMs / 1000}s` : ""
  }</span></header>
<main>${parts.main}</main>
<footer>${esc(parts.footer ?? "thaw")}</footer>${script}</body></html>
`;
}
