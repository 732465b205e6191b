#!/bin/sh
# Makes the stand-in backup of the restic example from the files under DIR/src (written by
# tools/backup.ts make): a restic repository DIR/repo (password in DIR/password) holding one
# snapshot of DIR/src/site, taken from inside DIR/src, so the snapshot's path is /site; and
# DIR/site.sha256, the checksums the restore is checked against. Does nothing when the snapshot is
# already there (generated once and reused).
#
#   tools/restic_backup.sh DIR
set -eu
dir=$(cd "${1:?usage: restic_backup.sh DIR}" && pwd)
[ -f "$dir/site.sha256" ] && exit 0
export RESTIC_REPOSITORY="$dir/repo" RESTIC_PASSWORD_FILE="$dir/password"
rm -rf "$dir/repo"
umask 077
echo "thaw-example-not-a-secret" >"$dir/password"
umask 022
restic init --quiet --no-cache
(cd "$dir/src" && restic backup --quiet --no-cache site)
(cd "$dir/src" && find site -type f | sort | xargs sha256sum) >"$dir/site.sha256.tmp"
mv "$dir/site.sha256.tmp" "$dir/site.sha256"
echo "made $dir/repo: a snapshot of /site"
