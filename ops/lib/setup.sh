# Sourced by ops/run, ops/test and the benchmarks: installs what Tollgate needs on a fresh Debian machine.
#   - the Swift toolchain is expected on PATH (it is the one thing we do not install);
#   - Debian packages: libpq-dev (the client library we link), postgresql (initdb, pg_ctl and the server
#     for the embedded cluster and the tests), python3-venv (the real MCP peers used by the tests), and
#     setpriv (util-linux) if it is missing.
# Idempotent and quiet when everything is present.
set -euo pipefail

TOLLGATE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export TOLLGATE_ROOT

tollgate_need_packages() {
    local missing=()
    local package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "ops: installing Debian packages: ${missing[*]}" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "ops: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

tollgate_setup() {
    command -v swift >/dev/null || { echo "ops: the Swift toolchain (swift) is not on PATH" >&2; exit 1; }
    tollgate_need_packages libpq-dev postgresql python3-venv ca-certificates
    # setpriv starts a stdio server as its `user` (servers.<name>.user) when tollgate runs as root; Debian 12 ships it
    # in util-linux, Debian 10 and 11 in a package of its own.
    if [ ! -x /usr/bin/setpriv ] && [ ! -x /bin/setpriv ]; then
        if apt-cache show setpriv >/dev/null 2>&1; then tollgate_need_packages setpriv; else tollgate_need_packages util-linux; fi
    fi
    # The Debian package creates a cluster of its own and may start it; Tollgate never uses it. As root the
    # embedded cluster runs as the unprivileged `postgres` user that package creates.
}
