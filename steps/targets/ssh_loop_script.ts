/**
 * The command loop thaw runs on a host over ONE long-lived ssh session (see `ssh_loop.ts`): a
 * POSIX `sh` program, sent as the session's command, that reads requests on its stdin and answers
 * on its stdout and stderr. Nothing is installed on the host: it needs `sh`, util-linux `setsid`
 * (and `setpriv` for `user:` when thaw logs in as root) and coreutils, as before.
 *
 * Requests, one line each, are sh words thaw quotes ({@linkcode loopWord}) and the loop `eval`s:
 *
 * - `sp ID CWD USER LOG KEEPOUT SHELL COMMAND [NAME=VALUE…]`: starts COMMAND with SHELL in a new
 *   session (`setsid`; its pid is its group's id), its stdout and stderr in files of the loop's
 *   own directory on the host (a service's in its LOG instead). A small background subshell of
 *   the loop (the command's parent) waits for it and reports.
 * - `kg REQ PGID GRACEMS USER`: stops a group (SIGCONT and SIGTERM, SIGKILL after the grace).
 * - `al REQ PGID`: whether a group has a live member.
 * - `gt ID OUTFROM ERRFROM [keep]`: sends a command's output past the offsets; forgets the
 *   command once it has exited (thaw asks every second while a command runs, so its output
 *   reaches the step's log as it comes).
 * - `dn ID`: forgets a command that exited with no output (its files go in batches).
 * - `rq ID PROGRAM`: runs a short sh PROGRAM (a file operation: `stat`, `mkdir -p`, `mv -T`,
 *   `rm -rf`) in a subshell of the loop, in the background (the loop goes on reading), its stdout
 *   and stderr in the loop's files as a command's (fetched with `gt`, forgotten with `dn`). No
 *   `setsid`, no login shell: a request costs a fork, not an ssh session.
 *
 * Answers: short control lines on the session's stderr, each opened by `\x1e` and the loop's
 * nonce (`R` ready, `P ID PID`, `F ID WORDS` could not start, `X ID CODE OUTBYTES ERRBYTES LEFT`
 * exited, `K REQ OUTCOME`, `A REQ yes|no`, `Q ID CODE OUTBYTES ERRBYTES` a program of `rq` ended), each one `printf` (one write, below PIPE_BUF: lines
 * of several writers never mix); output only on stdout, written by the loop itself in the order
 * of the `gt` requests: `O ID OUTBYTES ERRBYTES\n` and the bytes.
 *
 * When its stdin closes (thaw exited, even by `kill -9`, or the connection was lost and sshd
 * noticed), the loop stops the groups of the ordinary commands still running (SIGTERM, then
 * SIGKILL after the grace) and removes its directory; services (LOG set) live on (the
 * subshells that watched them end, so that the session can close). Every monitor is in the
 * loop's process group (sshd made the loop a session leader): one `kill -URG 0` tells them all.
 * SIGURG, whose default is to be ignored: a command's process that has not yet left the group
 * (between its fork and `setsid`) must not die of it, a service least of all. A loop killed by
 * SIGKILL cannot remove its directory: the next loop of the same user on that host does (each
 * loop writes its pid there).
 *
 * @module
 */

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
];

/** Reports that command $_i could not start, with the first line of its error file. */
const FAIL = [
  "fl() {",
  '  _m=; [ -s "$_e" ] && read -r _m <"$_e"',
  '  printf "${R}F %s %s\\n" "$_i" "${1:-$_m}" >&2',
  "  exit 0",
  "}",
];

/** The prefix (`set --` words) that runs the command as `$_u`, as `ssh_script.ts` did. */
const USER = [
  '  set --; _e="$D/$_i.e" _w=',
  '  if [ -z "$_u" ] || [ "$ME" = "$_u" ]; then :',
  '  elif [ "$MEID" = 0 ]; then',
  '    _g=$(id -g -- "$_u" 2>/dev/null) || fl "thaw: no user $_u on $(hostname)"',
  '    _n=$(id -u -- "$_u"); _h=$(getent passwd "$_u" | cut -d: -f6)',
  '    set -- setpriv --reuid="$_n" --regid="$_g" --init-groups -- env HOME="$_h" USER="$_u" LOGNAME="$_u"',
  '    command -v setpriv >/dev/null 2>&1 || { set -- runuser -u "$_u" --; _w=1; }',
  '  else set -- sudo -n -u "$_u" -H --; _w=1',
  "  fi",
];

/**
 * `sp`: starts a command; its monitor (a subshell of the loop, in the loop's process group)
 * reports its pid, then its exit. Told SIGURG (the loop's stdin closed), an ordinary command's
 * monitor stops its group (its process, if it has not made its group yet): SIGTERM, then SIGKILL
 * after the grace; a service's monitor just ends.
 */
const SPAWN = [
  "sp() {",
  "  _i=$1 _d=$2 _u=$3 _l=$4 _k=$5 _s=$6 _c=$7; shift 7",
  '  [ "$_s" != sh ] || _s=$SH',
  "  (",
  '  _e="$D/$_i.e"',
  '  if [ -n "$_d" ]; then cd -- "$_d" 2>"$_e" || fl; fi',
  '  for _a; do export "$_a"; done',
  ...USER,
  // The new session's leader itself says its pid (its group's id) on the loop's stderr, before
  // the command: the command's shell, on a line of its own (a shell runs a -c text line by line),
  // or a sh before sudo or runuser (which fork).
  `  _m="printf '%sP %s %s\\\\n' '$R' $_i \\"\\$\\$\\" >&3; exec 3>&-"`,
  `  if [ -n "$_w" ]; then set -- "$SH" -c "$_m; exec \\"\\$@\\"" sh "$@" "$_s" -c "$_c"`,
  '  else set -- "$@" "$_s" -c "$_m$NL$_c"',
  "  fi",
  '  if [ -n "$_l" ]; then',
  "    trap 'exit 0' URG HUP",
  '    { : >>"$_l"; } 2>"$_e" || fl',
  '    $SETSID "$@" </dev/null >>"$_l" 2>&1 &',
  "    _c=$!",
  "  else",
  '    _o=/dev/null; [ -z "$_k" ] || _o="$D/$_i.o"',
  "    trap 'exec >/dev/null 2>&1 3>&-; st TERM; _j=0; while [ $_j -lt $((G * 20)) ] && kill -0 -$_c 2>/dev/null; do sleep 0.05; _j=$((_j+1)); done; st KILL; exit 0' URG HUP",
  '    $SETSID "$@" </dev/null >"$_o" 2>"$_e" &',
  "    _c=$!",
  "  fi",
  '  wait "$_c"; _x=$?',
  "  trap - URG HUP",
  '  _t=gone; kill -0 -"$_c" 2>/dev/null && _t=left',
  '  _os=0; [ -s "$D/$_i.o" ] && _os=$(wc -c <"$D/$_i.o")',
  '  _es=0; [ -s "$_e" ] && _es=$(wc -c <"$_e")',
  '  printf "${R}X %s %s %s %s %s\\n" "$_i" "$_x" $_os $_es $_t >&2',
  "  ) </dev/null >/dev/null 2>&3 &",
  "}",
  "# signals group $_c, or its leader alone while it has not made its group yet",
  'st() { { kill -"$1" -"$_c" && kill -CONT -"$_c"; } 2>/dev/null || kill -"$1" "$_c" 2>/dev/null; }',
];

/** `kg`: stops a group in the background (the loop goes on reading); `al`: alive or not. */
const KILL = [
  "kg() {",
  '  if [ -z "$4" ] && ! kill -0 -"$2" 2>/dev/null; then printf "${R}K %s gone\\n" "$1" >&2; return; fi',
  "  (",
  "  _q=$1 _p=$2 _n=$(( ($3 + 49) / 50 )) _k=kill",
  '  if [ -n "$4" ] && [ "$MEID" != 0 ] && [ "$ME" != "$4" ]; then _k="sudo -n -u $4 kill"; fi',
  '  rp() { printf "${R}K %s %s\\n" "$_q" "$1" >&2; exit 0; }',
  '  alive "$_p" || rp gone',
  '  $_k -CONT -"$_p"; $_k -TERM -"$_p"; $_k -CONT -"$_p"',
  '  _j=0; while [ $_j -lt $_n ]; do alive "$_p" || rp terminated; sleep 0.05; _j=$((_j+1)); done',
  '  alive "$_p" || rp terminated',
  '  $_k -KILL -"$_p"',
  '  _j=0; while [ $_j -lt 40 ] && alive "$_p"; do sleep 0.05; _j=$((_j+1)); done',
  "  rp killed",
  "  ) </dev/null >/dev/null 2>&3 &",
  "}",
  'al() { if alive "$2"; then _r=yes; else _r=no; fi; printf "${R}A %s %s\\n" "$1" $_r >&2; }',
];

/**
 * `gt ID OUTFROM ERRFROM [keep]`: the bytes of a command's output past the offsets, on stdout
 * (exactly as many as the header says: zeros stand in for bytes a command cut off its own file);
 * the command is forgotten unless `keep` (its output is streamed while it runs). `dn`: forget a
 * command that exited with no output (its files go in batches).
 */
const OUTPUT = [
  'sz() { _n=0; [ -s "$1" ] && _n=$(wc -c <"$1"); _n=$((_n - $2)); [ $_n -ge 0 ] || _n=0; }',
  "sd() {",
  '  [ "$3" != 0 ] || return 0',
  '  { tail -c +$(($2 + 1)) "$1"; head -c "$3" /dev/zero; } 2>/dev/null | head -c "$3"',
  "}",
  "gt() {",
  '  sz "$D/$1.o" "$2"; _os=$_n; sz "$D/$1.e" "$3"; _es=$_n',
  '  printf "O %s %s %s\\n" "$1" $_os $_es',
  '  sd "$D/$1.o" "$2" $_os; sd "$D/$1.e" "$3" $_es',
  '  [ -n "$4" ] || rm -f "$D/$1.o" "$D/$1.e"',
  "}",
  "dn() {",
  '  Z="$Z $1.o $1.e"; N=$((N+1))',
  '  [ $N -lt 64 ] || { (cd "$D" && rm -f $Z); Z= N=0; }',
  "}",
];

/**
 * `rq ID PROGRAM`: runs PROGRAM in a subshell (`eval`: the loop's own sh, its cwd and
 * environment, the login's), stdin from /dev/null, in the background; says how it ended.
 */
const REQUEST = [
  "rq() {",
  "  (",
  '  ( eval "$2" ) </dev/null >"$D/$1.o" 2>"$D/$1.e"; _x=$?',
  '  _os=0; [ -s "$D/$1.o" ] && _os=$(wc -c <"$D/$1.o")',
  '  _es=0; [ -s "$D/$1.e" ] && _es=$(wc -c <"$D/$1.e")',
  '  printf "${R}Q %s %s %s %s\\n" "$1" "$_x" $_os $_es >&2',
  "  ) </dev/null >/dev/null 2>&3 &",
  "}",
];

/**
 * Before the loop makes its directory: the directories of this user's loops that are gone
 * (killed by SIGKILL, which no trap sees) are removed. A loop writes its pid in its directory;
 * one without a pid file, or whose pid runs, is left alone.
 */
const SWEEP = [
  'for o in "${TMPDIR:-/tmp}"/thaw-loop.*; do',
  '  [ -O "$o" ] && [ -f "$o/pid" ] || continue',
  '  p=$(cat "$o/pid" 2>/dev/null) && [ -n "$p" ] && ! kill -0 "$p" 2>/dev/null && rm -rf "$o"',
  "done",
];

/** When stdin closes: every monitor is told (services live on), the directory removed. */
const END = [
  "kill -URG 0 2>/dev/null",
  'rm -rf "$D"',
];

/**
 * The loop's program, for `exec sh -c PROGRAM` as the session's command. `nonce` opens its
 * control lines; `graceS` is the time between SIGTERM and SIGKILL for what is left running when
 * its stdin closes.
 */
export function loopProgram(nonce: string, graceS: number): string {
  return [
    "exec 3>&2",
    `R="$(printf '\\036')${nonce} " G=${Math.max(0, Math.ceil(graceS))} N=0 Z=`,
    ...SWEEP,
    'D=$(mktemp -d "${TMPDIR:-/tmp}/thaw-loop.XXXXXXXX") || exit 1',
    'echo $$ >"$D/pid"',
    "ME=$(id -un) MEID=$(id -u) SH=$(command -v sh) SETSID=$(command -v setsid)",
    ': "${SH:=sh}" "${SETSID:=setsid}"',
    "NL='\n'",
    ...ALIVE,
    ...FAIL,
    ...SPAWN,
    ...KILL,
    ...OUTPUT,
    ...REQUEST,
    'printf "${R}R\\n" >&2',
    // A loop that sshd hangs up, or that writes to a dropped connection, ends as at end of input
    // (trapped, not ignored: the commands it starts get the default actions back).
    "trap 'kill -URG 0 2>/dev/null; rm -rf \"$D\"; exit 0' HUP PIPE TERM",
    'while IFS= read -r l; do eval "$l"; done',
    ...END,
  ].join("\n");
}

/**
 * Quotes `text` as one sh word that survives the trip as one request line: newlines become
 * `$NL` (the loop's newline), everything else is single-quoted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loopWord } from "./ssh_loop_script.ts";
 *
 * assert.equal(loopWord("it's\nok"), `'it'\\''s'"$NL"'ok'`);
 * ```
 */
export function loopWord(text: string): string {
  return `'${text.replaceAll("'", `'\\''`).replaceAll("\n", `'"$NL"'`)}'`;
}
