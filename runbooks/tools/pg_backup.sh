#!/bin/sh
# Makes the stand-in backup of the PostgreSQL example: FILE, a `pg_dump -Fc` of the database that
# tools/shop.sql generates, taken from a throw-away cluster (initdb, pg_ctl start, psql, pg_dump,
# pg_ctl stop) that listens on a Unix socket in a temporary directory only. Does nothing when FILE
# is already there (the data is generated once and reused). Runs as the PostgreSQL user (the
# runbook says `user: postgres`); FILE's directory must be writable by it.
#
#   tools/pg_backup.sh FILE
set -eu
out=${1:?usage: pg_backup.sh FILE}
[ -s "$out" ] && exit 0
here=$(cd "$(dirname "$0")" && pwd)
pg="$here/pg.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/thaw-pg-backup.XXXXXX")
cleanup() {
  "$pg" pg_ctl -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
"$pg" initdb -D "$tmp/data" -U postgres --auth=trust --no-sync >"$tmp/initdb.log" ||
  { cat "$tmp/initdb.log" >&2; exit 1; }
# Unix socket only: no TCP port to collide with anything.
"$pg" pg_ctl -D "$tmp/data" -l "$tmp/server.log" -w \
  -o "-c listen_addresses='' -c unix_socket_directories='$tmp' -c fsync=off" start >/dev/null ||
  { cat "$tmp/server.log" >&2; exit 1; }
"$pg" psql -X -q -v ON_ERROR_STOP=1 -h "$tmp" -d postgres -f "$here/shop.sql"
"$pg" pg_dump -Fc -h "$tmp" -d shop -f "$out.tmp"
mv "$out.tmp" "$out"
echo "made $out ($(wc -c <"$out") bytes)"
