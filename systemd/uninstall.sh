#!/usr/bin/env bash
# Remove the laserd service installed by systemd/install.sh.
#
#   sudo systemd/uninstall.sh            # stop, disable, remove unit and /opt/laserd;
#                                        # keep /etc/laserd and /var/lib/laserd (your data)
#   sudo systemd/uninstall.sh --purge    # also delete the configuration, the state folder
#                                        # (database, uploads) and the laserd user
#   systemd/uninstall.sh --dry-run       # print the steps, change nothing
#   systemd/uninstall.sh --root DIR      # act on a tree under DIR (also: DESTDIR=DIR)
set -euo pipefail

ROOT="${DESTDIR:-/}"
DRY_RUN=0
PURGE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
        --root=*) ROOT="${1#--root=}"; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        --purge) PURGE=1; shift ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "uninstall.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

ROOT="$(realpath -m "$ROOT")"
LIVE=0
[ "$ROOT" = "/" ] && LIVE=1
P="${ROOT%/}"
UNIT=laserd.service

say() { printf '==> %s\n' "$*"; }
run() {
    if [ "$DRY_RUN" = 1 ]; then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

if [ "$LIVE" = 1 ] && [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
    echo "uninstall.sh: run as root (sudo), or use --dry-run / --root DIR" >&2
    exit 1
fi

if [ "$LIVE" = 1 ]; then
    # Stopping goes through laserd's own shutdown: a running job is stopped safely first.
    if systemctl list-unit-files "$UNIT" >/dev/null 2>&1; then
        run systemctl disable --now "$UNIT" || true
    fi
elif [ -e "$P/etc/systemd/system/$UNIT" ]; then
    run systemctl --root="$ROOT" disable "$UNIT" || true
fi
run rm -f "$P/etc/systemd/system/$UNIT"
run rm -rf "$P/etc/systemd/system/$UNIT.d"
[ "$LIVE" = 1 ] && run systemctl daemon-reload
run rm -rf "$P/opt/laserd"

if [ "$PURGE" = 1 ]; then
    say "purging configuration, state folder and user"
    run rm -rf "$P/etc/laserd" "$P/var/lib/laserd" "$P/var/lib/private/laserd"
    user_tool_args=()
    [ "$LIVE" = 0 ] && user_tool_args=(--prefix "$ROOT")
    if grep -q '^laserd:' "$P/etc/passwd" 2>/dev/null; then
        run userdel "${user_tool_args[@]}" laserd
    fi
else
    say "kept /etc/laserd and /var/lib/laserd (delete them with --purge)"
fi
say "laserd removed"
