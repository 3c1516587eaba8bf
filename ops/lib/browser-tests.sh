#!/usr/bin/env bash
# The browser tests of the reviewer page (Tests/Browser, pytest + Playwright driving Debian's headless Chromium)
# against a real `tollgate serve` on its own embedded PostgreSQL cluster, with the fixture MCP server upstream and the
# official `mcp` client making the held calls. Run by ./ops/test after `swift test`; runnable alone:
#   ops/lib/browser-tests.sh                    # every test (builds the debug tollgate first)
#   ops/lib/browser-tests.sh -k quorum -x       # any pytest option
#   TOLLGATE_BIN=/path/to/tollgate ops/lib/browser-tests.sh   # that binary, nothing built
# Installs what it needs when missing (ops/lib/browser.sh: chromium and fonts by apt-get, Playwright and pytest from
# PyPI into ops/.venv/browser). Phone-sized screenshots go to .build/test-artifacts/browser/ (paths printed at the end).
source "$(dirname "$0")/setup.sh"
source "$(dirname "$0")/python.sh"
source "$(dirname "$0")/browser.sh"
tollgate_setup
tollgate_python_peers
tollgate_browser
cd "$TOLLGATE_ROOT"
if [[ -z "${TOLLGATE_BIN:-}" ]]; then
    echo "ops/lib/browser-tests.sh: swift build --product tollgate" >&2
    swift build --product tollgate >&2
    TOLLGATE_BIN="$(swift build --show-bin-path)/tollgate"
fi
export TOLLGATE_BIN
export TOLLGATE_ARTIFACTS="${TOLLGATE_ARTIFACTS:-$TOLLGATE_ROOT/.build/test-artifacts/browser}"
export PYTHONDONTWRITEBYTECODE=1
status=0
"$TOLLGATE_PY_BROWSER" -m pytest -p no:cacheprovider -q -rfE "$TOLLGATE_ROOT/Tests/Browser" "$@" || status=$?
if [[ $status -ne 0 ]]; then
    echo "ops/lib/browser-tests.sh: the browser tests of the reviewer page FAILED (exit $status): each failure above" \
        "names its test and what the page did; rerun one with: ops/lib/browser-tests.sh -k NAME" >&2
fi
exit "$status"
