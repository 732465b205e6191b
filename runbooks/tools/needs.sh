#!/bin/sh
# What a runbook's drill needs, for its `# drill needs:` line (see the README): exits 0 when every
# PROGRAM is installed (on PATH, or a PostgreSQL program where tools/pg.sh finds it) and, with
# --user NAME, when steps can run as NAME (`user:` needs root) and NAME can reach this directory;
# else prints why not on one line and exits 1, and `thaw drill` skips the runbook with that reason.
# --fuse: and this process can use FUSE (/dev/fuse opens for writing), as lazy fetches do.
#
#   tools/needs.sh [--user NAME] [--fuse] PROGRAM...
set -u
here=$(dirname "$0")
missing=""
user=""
fuse=no
while [ $# -gt 0 ]; do
  case $1 in
    --user)
      user=${2:?usage: needs.sh [--user NAME] PROGRAM...}
      shift 2
      continue
      ;;
    --fuse) fuse=yes ;;
    *) command -v "$1" >/dev/null 2>&1 || "$here/pg.sh" --bindir "$1" >/dev/null 2>&1 ||
      missing="$missing $1" ;;
  esac
  shift
done
if [ -n "$missing" ]; then
  echo "not installed:$missing"
  exit 1
fi
if [ "$fuse" = yes ] && ! { [ -c /dev/fuse ] && [ -w /dev/fuse ]; }; then
  echo "FUSE is not usable here: /dev/fuse is missing or not writable (modprobe fuse; in a" \
    "container, run it with --device /dev/fuse)"
  exit 1
fi
[ -n "$user" ] || exit 0
if ! id -u "$user" >/dev/null 2>&1; then
  echo "no user $user on this machine"
  exit 1
fi
[ "$(id -un)" = "$user" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "steps run as user $user (user:), which needs thaw to run as root"
  exit 1
fi
# The steps run as $user in this directory: every directory on the way must let it through.
if command -v setpriv >/dev/null 2>&1 &&
  ! setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups test -r "$here/pg.sh"; then
  echo "user $user cannot read $(cd "$here" && pwd) (a directory on the way is closed to" \
    "others): put the runbooks where $user can read them"
  exit 1
fi
exit 0
