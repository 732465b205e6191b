#!/bin/sh
# Runs a PostgreSQL program (initdb, postgres, pg_ctl, psql, ...) from the newest PostgreSQL on
# this machine: from PATH when it is there, else from Debian's /usr/lib/postgresql/VERSION/bin
# (where the `postgresql` package keeps the server programs, off PATH), so no runbook has to
# name a version.
#
#   tools/pg.sh PROGRAM [ARG]...
#   tools/pg.sh --bindir PROGRAM     # print the directory PROGRAM is found in (exit 1: none)
set -eu
bindir() {
  if p=$(command -v "$1" 2>/dev/null) && [ -x "$p" ] && [ "${p#/usr/bin/}" = "$p" ]; then
    dirname "$p"
    return 0
  fi
  # /usr/bin/psql and friends are Debian's pg_wrapper: fine for clients, but look for the real
  # programs first, newest version first.
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
    if [ -x "$d/$1" ]; then
      echo "$d"
      return 0
    fi
  done
  if p=$(command -v "$1" 2>/dev/null); then
    dirname "$p"
    return 0
  fi
  return 1
}
if [ "${1-}" = "--bindir" ]; then
  bindir "${2:?usage: pg.sh --bindir PROGRAM}"
  exit
fi
program=${1:?usage: pg.sh PROGRAM [ARG]...}
shift
if ! dir=$(bindir "$program"); then
  echo "pg.sh: $program not found on PATH nor under /usr/lib/postgresql/*/bin" \
    "(Debian: apt-get install postgresql)" >&2
  exit 127
fi
exec "$dir/$program" "$@"
