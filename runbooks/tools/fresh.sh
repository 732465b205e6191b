#!/bin/sh
# Makes DIR an empty restore root for an example runbook, so that it runs again and again (a
# fetch never replaces a directory it did not write): creates DIR, or empties it when an earlier
# run of an example made it (it holds the marker file .thaw-example, or lies in a .thaw directory,
# thaw's own scratch area). Refuses any other DIR that exists (an example never deletes what it
# did not write), and one where a PostgreSQL server of an earlier run still runs (stop it first).
#
# The old DIR is renamed to DIR.previous first, then removed; with --keep-previous it is left for a
# later step to remove (`rm -rf DIR.previous`), off the critical path: removing many small files
# (a PostgreSQL data directory) takes seconds on some disks.
#
#   tools/fresh.sh [--keep-previous] DIR
set -eu
keep=no
if [ "${1-}" = "--keep-previous" ]; then
  keep=yes
  shift
fi
dir=${1:?usage: fresh.sh [--keep-previous] DIR}
if [ -e "$dir" ]; then
  case $(cd "$dir" && pwd -P)/ in
    */.thaw/*) ours=yes ;;
    *) ours=no ;;
  esac
  if [ "$ours" = no ] && [ ! -f "$dir/.thaw-example" ]; then
    echo "fresh.sh: $dir exists and was not made by an example runbook (no .thaw-example in it):" \
      "remove it yourself, or pick another root with --var root=DIR" >&2
    exit 1
  fi
  for pidfile in "$dir"/*/postmaster.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(head -n 1 "$pidfile")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      echo "fresh.sh: a PostgreSQL server (pid $pid) still runs on $(dirname "$pidfile")," \
        "left by an earlier run: stop it first (kill $pid)" >&2
      exit 1
    fi
  done
  rm -rf -- "$dir.previous"
  mv -- "$dir" "$dir.previous"
fi
mkdir -p -- "$dir"
echo "made by an example runbook; tools/fresh.sh empties this directory" >"$dir/.thaw-example"
[ "$keep" = yes ] || rm -rf -- "$dir.previous"
