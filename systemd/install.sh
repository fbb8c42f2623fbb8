#!/usr/bin/env bash
# Install (or upgrade) laserd as a systemd service on Raspberry Pi OS / Debian.
#
#   sudo systemd/install.sh              # install or upgrade from this checkout, start, show setup code
#   systemd/install.sh --dry-run         # print every step, change nothing
#   systemd/install.sh --root DIR        # lay the files out under DIR (image builds, tests)
#
# Steps: apt packages, the `laserd` system user (groups dialout, gpio), /opt/laserd/venv with
# `pip install <repo>[systemd]`, /etc/laserd/laserd.toml from config/laserd.toml when absent,
# /var/lib/laserd (0700), the unit in /etc/systemd/system, enabled and (re)started, and the
# one-time setup code read back from the journal. Running it again upgrades in place and
# never overwrites the configuration or the state folder.
#
# With --root DIR (or DESTDIR=DIR) nothing outside DIR is touched: apt-get, starting the
# service and reading the journal are skipped; the user is added to DIR/etc/passwd when that
# file exists; the unit is enabled with `systemctl --root`. A venv built there has DIR in its
# script paths, so an image build passes --skip-venv and builds /opt/laserd/venv inside the
# image (for example by running this script in a chroot).
set -euo pipefail

usage() {
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'
Options:
  --root DIR     install under DIR instead of / (also: DESTDIR=DIR)
  --dry-run      print the steps without doing them
  --skip-apt     do not install Debian packages
  --skip-venv    do not create or update /opt/laserd/venv (image builds that provide it)
  --no-start     install and enable, but do not (re)start the service
  -h, --help     this text
EOF
}

ROOT="${DESTDIR:-/}"
DRY_RUN=0
SKIP_APT=0
SKIP_VENV=0
NO_START=0
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
        --root=*) ROOT="${1#--root=}"; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        --skip-apt) SKIP_APT=1; shift ;;
        --skip-venv) SKIP_VENV=1; shift ;;
        --no-start) NO_START=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(realpath -m "$ROOT")"
LIVE=0
[ "$ROOT" = "/" ] && LIVE=1
P="${ROOT%/}"   # prefix for paths: "" on the live system

APP_USER=laserd
PREFIX_DIR=/opt/laserd
VENV="$PREFIX_DIR/venv"
CONF_DIR=/etc/laserd
CONF="$CONF_DIR/laserd.toml"
STATE_DIR=/var/lib/laserd
UNIT_DIR=/etc/systemd/system
UNIT=laserd.service
APT_PACKAGES=(python3 python3-venv python3-dev gcc pkg-config libsystemd-dev sqlite3)
PYTHON="${PYTHON:-python3}"

say() { printf '==> %s\n' "$*"; }
run() {
    # Every change to the system goes through here, so --dry-run shows all of it.
    if [ "$DRY_RUN" = 1 ]; then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

if [ ! -f "$REPO/setup.cfg" ] || [ ! -f "$REPO/systemd/$UNIT" ]; then
    echo "install.sh: run it from a laserd checkout ($REPO has no setup.cfg / systemd/$UNIT)" >&2
    exit 1
fi
[ -f "$REPO/config/laserd.toml" ] || {
    echo "install.sh: $REPO/config/laserd.toml (the example configuration) is missing" >&2
    exit 1
}
if [ "$LIVE" = 1 ] && [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (sudo), or use --dry-run / --root DIR" >&2
    exit 1
fi

say "installing laserd from $REPO into ${ROOT}"

# ---- 1. Debian packages: a compiler and libsystemd headers build systemd-python in the venv
if [ "$SKIP_APT" = 1 ]; then
    say "skipping apt packages (--skip-apt)"
elif [ "$LIVE" = 0 ]; then
    say "skipping apt packages (not the live system)"
else
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        run apt-get update
        run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            "${missing[@]}"
    else
        say "apt packages already present"
    fi
fi

# ---- 2. system user and groups (gpio exists on Raspberry Pi OS; create it elsewhere)
user_tool_args=()
have_accounts=1
if [ "$LIVE" = 0 ]; then
    if [ -f "$P/etc/passwd" ] && [ -f "$P/etc/group" ]; then
        user_tool_args=(--prefix "$ROOT")
    else
        have_accounts=0
        say "skipping the $APP_USER user ($P/etc/passwd absent)"
    fi
fi
has_entry() { grep -q "^$2:" "$P/etc/$1" 2>/dev/null; }
if [ "$have_accounts" = 1 ]; then
    for grp in dialout gpio; do
        has_entry group "$grp" || run groupadd "${user_tool_args[@]}" --system "$grp"
    done
    if has_entry passwd "$APP_USER"; then
        say "user $APP_USER exists"
    else
        # A group left behind by an earlier, partly removed install is reused.
        group_arg=(--user-group)
        has_entry group "$APP_USER" && group_arg=(--gid "$APP_USER")
        run useradd "${user_tool_args[@]}" --system "${group_arg[@]}" --home-dir "$STATE_DIR" \
            --no-create-home --shell /usr/sbin/nologin --comment "laserd appliance" "$APP_USER"
    fi
    run usermod "${user_tool_args[@]}" -a -G dialout,gpio "$APP_USER"
fi
# Numeric ids from the target's own passwd, so --root never resolves names on the host.
gid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$P/etc/group" 2>/dev/null; }
uid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$P/etc/passwd" 2>/dev/null; }

# ---- 3. the virtual environment with laserd and systemd-python
if [ "$SKIP_VENV" = 1 ]; then
    say "skipping the virtual environment (--skip-venv)"
else
    if [ ! -x "$P$VENV/bin/python" ]; then
        run mkdir -p "$P$PREFIX_DIR"
        run "$PYTHON" -m venv "$P$VENV"
    fi
    run "$P$VENV/bin/pip" install --quiet --upgrade pip
    run "$P$VENV/bin/pip" install --quiet --upgrade "${REPO}[systemd]"
    # Same version number after a `git pull` still means new code: reinstall the package itself.
    run "$P$VENV/bin/pip" install --quiet --force-reinstall --no-deps "$REPO"
    if grep -qs "Raspberry Pi" "$P/proc/device-tree/model"; then
        # gpiozero's preferred pin backend on current Raspberry Pi OS kernels.
        run "$P$VENV/bin/pip" install --quiet lgpio || say "warning: lgpio did not install"
    fi
    run install -m 0644 "$REPO/README.md" "$P$PREFIX_DIR/README.md"
fi

# ---- 4. configuration (kept when present) and the state folder
run install -d -m 0755 "$P$CONF_DIR"
if [ -e "$P$CONF" ]; then
    say "keeping existing $CONF"
else
    run install -m 0640 "$REPO/config/laserd.toml" "$P$CONF"
    gid="$(gid_of "$APP_USER")"
    [ -n "$gid" ] && run chgrp "$gid" "$P$CONF"
fi
run install -d -m 0700 "$P$STATE_DIR"
uid="$(uid_of "$APP_USER")"
gid="$(gid_of "$APP_USER")"
if [ -n "$uid" ] && [ -n "$gid" ]; then
    run chown "$uid:$gid" "$P$STATE_DIR"
fi

# ---- 5. the unit, enabled; started on the live system
run install -d -m 0755 "$P$UNIT_DIR"
run install -m 0644 "$REPO/systemd/$UNIT" "$P$UNIT_DIR/$UNIT"
if [ "$LIVE" = 1 ]; then
    run systemctl daemon-reload
    run systemctl enable "$UNIT"
else
    run systemctl --root="$ROOT" enable "$UNIT"
fi

if [ "$LIVE" = 0 ] || [ "$NO_START" = 1 ] || [ "$DRY_RUN" = 1 ]; then
    say "not starting the service here; on the device: systemctl restart laserd"
    say "done"
    exit 0
fi

since="$(date '+%Y-%m-%d %H:%M:%S')"
run systemctl restart "$UNIT"
say "laserd is $(systemctl is-active "$UNIT" || true); waiting for the setup code"
code_line=""
for _ in $(seq 1 30); do
    code_line="$(journalctl -u "$UNIT" --since "$since" -o cat --no-pager 2>/dev/null \
        | grep -i "setup code" | tail -n 1 || true)"
    [ -n "$code_line" ] && break
    systemctl is-active --quiet "$UNIT" || break
    sleep 1
done
if [ -n "$code_line" ]; then
    say "$code_line"
    port="$(awk '/^\[server\]/ { s = 1; next } /^\[/ { s = 0 }
        s && $1 == "port" { print $3; exit }' "$CONF" 2>/dev/null)"
    addr="$(hostname -I 2>/dev/null | awk '{ print $1 }')"
    say "open http://${addr:-this-host}:${port:-8080}/ and create the first admin with it"
else
    say "no setup code in the journal (an admin already exists, or see: journalctl -u laserd)"
fi
systemctl --no-pager --lines=0 status "$UNIT" || true
say "done"
