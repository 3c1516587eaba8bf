#!/usr/bin/env bash
# Tests/Peers/selftest.sh: a quick end-to-end check of the real MCP peers that the Swift tests use, without
# Tollgate: mcp_client.py (mcp 2.x in modes auto, legacy and 2026-07-28; mcp 1.x) against fixture_server.py (both
# SDK generations) over stdio, streamable HTTP and SSE, against the reference servers mcp-server-time and
# mcp-server-git over stdio, and through mcp-proxy (streamable HTTP and SSE) to mcp-server-time. It checks the
# documented behaviour of both scripts: results, progress, cancellation and time-outs as the upstream saw them
# (ledger and outcome files), the HTTP log, --http-status, garbage on stdio, a dying server.
#
# Usage: Tests/Peers/selftest.sh [--full] [--keep] [--jobs N]
#   --full    every client x transport x fixture-generation pair (24 runs) instead of the quick matrix
#   --keep    keep the work directory (outputs, logs, ledgers) and print its path
#   --jobs N  client runs at once (default 4)
# Prints one line per check, PASS or FAIL with the reason, then "N passed, N failed"; exits 1 if any check
# failed, 64 on bad usage. Everything listens on 127.0.0.1 only; every process it starts runs in a process group
# of its own, and the trap ends those groups and removes the work directory however the script ends.

set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
full=0
keep=0
jobs_max=4
while [ $# -gt 0 ]; do
    case "$1" in
        --full) full=1 ;;
        --keep) keep=1 ;;
        --jobs)
            [ $# -ge 2 ] && [[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "selftest: --jobs needs a number" >&2; exit 64; }
            jobs_max="$2"
            shift
            ;;
        -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "selftest: unknown argument '$1' (see --help)" >&2; exit 64 ;;
    esac
    shift
done

started=$SECONDS
# shellcheck source=../../ops/lib/python.sh
source "$here/../../ops/lib/python.sh"
if ! tollgate_python_peers; then
    echo "FAIL peers: tollgate_python_peers could not build ops/.venv"
    echo "0 passed, 1 failed"
    exit 1
fi
set +e # ops/lib/setup.sh turned errexit on; every check here reports its own failure

work="$(mktemp -d "${TMPDIR:-/tmp}/tollgate-peers.XXXXXX")"
declare -A pid=()  # name -> pid of a process started by spawn (its own process group leader)
declare -a groups=()
declare -a clients=()

cleanup() {
    trap - EXIT INT TERM
    local p alive _
    for p in ${groups[@]+"${groups[@]}"}; do kill -TERM -- "-$p" "$p" 2>/dev/null; done
    for _ in $(seq 30); do
        alive=0
        for p in ${groups[@]+"${groups[@]}"}; do kill -0 -- "-$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in ${groups[@]+"${groups[@]}"}; do kill -KILL -- "-$p" "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ "$keep" = 1 ]; then
        echo "selftest: work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# spawn NAME COMMAND...: runs COMMAND in a process group of its own, stdout to NAME.out, stderr to NAME.err.
spawn() {
    local name="$1"
    shift
    setsid "$@" >"$work/$name.out" 2>"$work/$name.err" </dev/null &
    pid[$name]=$!
    groups+=("$!")
}

# wait_ready NAME: waits (30 s at most) for the fixture server NAME's READY line; prints its URL.
wait_ready() {
    local name="$1" deadline=$((SECONDS + 30)) line
    while [ $SECONDS -lt $deadline ]; do
        line="$(grep -m1 '^READY ' "$work/$name.out" 2>/dev/null)"
        if [ -n "$line" ]; then
            echo "${line#READY }"
            return 0
        fi
        kill -0 "${pid[$name]}" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# wait_port NAME PORT: waits (30 s at most) until PORT on 127.0.0.1 accepts connections.
wait_port() {
    local name="$1" port="$2" deadline=$((SECONDS + 30))
    while [ $SECONDS -lt $deadline ]; do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        kill -0 "${pid[$name]}" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

throttle() {
    local n p
    while :; do
        n=0
        for p in ${clients[@]+"${clients[@]}"}; do kill -0 "${pid[$p]}" 2>/dev/null && n=$((n + 1)); done
        [ "$n" -lt "$jobs_max" ] && return 0
        sleep 0.1
    done
}

cat >"$work/judge.py" <<'PYTHON'
"""The plan (which client runs, with which steps) and the verdicts of selftest.sh."""
import json
import os
import sys

FIXTURE_TOOLS = ["echo", "add", "transfer", "delete_file", "slow", "fail", "crash", "rpc_error", "garbage", "die", "environment", "run"]
CLIENTS = {"c2auto": (2, "auto"), "c2legacy": (2, "legacy"), "c2new": (2, "2026-07-28"), "c1": (1, "auto")}

QUICK = [
    ("c2auto", "stdio", "fx2", "full"),
    ("c2legacy", "stdio", "fx1", "full"),
    ("c2new", "stdio", "fx2", "basic"),
    ("c1", "stdio", "fx2", "full"),
    ("c2auto", "http", "fx2", "full"),
    ("c2legacy", "http", "fx2", "basic"),
    ("c2new", "http", "fx2", "basic"),
    ("c1", "http", "fx2", "basic"),
    ("c2auto", "http", "fx1", "full"),
    ("c1", "http", "fx1", "full"),
    ("c2auto", "sse", "fx2", "full"),
    ("c1", "sse", "fx1", "full"),
    ("c2legacy", "sse", "fx1", "basic"),
    ("c1", "sse", "fx2", "basic"),
]
REAL = [
    ("c2auto", "stdio", "time", "real"),
    ("c2auto", "stdio", "git", "real"),
    ("c1", "http", "proxy", "real"),
    ("c1", "sse", "proxy", "real"),
    ("c2auto", "http", "proxy", "real"),
]


def plan(full):
    checks = []
    if full:
        for client in CLIENTS:
            for transport in ("stdio", "http", "sse"):
                for target in ("fx2", "fx1"):
                    kind = "refused" if client == "c2new" and target == "fx1" else "full"
                    checks.append((client, transport, target, kind))
    else:
        checks = list(QUICK)
    return [(f"{c}_{t}_{g}", c, t, g, k) for c, t, g, k in checks + REAL]


def server_of(transport, target):
    return f"{target}_{transport}" if transport != "stdio" and target.startswith("fx") else None


def steps_for(index, name, client, transport, target, kind, repo):
    gen, _ = CLIENTS[client]
    if target == "time":
        return [{"op": "list_tools"}, {"op": "call_tool", "name": "get_current_time", "arguments": {"timezone": "UTC"}}]
    if target == "git":
        return [{"op": "list_tools"}, {"op": "call_tool", "name": "git_status", "arguments": {"repo_path": repo}}]
    if target == "proxy":
        return [
            {"op": "list_tools"},
            {"op": "call_tool", "name": "get_current_time", "arguments": {"timezone": "UTC"}, "progress": True},
            {"op": "ping"},
        ]
    if kind == "refused":
        return [{"op": "list_tools"}, {"op": "call_tool", "name": "echo", "arguments": {"text": name}}]
    steps = [
        {"op": "list_tools"},
        {"op": "call_tool", "name": "echo", "arguments": {"text": name}},
        {"op": "call_tool", "name": "add", "arguments": {"a": 2, "b": 3}},
        {"op": "call_tool", "name": "slow", "arguments": {"seconds": 0.2, "steps": 2}, "progress": True},
    ]
    if kind == "full":
        # Distinct durations tell this run's abandoned calls apart in a server's shared outcome file.
        steps += [
            {"op": "call_tool", "name": "fail", "arguments": {"message": "nope"}},
            {"op": "call_tool", "name": "crash", "arguments": {}},
            {"op": "call_tool", "name": "rpc_error", "arguments": {"code": -32042, "message": "custom"}},
            {"op": "call_tool", "name": "nosuch", "arguments": {}},
            {"op": "call_tool", "name": "slow", "arguments": {"seconds": 1 + index / 1000}, "cancel_after": 0.2,
             "tag": "cancel"},
            {"op": "call_tool", "name": "slow", "arguments": {"seconds": 1.1 + index / 1000}, "timeout": 0.2,
             "tag": "timeout"},
        ]
    steps.append({"op": "ping"})
    if kind == "full" and gen == 1:
        steps.append({"op": "sleep", "seconds": 1.5})  # the calls 1.x abandoned finish upstream (1.x never cancels)
    if transport == "stdio" and kind == "full":
        steps += [
            {"op": "call_tool", "name": "garbage", "arguments": {}},
            {"op": "call_tool", "name": "echo", "arguments": {"text": name + "-after"}},
            {"op": "call_tool", "name": "die", "arguments": {}},
        ]
    if transport == "http" and target == "fx2":  # that server answers a transfer with a bare HTTP 403
        steps += [
            {"op": "call_tool", "name": "transfer", "arguments": {"amount": 1, "to": "x"}, "tag": "http403"},
            {"op": "call_tool", "name": "echo", "arguments": {"text": name + "-after"}},
        ]
    return steps


def load_lines(path):
    out = []
    try:
        with open(path) as handle:
            for line in handle:
                if line.strip():
                    out.append(json.loads(line))
    except FileNotFoundError:
        pass
    return out


class Check:
    def __init__(self, name):
        self.name = name
        self.problems = []

    def expect(self, condition, problem):
        if not condition:
            self.problems.append(problem)
        return condition


def modern(client, target):
    """Whether this pair ends up at 2026-07-28."""
    return client in ("c2auto", "c2new") and target in ("fx2", "time", "git")


def judge_steps(chk, client, transport, target, kind, steps, records):
    gen, mode = CLIENTS[client]
    by_index = {r["step"]: r for r in records if "op" in r}
    for index, step in enumerate(steps):
        r = by_index.get(index)
        label = f"step {index} ({step['op']} {step.get('name', '')})".replace(" )", ")")
        if r is None:
            if any("fatal" in x for x in records):
                break  # after a fatal step nothing more runs; judged below
            chk.expect(False, f"{label}: no record")
            continue
        op, name, tag = step["op"], step.get("name"), step.get("tag")
        result, error = r.get("result"), r.get("error") or {}
        if kind == "refused":
            code = -32600 if transport == "http" else -32602
            chk.expect(not r["ok"] and error.get("code") == code, f"{label}: want error {code}, got {r}")
            continue
        if op == "list_tools":
            if target.startswith("fx"):
                chk.expect(r["ok"] and result == FIXTURE_TOOLS, f"{label}: got {result or error}")
            elif target in ("time", "proxy"):
                chk.expect(r["ok"] and result == ["get_current_time", "convert_time"], f"{label}: got {result or error}")
            else:
                chk.expect(r["ok"] and "git_status" in (result or []), f"{label}: got {result or error}")
        elif op == "ping":
            if modern(client, target):
                chk.expect(not r["ok"] and error.get("code") == -32601, f"{label}: want -32601 at 2026-07-28, got {r}")
            else:
                chk.expect(r["ok"], f"{label}: got {error}")
        elif op == "sleep":
            chk.expect(r["ok"], f"{label}: {error}")
        elif name == "echo":
            want = step["arguments"]["text"]
            chk.expect(r["ok"] and result == {"isError": False, "content": [want], "structuredContent": {"result": want}},
                       f"{label}: got {result or error}")
        elif name == "add":
            chk.expect(r["ok"] and result["content"] == ["5.0"] and result["structuredContent"] == {"result": 5.0},
                       f"{label}: got {result or error}")
        elif name == "slow" and step.get("progress"):
            chk.expect(r["ok"] and result["content"] == ["slept 0.2s in 2 steps"], f"{label}: got {result or error}")
            messages = [p.get("message") for p in r.get("progress", [])]
            chk.expect(messages == ["step 1/2", "step 2/2"], f"{label}: progress {messages}")
        elif name == "fail":
            chk.expect(r["ok"] and result == {"isError": True, "content": ["nope"]}, f"{label}: got {result or error}")
        elif name == "crash":
            chk.expect(r["ok"] and result["isError"] and result["content"][0].startswith("Error executing tool crash"),
                       f"{label}: got {result or error}")
        elif name == "rpc_error":
            chk.expect(not r["ok"] and error.get("code") == -32042 and error.get("message") == "custom"
                       and error.get("type") == ("MCPError" if gen == 2 else "McpError"), f"{label}: got {r}")
        elif name == "nosuch":
            chk.expect(r["ok"] and result["isError"] and "Unknown tool: nosuch" in result["content"][0],
                       f"{label}: got {result or error}")
        elif tag == "cancel":
            chk.expect(not r["ok"] and error.get("type") == "Cancelled", f"{label}: got {r}")
        elif tag == "timeout":
            code = -32001 if gen == 2 else 408
            chk.expect(not r["ok"] and error.get("code") == code, f"{label}: want code {code}, got {r}")
        elif name == "garbage":
            trouble = [n for n in r.get("notifications", []) if n.get("method") is None and "exception" in n]
            chk.expect(r["ok"] and result["content"] == ["ok"], f"{label}: got {result or error}")
            chk.expect(trouble, f"{label}: the non-JSON-RPC line was not surfaced in notifications")
        elif name == "die":
            chk.expect(not r["ok"] and error.get("message") == "Connection closed", f"{label}: got {r}")
        elif tag == "http403":
            if gen == 2:
                chk.expect(not r["ok"] and error.get("code") == -32603, f"{label}: want -32603, got {r}")
        elif name == "get_current_time":
            sc = (result or {}).get("structuredContent") or {}
            chk.expect(r["ok"] and not result["isError"] and sc.get("timezone") == "UTC", f"{label}: got {result or error}")
            if step.get("progress"):
                chk.expect(r.get("progress") == [], f"{label}: progress through mcp-proxy: {r.get('progress')}")
        elif name == "git_status":
            text = " ".join(map(str, (result or {}).get("content", [])))
            chk.expect(r["ok"] and "On branch" in text and "a.txt" in text, f"{label}: got {result or error}")
        else:
            chk.expect(False, f"{label}: no expectation")


def client_name(record):
    body = record.get("body")
    if not isinstance(body, dict):
        return None
    params = body.get("params") or {}
    info = params.get("clientInfo") or (params.get("_meta") or {}).get("io.modelcontextprotocol/clientInfo") or {}
    return info.get("name")


def headers(record, key="headers"):
    return {k.lower(): v for k, v in record.get(key, [])}


def judge_http_log(chk, name, client, target, log, fatal_expected):
    gen, mode = CLIENTS[client]
    mine = [r for r in log if client_name(r) == name]
    if not chk.expect(mine, "no request of this client in the server's --http-log"):
        return
    agent = "python-httpx2/" if gen == 2 else "python-httpx/"
    chk.expect(all(headers(r).get("user-agent", "").startswith(agent) for r in mine), f"user-agent is not {agent}*")
    chk.expect(all("text/event-stream" in headers(r).get("accept", "") and "application/json" in headers(r).get("accept", "")
                   for r in mine), "a POST without Accept: application/json, text/event-stream")
    if mode in ("auto", "2026-07-28") and gen == 2:
        first = mine[0]
        if mode == "auto":
            chk.expect(first["body"]["method"] == "server/discover", f"first request {first['body']['method']}, not server/discover")
        if modern(client, target):
            for r in mine:
                h = headers(r)
                chk.expect(h.get("mcp-protocol-version") == "2026-07-28" and h.get("mcp-method") == r["body"]["method"]
                           and "mcp-session-id" not in h, f"2026-07-28 request headers {h}")
                if r["body"]["method"] == "tools/call":
                    chk.expect(h.get("mcp-name") == r["body"]["params"]["name"], f"Mcp-Name {h.get('mcp-name')}")
            return
        if mode == "auto":
            chk.expect(first["status"] == 400, f"legacy upstream answered server/discover with {first['status']}")
    init = [r for r in mine if r["body"].get("method") == "initialize"]
    if not chk.expect(init, "no initialize"):
        return
    sid = headers(init[0], "response_headers").get("mcp-session-id")
    if not chk.expect(sid, "initialize answered without Mcp-Session-Id"):
        return
    session = [r for r in log if headers(r).get("mcp-session-id") == sid]
    methods = [r["method"] for r in session]
    chk.expect(all(headers(r).get("mcp-protocol-version") == "2025-11-25" for r in session),
               "a request in the session without MCP-Protocol-Version: 2025-11-25")
    chk.expect("GET" in methods and any(r["method"] == "GET" and r["status"] == 200 for r in session),
               f"no GET stream in the session: {methods}")
    if not fatal_expected:
        chk.expect(methods[-1:] == ["DELETE"], f"session not DELETEd on close: {methods}")


def judge_outcomes(chk, client, steps, outcomes, ledger, name):
    gen, _ = CLIENTS[client]
    for step in steps:
        tag = step.get("tag")
        if tag not in ("cancel", "timeout"):
            continue
        seconds = step["arguments"]["seconds"]
        seen = [o["outcome"] for o in outcomes if o["tool"] == "slow" and o.get("arguments", {}).get("seconds") == seconds]
        want = "cancelled" if gen == 2 else "ok"
        chk.expect(seen == [want], f"{tag}: upstream outcome {seen}, want [{want!r}] (mcp {gen}.x)")
    echoes = [e for e in ledger if e["tool"] == "echo" and e["arguments"].get("text") == name]
    chk.expect(len(echoes) == 1, f"ledger has {len(echoes)} echo({name!r}) lines, want 1")
    chk.expect(not any(e["tool"] == "nosuch" for e in ledger), "an unknown tool reached the ledger")
    if any(s.get("name") == "die" for s in steps):
        chk.expect(any(e["tool"] == "die" for e in ledger), "die is not in the ledger")
        chk.expect(not any(o["tool"] == "die" for o in outcomes), "die has an outcome line")


def judge(work, full):
    passed = failed = 0
    repo = os.path.join(work, "repo")
    ready = json.load(open(os.path.join(work, "servers.json")))

    def report(chk, detail):
        nonlocal passed, failed
        if chk.problems:
            failed += 1
            more = f" (+{len(chk.problems) - 3} more)" if len(chk.problems) > 3 else ""
            print(f"FAIL {chk.name}: " + "; ".join(p[:300] for p in chk.problems[:3]) + more)
        else:
            passed += 1
            print(f"PASS {chk.name}: {detail}")

    for index, (name, client, transport, target, kind) in enumerate(plan(full)):
        gen, mode = CLIENTS[client]
        chk = Check(name)
        steps = load_lines(os.path.join(work, name + ".steps"))[0]
        server = server_of(transport, target) or ("proxy" if target == "proxy" else None)
        if server and not ready.get(server):
            chk.expect(False, f"server {server} never became ready")
            report(chk, "")
            continue
        try:
            records = load_lines(os.path.join(work, name + ".out"))
        except ValueError as exc:
            chk.expect(False, f"stdout is not JSON lines: {exc}")
            report(chk, "")
            continue
        rc = int(open(os.path.join(work, name + ".rc")).read().strip() or -1)
        fatal_expected = (transport == "stdio" and kind == "full") or (gen == 1 and transport == "http" and target == "fx2")
        connected = next((r["connected"] for r in records if "connected" in r), None)
        fatal = next((r for r in records if "fatal" in r), None)
        if not chk.expect(connected, f"no connected line (exit {rc}, {fatal or 'no fatal'})"):
            report(chk, "")
            continue
        sdk = connected["sdk"]
        chk.expect(sdk == ("mcp 2.3.0" if gen == 2 else "mcp 1.30.0"), f"sdk {sdk}")
        if mode == "2026-07-28":
            want = ("none", "2026-07-28")
        elif gen == 2 and mode == "auto" and target in ("fx2", "time", "git"):
            want = ("server/discover", "2026-07-28")
        else:
            want = ("initialize", "2025-11-25")
        got = (connected["handshake"], connected["protocolVersion"])
        chk.expect(got == want, f"handshake/version {got}, want {want}")
        judge_steps(chk, client, transport, target, kind, steps, records)
        if fatal_expected:
            chk.expect(fatal is not None and rc == 2, f"want a fatal line and exit 2, got exit {rc}, {fatal}")
            if fatal and gen == 1 and transport == "http":
                chk.expect("403" in fatal["fatal"], f"1.x should die of the HTTP 403: {fatal}")
        else:
            chk.expect(fatal is None and rc == 0, f"exit {rc}, {fatal}")
        if target.startswith("fx") and kind != "refused":
            base = os.path.join(work, name if transport == "stdio" else server)
            judge_outcomes(chk, client, steps, load_lines(base + ".outcomes"), load_lines(base + ".ledger"), name)
            if transport == "http":
                judge_http_log(chk, name, client, target, load_lines(base + ".http"), fatal_expected)
        ran = len([r for r in records if "op" in r])
        report(chk, f"{sdk} {connected['handshake']} {connected['protocolVersion']}, {ran} steps as documented"
                    + (", then died as expected" if fatal_expected else ""))

    # One line per HTTP request in --http-log, the SSE GET included (its stream ending must not log it again).
    for server in ("fx2_sse", "fx1_sse"):
        chk = Check(f"http-log {server}")
        log = load_lines(os.path.join(work, server + ".http"))
        gets = [r for r in log if r["method"] == "GET" and r["path"] == "/sse"]
        sessions = {r["query"] for r in log if r["method"] == "POST" and r["path"] == "/messages/"}
        chk.expect(gets and len(gets) == len(sessions), f"{len(gets)} GET /sse lines for {len(sessions)} sessions")
        chk.expect(all(r["status"] == 200 and "text/event-stream" in headers(r, "response_headers").get("content-type", "")
                       for r in gets), "a GET /sse line without its 200 text/event-stream")
        report(chk, f"{len(gets)} SSE streams, {len(log)} requests, one line each")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    command, work, full = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    if command == "plan":
        repo = os.path.join(work, "repo")
        for index, (name, client, transport, target, kind) in enumerate(plan(full)):
            with open(os.path.join(work, name + ".steps"), "w") as handle:
                json.dump(steps_for(index, name, client, transport, target, kind, repo), handle)
                handle.write("\n")
            print(name, client, CLIENTS[client][0], CLIENTS[client][1], transport, target)
    else:
        sys.exit(judge(work, full))
PYTHON

py2="$TOLLGATE_PY2"
py1="$TOLLGATE_PY1"
fixture="$TOLLGATE_PEERS/fixture_server.py"

# A repository for mcp-server-git: one commit, one change not staged.
repo="$work/repo"
git init -q "$repo" && printf 'one\n' >"$repo/a.txt" && git -C "$repo" add a.txt &&
    git -C "$repo" -c user.name=selftest -c user.email=selftest@127.0.0.1 commit -qm one && printf 'two\n' >>"$repo/a.txt" ||
    echo "selftest: could not make the git repository in $repo" >&2

plan="$("$py1" "$work/judge.py" plan "$work" "$full")" || { echo "FAIL plan: judge.py plan failed"; exit 1; }

# The HTTP upstreams: the fixture in both generations over both HTTP transports (the mcp 2.x one over streamable
# HTTP answers a transfer with a bare 403), and mcp-proxy relaying mcp-server-time.
for server in fx2_http fx1_http fx2_sse fx1_sse; do
    case "$server" in fx2_*) python="$py2" ;; *) python="$py1" ;; esac
    case "$server" in *_http) transport=streamable-http ;; *) transport=sse ;; esac
    extra=()
    [ "$server" = fx2_http ] && extra=(--http-status transfer=403)
    spawn "$server" "$python" "$fixture" --transport "$transport" --ledger "$work/$server.ledger" \
        --outcomes "$work/$server.outcomes" --http-log "$work/$server.http" ${extra[@]+"${extra[@]}"}
done
proxy_port="$("$py1" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
spawn proxy "$TOLLGATE_MCP_PROXY" --host 127.0.0.1 --port "$proxy_port" --log-level WARNING -- "$TOLLGATE_MCP_SERVER_TIME"

declare -A url=()
servers_checked=0
check_servers() {
    local server line p=0 f=0
    for server in fx2_http fx1_http fx2_sse fx1_sse; do
        if url[$server]="$(wait_ready "$server")"; then
            echo "PASS server $server: READY ${url[$server]}"
            p=$((p + 1))
        else
            echo "FAIL server $server: no READY line within 30 s: $(tail -n 3 "$work/$server.err" | tr '\n' ' ')"
            unset "url[$server]"
            f=$((f + 1))
        fi
    done
    if wait_port proxy "$proxy_port"; then
        url[proxy]="http://127.0.0.1:$proxy_port"
        echo "PASS server proxy: mcp-proxy $("$TOLLGATE_MCP_PROXY" --version 2>&1 | awk '{print $2}') listening on ${url[proxy]} (/mcp and /sse)"
        p=$((p + 1))
    else
        echo "FAIL server proxy: mcp-proxy did not listen on port $proxy_port within 30 s: $(tail -n 3 "$work/proxy.err" | tr '\n' ' ')"
        f=$((f + 1))
    fi
    server_passed=$p
    server_failed=$f
    {
        printf '{'
        local sep=""
        for server in fx2_http fx1_http fx2_sse fx1_sse proxy; do
            printf '%s"%s": %s' "$sep" "$server" "$([ -n "${url[$server]:-}" ] && echo true || echo false)"
            sep=", "
        done
        printf '}\n'
    } >"$work/servers.json"
    servers_checked=1
}

# run_check NAME CLIENT GEN MODE TRANSPORT TARGET: one mcp_client.py run in the background (45 s at most).
run_check() {
    local name="$1" gen="$3" mode="$4" transport="$5" target="$6" python command server
    [ "$gen" = 2 ] && python="$py2" || python="$py1"
    local -a args=(--client-name "$name" --mode "$mode" --steps "@$work/$name.steps")
    case "$transport:$target" in
        stdio:fx2 | stdio:fx1)
            [ "$target" = fx2 ] && command="$py2" || command="$py1"
            command="$(printf '%q %q --transport stdio --ledger %q --outcomes %q' "$command" "$fixture" \
                "$work/$name.ledger" "$work/$name.outcomes")"
            args+=(--transport stdio --command "$command")
            ;;
        stdio:time) args+=(--transport stdio --command "$(printf '%q' "$TOLLGATE_MCP_SERVER_TIME")") ;;
        stdio:git) args+=(--transport stdio --command "$(printf '%q --repository %q' "$TOLLGATE_MCP_SERVER_GIT" "$repo")") ;;
        http:proxy) args+=(--transport streamable-http --url "${url[proxy]:-}/mcp") ;;
        sse:proxy) args+=(--transport sse --url "${url[proxy]:-}/sse") ;;
        *)
            server="${target}_$transport"
            [ "$transport" = http ] && args+=(--transport streamable-http) || args+=(--transport sse)
            args+=(--url "${url[$server]:-}")
            ;;
    esac
    throttle
    spawn "$name" timeout -k 2 45 "$python" "$TOLLGATE_PEERS/mcp_client.py" "${args[@]}"
    clients+=("$name")
}

# stdio checks first (they need no server), then the rest once the servers are up.
while read -r name client gen mode transport target; do
    [ "$transport" = stdio ] && run_check "$name" "$client" "$gen" "$mode" "$transport" "$target"
done <<<"$plan"
check_servers
while read -r name client gen mode transport target; do
    [ "$transport" = stdio ] && continue
    case "$target" in proxy) server=proxy ;; *) server="${target}_$transport" ;; esac
    if [ -z "${url[$server]:-}" ]; then
        : >"$work/$name.out"
        echo 2 >"$work/$name.rc"
        continue
    fi
    run_check "$name" "$client" "$gen" "$mode" "$transport" "$target"
done <<<"$plan"

for name in ${clients[@]+"${clients[@]}"}; do
    wait "${pid[$name]}"
    echo $? >"$work/$name.rc"
done

result="$("$py1" "$work/judge.py" judge "$work" "$full")"
status=$?
summary="$(tail -n 1 <<<"$result")"
if [[ "$summary" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    sed '$d' <<<"$result"
    passed=$((BASH_REMATCH[1] + server_passed))
    failed=$((BASH_REMATCH[2] + server_failed))
else
    [ -n "$result" ] && echo "$result"
    echo "FAIL judge: judge.py ended with status $status and no summary (see the traceback above)"
    passed=$server_passed
    failed=$((server_failed + 1))
fi
echo "selftest: $((SECONDS - started)) s, work directory $work$([ "$keep" = 1 ] || echo ' (removed)')"
echo "$passed passed, $failed failed"
[ "$status" = 0 ] && [ "$failed" = 0 ]
