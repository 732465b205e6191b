/**
 * What the network probes share (the readiness probes here, the service-level probes in
 * `engine/service_level/`): a `host:port` split, and the gist of a network error in one line.
 *
 * @module
 */

/** Splits `host:port` (or `[v6]:port`). */
export function hostPort(target: string): { hostname: string; port: number } | undefined {
  const at = target.lastIndexOf(":");
  if (at <= 0) return undefined;
  const port = Number(target.slice(at + 1));
  let hostname = target.slice(0, at);
  if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
  if (!Number.isInteger(port) || port < 1 || port > 65535 || hostname === "") return undefined;
  return { hostname, port };
}

/** The gist of a network error, through its causes: `connection refused`, or its own message. */
export function networkError(e: unknown): string {
  const messages: string[] = [];
  for (let c = e, depth = 0; c !== undefined && c !== null && depth < 8; depth++) {
    messages.push(c instanceof Error ? c.message : String(c));
    c = c instanceof Error ? c.cause : undefined;
  }
  const all = messages.join(" ");
  for (const known of ["connection refused", "connection reset", "connection closed"]) {
    if (all.toLowerCase().includes(known)) return known;
  }
  if (/dns error|name or service not known|failed to lookup/i.test(all)) return "unknown host";
  return oneLine(messages[messages.length - 1] ?? "error");
}

/** One line, control characters out, at most `max` characters. */
export function oneLine(text: string, max = 200): string {
  // deno-lint-ignore no-control-regex
  const line = text.replace(/[\x00-\x1f\x7f]+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
