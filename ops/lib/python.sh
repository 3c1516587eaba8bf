# Sourced (after ops/lib/setup.sh, which it sources itself when needed): the real MCP peers the tests talk to,
# installed from PyPI into two virtualenvs under ops/.venv/ (never committed):
#   ops/.venv/mcp2  from ops/python/requirements-mcp2.txt: mcp 2.x, mcp-server-time, mcp-server-git; and from
#                   ops/python/requirements-webhooks.txt: standardwebhooks (Tests/Peers/webhook_receiver.py), and
#                   ops/python/requirements-otel.txt: opentelemetry-proto (Tests/Peers/otlp_receiver.py)
#   ops/.venv/mcp1  from ops/python/requirements-mcp1.txt: mcp 1.x (the older client generation) and mcp-proxy
#                   (which requires mcp<2)
# `tollgate_python_peers` creates or refreshes them and exports
#   TOLLGATE_PY2, TOLLGATE_PY1             the two interpreters
#   TOLLGATE_MCP_SERVER_TIME, TOLLGATE_MCP_SERVER_GIT   the reference servers' commands (mcp2)
#   TOLLGATE_MCP_PROXY                     mcp-proxy 0.13.0 (mcp1)
#   TOLLGATE_PEERS                         Tests/Peers (fixture_server.py, mcp_client.py, webhook_receiver.py,
#                                          selftest.sh)
# Idempotent: a venv is rebuilt only when its stamp (a hash of its requirements files and of the base interpreter)
# differs or its interpreter no longer runs, so a warm call costs a few milliseconds and prints nothing.
# The base interpreter is `python3` on PATH, or $TOLLGATE_PYTHON.
#
# mcp-proxy bridges one stdio server to HTTP. One process serves both HTTP transports on one port:
#   "$TOLLGATE_MCP_PROXY" --host 127.0.0.1 --port PORT [--stateless] [-e KEY VALUE]... [--cwd DIR] -- COMMAND ARGS...
#     Streamable HTTP at http://127.0.0.1:PORT/mcp   (always json_response: no SSE-framed POST answers, so no
#                                                     progress; /mcp/ is served too, without a redirect)
#     SSE             at http://127.0.0.1:PORT/sse   (POSTs to /messages/?session_id=...)
#     health          at http://127.0.0.1:PORT/status (200 JSON once it listens: poll it to know it is ready)
#   --port is required in practice: without it uvicorn binds a free port but mcp-proxy logs port 0 and never
#   says which, so pick a free port first. --host defaults to 127.0.0.1. `--` ends mcp-proxy's options, so the
#   server's own options are not taken for its. It starts COMMAND once, at start-up (one upstream session shared
#   by every client), with a minimal environment (PATH, HOME, ...) unless --pass-environment; it exits if the
#   upstream cannot be started or initialized. Its logs (INFO by default; --log-level WARNING) go to stderr.
#   `--transport sse|streamablehttp URL` is the other direction (an HTTP server exposed as stdio), unused here.
#   As a relay it is mcp 1.30's low-level server in front of one mcp 1.30 ClientSession: it answers
#   server/discover with HTTP 400 + a JSON-RPC error (and a fresh session id), so 2.x clients fall back to
#   initialize at 2025-11-25; it passes no progress and forwards no cancellation; the upstream sees one session,
#   whatever the number of clients. SIGTERM ends it (status 143) and its upstream.
#   Example, as Tests/Peers/selftest.sh runs it (PORT: a free port on 127.0.0.1, chosen first):
#     "$TOLLGATE_MCP_PROXY" --host 127.0.0.1 --port PORT --log-level WARNING -- "$TOLLGATE_MCP_SERVER_TIME"
#
# Tests/Peers/selftest.sh checks all of these peers against each other in about a minute.

if ! declare -F tollgate_need_packages >/dev/null; then
    # shellcheck source=setup.sh
    source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
fi

# One venv: _tollgate_venv NAME REQUIREMENTS_FILE BASE_PYTHON [MORE_REQUIREMENTS_FILE...], all the files installed
# by one pip run (so pip checks them against each other). Rebuilds it when stale; prints only on rebuild or error.
_tollgate_venv() {
    local name="$1" requirements="$2" base="$3"
    shift 3
    local -a files=("$requirements" "$@") pip_files=()
    local file
    for file in "${files[@]}"; do pip_files+=(-r "$file"); done
    local venv="$TOLLGATE_ROOT/ops/.venv/$name"
    local stamp="$venv/.tollgate-stamp"
    local want
    want="$(
        {
            echo "tollgate-venv 1"
            cat "${files[@]}"
            "$base" -c 'import sys; print(sys.executable, sys.version)'
        } | sha256sum | cut -d' ' -f1
    )"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/python" -c '' 2>/dev/null; then
        return 0
    fi
    echo "ops: creating the Python venv ops/.venv/$name from ${requirements#"$TOLLGATE_ROOT"/}" >&2
    local log="$TOLLGATE_ROOT/ops/.venv/$name.log"
    rm -rf "$venv"
    {
        if ! "$base" -m venv "$venv"; then
            # No ensurepip (Debian's python3 without python3-venv, or a stripped build): make the venv without pip
            # and install into it with the base interpreter's pip, or with pip run from Debian's wheel of it.
            echo "ops: '$base -m venv' failed (no ensurepip?); retrying without pip" >&2
            rm -rf "$venv"
            "$base" -m venv --without-pip "$venv" || return 1
        fi
        local -a pip
        if "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
            pip=("$venv/bin/python" -m pip)
        elif "$base" -m pip install --help 2>/dev/null | grep -q -- '--python <python>'; then
            pip=("$base" -m pip --python "$venv/bin/python")
        else
            local wheel
            wheel="$(ls /usr/share/python-wheels/pip-*.whl 2>/dev/null | tail -n 1)"
            [ -n "$wheel" ] || { echo "ops: no pip for $venv: install python3-venv or python3-pip" >&2; return 1; }
            pip=("$venv/bin/python" "$wheel/pip")
        fi
        "${pip[@]}" install --quiet --no-input --disable-pip-version-check "${pip_files[@]}" || return 1
    } >"$log" 2>&1 || {
        echo "ops: could not create ops/.venv/$name; its log, ops/.venv/$name.log:" >&2
        tail -n 40 "$log" >&2
        return 1
    }
    echo "$want" >"$stamp"
    rm -f "$log"
}

tollgate_python_peers() {
    tollgate_need_packages python3-venv python3-pip
    local base="${TOLLGATE_PYTHON:-python3}"
    if ! command -v "$base" >/dev/null; then
        echo "ops: no Python interpreter ($base) on PATH: install python3 and python3-venv" >&2
        return 1
    fi
    if ! "$base" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        echo "ops: $base cannot make virtualenvs (need Python >= 3.10 with the venv module: install python3-venv)" >&2
        return 1
    fi
    local root="$TOLLGATE_ROOT/ops/.venv"
    mkdir -p "$root"
    # Ignored by git whatever the repository's .gitignore says.
    [ -f "$root/.gitignore" ] || echo '*' >"$root/.gitignore"
    (
        # Two processes (two test runs) never build the same venvs at once.
        flock 9
        _tollgate_venv mcp2 "$TOLLGATE_ROOT/ops/python/requirements-mcp2.txt" "$base" \
            "$TOLLGATE_ROOT/ops/python/requirements-webhooks.txt" "$TOLLGATE_ROOT/ops/python/requirements-otel.txt" &
        local mcp2=$!
        _tollgate_venv mcp1 "$TOLLGATE_ROOT/ops/python/requirements-mcp1.txt" "$base" &
        local mcp1=$!
        local status=0
        wait "$mcp2" || status=1
        wait "$mcp1" || status=1
        exit "$status"
    ) 9>"$root/.lock" || return 1
    export TOLLGATE_PY2="$root/mcp2/bin/python"
    export TOLLGATE_PY1="$root/mcp1/bin/python"
    export TOLLGATE_MCP_SERVER_TIME="$root/mcp2/bin/mcp-server-time"
    export TOLLGATE_MCP_SERVER_GIT="$root/mcp2/bin/mcp-server-git"
    export TOLLGATE_MCP_PROXY="$root/mcp1/bin/mcp-proxy"
    export TOLLGATE_PEERS="$TOLLGATE_ROOT/Tests/Peers"
}
