/**
 * The small POSIX shell programs thaw sends to a host over ssh: the wrapper that starts a step's
 * command in a new session (process group) and reports its pid and exit status, and those that
 * stop or look for a process group. They need `sh`, util-linux `setsid` (and `setpriv` for
 * `user:` when thaw logs in as root) and coreutils on the host: any Linux.
 *
 * The wrapper writes two lines of its own on the session's stderr, framed by a random nonce so
 * no output of the command can be mistaken for them: `\x1eNONCE pid PID` (written by the new
 * group's leader itself, the command's shell, before the command, so it comes first) and `\x1eNONCE exit
 * CODE` once the leader has exited. {@linkcode MarkerFilter} takes them out of the stream.
 *
 * @module
 */

import { shq } from "./ssh_args.ts";

/** The byte that opens a marker line (ASCII record separator). */
const RS = 0x1e;
/** A marker's body, after its prefix. */
const MARKER = /^(pid|exit) (\d+)$/;

/** A fresh random nonce, 16 hex digits. */
export function nonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A sh function: whether process group $1 has a live member (zombies are dead). */
const ALIVE = [
  "alive() {",
  '  [ -r /proc/self/stat ] || { kill -0 -"$1" 2>/dev/null; return; }',
  "  _p=$1",
  "  for _f in /proc/[0-9]*/stat; do",
  '    read -r _l <"$_f" 2>/dev/null || continue',
  "    _l=${_l##*) }",
  "    set -- $_l",
  '    [ "$3" = "$_p" ] && [ "$1" != Z ] && [ "$1" != X ] && return 0',
  "  done",
  "  return 1",
  "}",
].join("\n");

/**
 * The prefix (as sh words, on `"$@"`) that runs a command as `user` on the host: nothing when
 * the login user is `user`; `setpriv` with the user's ids and groups, and its `HOME`, `USER`,
 * `LOGNAME`, when the login user is root (`runuser` where there is no `setpriv`); else
 * `sudo -n -u USER` (never prompts: a password needed fails the step with sudo's words).
 */
function userPrefix(user: string): string {
  const u = shq(user);
  return [
    `u=${u}`,
    `if [ "$(id -un)" = "$u" ]; then set --`,
    `elif [ "$(id -u)" = 0 ]; then`,
    `  g=$(id -g -- "$u" 2>/dev/null) || { echo "thaw: no user $u on $(hostname)" >&2; exit 126; }`,
    `  i=$(id -u -- "$u")`,
    `  h=$(getent passwd "$u" | cut -d: -f6)`,
    `  set -- setpriv --reuid="$i" --regid="$g" --init-groups -- env HOME="$h" USER="$u" LOGNAME="$u"`,
    // Where there is no setpriv (a minimal image), runuser, which forks: then the leader that
    // prints the pid is a shell before it.
    `  command -v setpriv >/dev/null 2>&1 || { set -- runuser -u "$u" --; lead=1; }`,
    `else set -- sudo -n -u "$u" -H --; lead=1`,
    `fi`,
  ].join("\n");
}

/** What {@linkcode spawnScript} starts. */
export interface RemoteCommand {
  readonly shell: string;
  readonly command: string;
  /** Directory on the host; the login directory when absent. */
  readonly cwd?: string | undefined;
  /** Added to the login environment of the host. */
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly user?: string | undefined;
  /** A log file on the host: the group appends its output there and outlives the session. */
  readonly log?: string | undefined;
  /** Seconds between SIGTERM and SIGKILL when the session ends under a running step. */
  readonly graceS?: number | undefined;
}

/**
 * The wrapper for one command. Without `log`, the command is stopped (its whole group: SIGTERM,
 * then SIGKILL after `graceS`) when the ssh session ends under it, by thaw's exit or a lost
 * connection: a step never runs on unseen. With `log`, it is a service: its output goes to the log
 * file on the host and it outlives the session (and thaw).
 */
export function spawnScript(cmd: RemoteCommand, id: string): string {
  const lines = ["exec 3<&0 </dev/null", "lead="];
  if (cmd.cwd !== undefined) lines.push(`cd -- ${shq(cmd.cwd)} || exit 126`);
  for (const [name, value] of Object.entries(cmd.env ?? {})) {
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) lines.push(`export ${name}=${shq(value)}`);
  }
  lines.push(cmd.user === undefined ? "set --" : userPrefix(cmd.user));
  const mark = `printf '\\036%s pid %s\\n' ${id} "$$" >&2`;
  const shell = shq(cmd.shell);
  // A leader that prints its pid (= its group's id), then execs the rest: a service's log is
  // opened there, before the switch to its user; sudo forks, so its pid must be the one printed.
  const leader = (log: string) =>
    `setsid sh -c ${shq(`${mark}; ${log}exec "$@"`)} sh "$@" ${shell} -c ${
      shq(cmd.command)
    } 3<&- &`;
  if (cmd.log === undefined) {
    // Else the command's shell prints its pid first, on a line of its own (a shell runs a -c
    // text line by line: even a syntax error in the command comes after it). One exec less.
    const text = `${mark}\n${cmd.command}`;
    lines.push(
      `if [ -n "$lead" ]; then ${leader("")}`,
      `else setsid "$@" ${shell} -c ${shq(text)} 3<&- &`,
      "fi",
    );
  } else lines.push(`exec 4>>${shq(cmd.log)} || exit 126`, leader("exec >&4 2>&1 4>&-; "));
  lines.push("c=$!");
  if (cmd.log !== undefined) lines.push("exec 4>&-");
  if (cmd.log === undefined) {
    const grace = Math.max(0, Math.ceil(cmd.graceS ?? 5));
    lines.push(
      `{ while read -r _ <&3; do :; done; kill -TERM -"$c"; kill -CONT -"$c"; sleep ${grace};` +
        ` kill -KILL -"$c"; } >/dev/null 2>&1 &`,
      "w=$!",
    );
  }
  lines.push('wait "$c"; s=$?');
  if (cmd.log === undefined) lines.push(`kill "$w" 2>/dev/null`);
  lines.push(`printf '\\036%s exit %s\\n' ${id} "$s" >&2`, `exit "$s"`);
  return `exec sh -c ${shq(lines.join("\n"))}`;
}

/**
 * Stops process group `pgid`: SIGCONT and SIGTERM, then SIGKILL after `graceMs` if a member is
 * left. Prints `gone`, `terminated` or `killed`. As `user` when given (the group runs as them).
 * A sh program (for `sh -c`), as is {@linkcode aliveScript}'s.
 */
export function killScript(pgid: number, graceMs: number, user?: string): string {
  const steps = Math.max(0, Math.ceil(graceMs / 50));
  const k = user === undefined ? "kill" : "$k";
  const lines = [ALIVE, `p=${pgid}`];
  if (user !== undefined) {
    lines.push(
      `k=kill; [ "$(id -u)" = 0 ] || [ "$(id -un)" = ${shq(user)} ] ||` +
        ` k="sudo -n -u ${shq(user)} kill"`,
    );
  }
  lines.push(
    `alive "$p" || { echo gone; exit 0; }`,
    `${k} -CONT -"$p" 2>/dev/null; ${k} -TERM -"$p" 2>/dev/null; ${k} -CONT -"$p" 2>/dev/null`,
    `i=0; while [ $i -lt ${steps} ]; do alive "$p" || { echo terminated; exit 0; };` +
      ` sleep 0.05; i=$((i+1)); done`,
    `alive "$p" || { echo terminated; exit 0; }`,
    `${k} -KILL -"$p" 2>/dev/null`,
    `i=0; while [ $i -lt 40 ] && alive "$p"; do sleep 0.05; i=$((i+1)); done`,
    `echo killed`,
  );
  return lines.join("\n");
}

/** Prints `yes` when process group `pgid` has a live member on the host, else `no`. */
export function aliveScript(pgid: number): string {
  return `${ALIVE}\nif alive ${pgid}; then echo yes; else echo no; fi`;
}

/** One marker line the wrapper wrote. */
export interface Marker {
  readonly kind: "pid" | "exit";
  readonly value: number;
}

/**
 * Takes the wrapper's marker lines out of a stream of chunks and passes everything else on. A
 * chunk may end inside a marker: those bytes wait for the next chunk.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MarkerFilter } from "./ssh_script.ts";
 *
 * const seen: string[] = [];
 * let text = "";
 * const f = new MarkerFilter("ab12", (m) => seen.push(`${m.kind}=${m.value}`),
 *   (c) => text += new TextDecoder().decode(c));
 * f.push(new TextEncoder().encode("\x1eab12 pid 42\nhello\n\x1eab"));
 * f.push(new TextEncoder().encode("12 exit 3\n"));
 * f.end();
 * assert.deepEqual(seen, ["pid=42", "exit=3"]);
 * assert.equal(text, "hello\n");
 * ```
 */
export class MarkerFilter {
  readonly #prefix: Uint8Array;
  readonly #onMarker: (m: Marker) => void;
  readonly #sink: (chunk: Uint8Array) => void;
  #held: Uint8Array = new Uint8Array(0);

  constructor(id: string, onMarker: (m: Marker) => void, sink: (chunk: Uint8Array) => void) {
    this.#prefix = new TextEncoder().encode(`\x1e${id} `);
    this.#onMarker = onMarker;
    this.#sink = sink;
  }

  /** The longest marker line: prefix, `exit `, up to 20 digits and a newline. */
  get #longest(): number {
    return this.#prefix.length + 5 + 20 + 1;
  }

  /** Passes on a chunk, minus markers. */
  push(chunk: Uint8Array): void {
    let data = chunk;
    if (this.#held.length > 0) {
      data = new Uint8Array(this.#held.length + chunk.length);
      data.set(this.#held);
      data.set(chunk, this.#held.length);
      this.#held = new Uint8Array(0);
    }
    let from = 0;
    let at = data.indexOf(RS, from);
    while (at !== -1) {
      const end = this.#markerEnd(data, at);
      if (end === undefined) {
        if (at > from) this.#sink(data.subarray(from, at));
        this.#held = data.slice(at);
        return;
      }
      if (end > at) {
        if (at > from) this.#sink(data.subarray(from, at));
        this.#parse(data.subarray(at + this.#prefix.length, end - 1));
        from = end;
      }
      at = data.indexOf(RS, end > at ? end : at + 1);
    }
    if (from < data.length) this.#sink(from === 0 ? data : data.subarray(from));
  }

  /**
   * Where the marker starting at `at` ends (after its newline); `at` itself when it is no
   * marker; undefined when the data ends before it can tell.
   */
  #markerEnd(data: Uint8Array, at: number): number | undefined {
    const p = this.#prefix;
    for (let i = 0; i < p.length; i++) {
      if (at + i >= data.length) return undefined;
      if (data[at + i] !== p[i]) return at;
    }
    const nl = data.indexOf(0x0a, at + p.length);
    if (nl === -1) return data.length - at >= this.#longest ? at : undefined;
    if (nl - at >= this.#longest) return at;
    return MARKER.test(new TextDecoder().decode(data.subarray(at + p.length, nl))) ? nl + 1 : at;
  }

  #parse(body: Uint8Array): void {
    const m = MARKER.exec(new TextDecoder().decode(body));
    if (m) this.#onMarker({ kind: m[1] as Marker["kind"], value: Number(m[2]) });
  }

  /** The stream ended: passes on what was held back. */
  end(): void {
    if (this.#held.length > 0) this.#sink(this.#held);
    this.#held = new Uint8Array(0);
  }
}
