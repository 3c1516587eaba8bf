# Sourced (after ops/lib/setup.sh and ops/lib/python.sh, which it sources itself when needed): what the browser tests
# of the reviewer page (Tests/Browser, run by ops/lib/browser-tests.sh) need, installed from the two registries this
# project reaches:
#   - Debian's `chromium` and fonts (fonts-liberation, fonts-dejavu-core), by apt-get when missing;
#   - Playwright for Python and pytest from PyPI, pinned in ops/python/requirements-browser.txt, into a venv of their
#     own, ops/.venv/browser (rebuilt only when that file or the base interpreter changes, like the MCP peers').
# Playwright never downloads a browser here (`playwright install` is never run: browser downloads are not reachable):
# the tests launch Debian's /usr/bin/chromium through Playwright's `executable_path`. As root Chromium needs
# --no-sandbox, which Playwright passes by default (its chromium_sandbox option is off).
# `tollgate_browser` exports
#   TOLLGATE_PY_BROWSER   the venv's interpreter (with playwright and pytest)
#   TOLLGATE_CHROMIUM     the browser, /usr/bin/chromium unless already set
# Idempotent: a warm call costs a few milliseconds and prints nothing.

if ! declare -F _tollgate_venv >/dev/null; then
    # shellcheck source=python.sh
    source "$(dirname "${BASH_SOURCE[0]}")/python.sh"
fi

tollgate_browser() {
    tollgate_need_packages chromium fonts-liberation fonts-dejavu-core python3-venv python3-pip
    export TOLLGATE_CHROMIUM="${TOLLGATE_CHROMIUM:-/usr/bin/chromium}"
    if [ ! -x "$TOLLGATE_CHROMIUM" ]; then
        echo "ops: no browser at $TOLLGATE_CHROMIUM (Debian's chromium package, or set TOLLGATE_CHROMIUM)" >&2
        return 1
    fi
    local base="${TOLLGATE_PYTHON:-python3}"
    local root="$TOLLGATE_ROOT/ops/.venv"
    mkdir -p "$root"
    [ -f "$root/.gitignore" ] || echo '*' >"$root/.gitignore"
    (
        flock 9
        # Playwright's own browser download is never wanted: even an accidental `playwright install` finds nothing.
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
            _tollgate_venv browser "$TOLLGATE_ROOT/ops/python/requirements-browser.txt" "$base"
    ) 9>"$root/.lock" || return 1
    export TOLLGATE_PY_BROWSER="$root/browser/bin/python"
}
