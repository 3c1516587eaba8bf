#!/usr/bin/env python3
"""A small, real MCP server for Tollgate's interop tests, built on the official Python SDK's high-level server.

It runs with either generation of the SDK:
  - mcp 2.x (ops/.venv/mcp2): `mcp.server.mcpserver.MCPServer`; answers `server/discover` and serves
    protocol 2026-07-28 as well as the initialize handshake (2025-11-25 and older);
  - mcp 1.x (ops/.venv/mcp1): `mcp.server.fastmcp.FastMCP`; initialize handshake only, which makes it
    a "legacy-only" upstream.

Usage:
  python fixture_server.py --transport stdio [--ledger FILE] [--outcomes FILE] [--tools-list error|hang]
  python fixture_server.py --transport streamable-http|sse [--port N] [--json-response] [--stateless]
                           [--ledger FILE] [--outcomes FILE] [--http-log FILE] [--http-status TOOL=CODE]...
                           [--http-status-after TOOL=CODE]...

Over HTTP it listens on 127.0.0.1 only (port 0, the default, picks a free port) and prints exactly one
line `READY <url>` to stdout once it accepts connections: `http://127.0.0.1:PORT/mcp` for streamable-http,
`http://127.0.0.1:PORT/sse` for sse (its POST endpoint is `/messages/?session_id=...`, announced in the
stream). Nothing else is written to stdout (except by `garbage`). Logs go to stderr. On SIGTERM or SIGINT it
shuts down gracefully (open streams get 2 s) and then exits by the same signal (status 143 for SIGTERM).
--json-response and --stateless apply to streamable-http only. Both SDK generations guard against DNS
rebinding: a request whose Host is not 127.0.0.1:*, localhost:* or [::1]:* is answered 421, one with an
Origin that is not http://127.0.0.1:* (or localhost, [::1]) 403, so a relay must not forward the agent's
Host or Origin upstream.

How the two generations answer (what a test sees through a client):
  - the 1.x server answers `server/discover` with an error (HTTP 400 + JSON-RPC error over streamable-http,
    and that 400 carries a fresh, never-used Mcp-Session-Id), so a 2.x `auto` client falls back to
    `initialize`; a 2.x client in mode 2026-07-28 gets -32602 "Invalid request parameters" (stdio, sse) or
    -32600 "Bad Request: Missing session ID" (HTTP 400, streamable-http) for every request;
  - an unknown tool, or arguments that fail the schema, are an isError result ("Unknown tool: NAME",
    "Error executing tool NAME: 1 validation error ..."), never a JSON-RPC error;
  - `crash` reads "Error executing tool crash" (2.x) or "Error executing tool crash: crash requested" (1.x);
  - `ping` is served by both, but a 2.x server refuses it (-32601) on a session at 2026-07-28 (a 2.x client
    in mode auto or 2026-07-28);
  - with --json-response progress notifications are dropped (the POST answer is one JSON body).

Tools:
  echo(text)                 -> text                                   (readOnlyHint)
  add(a, b)                  -> a + b, also as structuredContent       (readOnlyHint)
  transfer(amount, to)       -> a pretend transfer receipt (no annotations)
  delete_file(path)          -> reports; deletes nothing               (destructiveHint)
  slow(seconds, steps=1)     -> sleeps, sending `steps` progress notifications when the call asked for them
  fail(message)              -> a CallToolResult with isError: true and `message` as its text
  crash()                    -> raises RuntimeError (the SDK turns it into an isError result)
  rpc_error(code, message)   -> answers with a JSON-RPC error (code, message)
  garbage(text)              -> writes `text` plus a newline straight to the process's original stdout (in
                                stdio mode: a line that is not JSON-RPC on the protocol stream), then returns "ok"
  die(code=3)                -> the process exits at once with `code` (no answer is sent, no outcome line)
  environment()              -> the process's environment, a JSON object of names to values (as text)
  run(argv, stdin="")        -> runs the program argv[0] with arguments argv[1:] (no shell, 30 s limit) and
                                returns {"status": N, "stdout": TEXT, "stderr": TEXT} as JSON text (status -1
                                and the reason in stderr when it cannot be started or times out)
  chatty(text, count=3)      -> sends `count` log messages (notifications/message, level info, data "TEXT 1",
                                "TEXT 2", ...) related to the call, then returns text. At 2026-07-28 a request
                                gets them only when it opted in (`_meta["io.modelcontextprotocol/logLevel"]`);
                                on an initialize session after logging/setLevel (or by default with 1.x)
  change_tools()             -> publishes notifications/tools/list_changed (2.x: to the subscriptions/listen
                                streams that asked for it; 1.x: on the session), then returns "ok"
  touch(uri)                 -> publishes notifications/resources/updated for `uri` (2.x: to the listen streams
                                subscribed to it; 1.x: on the session), then returns "ok"

Resources: `fixture://note` (text "a note from the fixture").

With --tools-list error, the server answers `tools/list` with a JSON-RPC error (-32603); with --tools-list hang it
never answers it. Calls still reach the tools.

With --tools-file FILE, each `tools/list` answers with the JSON array of tool objects in FILE, read afresh at each
listing (a test changes the list while sessions are open by rewriting the file); `tools/call` still runs the tools above.

Ledger: with --ledger FILE, every tools/call that reaches a tool appends one JSON line
`{"tool": NAME, "arguments": {...}, "time": UNIX_SECONDS}` *before* the tool runs (so a test can assert that
the upstream ran a call exactly once, or never). With --outcomes FILE, each call also appends
`{"tool": NAME, "arguments": {...}, "outcome": "ok"|"error"|"raised"|"cancelled", "time": ...}` when it ends,
which shows whether a cancellation reached the upstream ("cancelled": cancelled by notifications/cancelled or
by its HTTP request going away; "ok" long after the client gave up: nobody told the upstream). Calls to
unknown tools, or with arguments that fail the tool's schema, are answered by the SDK and never reach the
ledger. The arguments recorded are the validated ones, defaults filled in (`1` for a `number` parameter is
recorded as `1.0`; `slow(seconds=1)` as `{"seconds": 1.0, "steps": 1}`).

With --http-log FILE (HTTP only), every HTTP request appends one line
`{"method", "path", "query", "headers": [[name, value], ...], "body", "status", "response_headers", "time"}`
when its response starts (an SSE GET: when the stream opens; "body" is the parsed JSON of a POST, or null).
With --http-status TOOL=CODE (HTTP only, repeatable), a tools/call of TOOL gets that bare HTTP status, no body
(over sse that is the answer to the POST to /messages/, which kills the SDK clients' session: see
mcp_client.py). With --http-status-after TOOL=CODE (streamable-http only, repeatable), a tools/call of TOOL
runs first (it reaches the ledger and acts) and its answer is then thrown away and replaced by that bare
status: an upstream that fails after doing the work.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

import anyio

# ---- SDK generation -------------------------------------------------------------------------------------------
try:  # mcp 2.x
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.shared.exceptions import MCPError

    SDK_GENERATION = 2
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context, FastMCP
    from mcp.shared.exceptions import McpError, UrlElicitationRequiredError
    from mcp.types import ErrorData

    SDK_GENERATION = 1

from mcp.types import CallToolResult, ToolAnnotations

# Where `garbage` writes. mcp 2.x's stdio server points fd 1 at stderr while it serves (so that stray prints
# cannot corrupt the protocol stream) and writes the protocol to a private duplicate; main() keeps its own
# duplicate of the original stdout taken before the SDK claims it, which is the protocol pipe in stdio mode.
WIRE_FD = 1

SERVER_NAME = "tollgate-fixture"
SERVER_VERSION = "1.0.0"

READ_ONLY = ToolAnnotations.model_validate({"readOnlyHint": True, "destructiveHint": False, "openWorldHint": False})
DESTRUCTIVE = ToolAnnotations.model_validate({"readOnlyHint": False, "destructiveHint": True, "idempotentHint": True})


def _json_line(path: str | None, record: dict[str, Any]) -> None:
    if not path:
        return
    line = json.dumps(record, sort_keys=True) + "\n"
    # One write on an O_APPEND descriptor: concurrent calls never interleave within a line.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _rpc_error(code: int, message: str) -> Exception:
    if SDK_GENERATION == 2:
        return MCPError(code=code, message=message)

    # FastMCP 1.x turns every exception raised by a tool into an isError result, except
    # UrlElicitationRequiredError, which its low-level server answers with the exception's ErrorData.
    class _RawRpcError(UrlElicitationRequiredError):
        def __init__(self) -> None:
            McpError.__init__(self, ErrorData(code=code, message=message))

    return _RawRpcError()


def build_server(args: argparse.Namespace) -> Any:
    if SDK_GENERATION == 2:
        server = MCPServer(SERVER_NAME, version=SERVER_VERSION, log_level="WARNING")
    else:
        server = FastMCP(
            SERVER_NAME,
            host="127.0.0.1",
            port=args.port,
            log_level="WARNING",
            json_response=args.json_response,
            stateless_http=args.stateless,
        )

    def recorded(fn):
        """Ledger and outcome lines around a tool; keeps the signature so the SDK derives the same schema."""
        signature = inspect.signature(fn)
        context_names = {name for name, p in signature.parameters.items() if p.annotation in (Context, "Context")}

        @functools.wraps(fn)
        async def wrapper(*a, **kw):
            arguments = signature.bind_partial(*a, **kw).arguments
            arguments = {k: v for k, v in arguments.items() if k not in context_names}
            _json_line(args.ledger, {"tool": fn.__name__, "arguments": arguments, "time": time.time()})
            outcome = "ok"
            try:
                result = fn(*a, **kw)
                if inspect.isawaitable(result):
                    result = await result
                if isinstance(result, CallToolResult) and getattr(result, "is_error", getattr(result, "isError", False)):
                    outcome = "error"
                return result
            except BaseException as exc:
                outcome = "cancelled" if isinstance(exc, anyio.get_cancelled_exc_class()) else "raised"
                raise
            finally:
                _json_line(
                    args.outcomes, {"tool": fn.__name__, "arguments": arguments, "outcome": outcome, "time": time.time()}
                )

        return wrapper

    @server.tool(annotations=READ_ONLY, description="Returns its text unchanged.")
    @recorded
    def echo(text: str) -> str:
        return text

    @server.tool(annotations=READ_ONLY, description="Adds two numbers.")
    @recorded
    def add(a: float, b: float) -> float:
        return a + b

    @server.tool(description="Pretends to transfer an amount of money to someone (moves nothing).")
    @recorded
    def transfer(amount: float, to: str) -> dict[str, Any]:
        return {"status": "transferred", "amount": amount, "to": to}

    @server.tool(annotations=DESTRUCTIVE, description="Pretends to delete a file (deletes nothing, just reports).")
    @recorded
    def delete_file(path: str) -> str:
        return f"deleted {path} (pretend: nothing was deleted)"

    @server.tool(description="Sleeps for `seconds`, in `steps` steps, reporting progress after each step.")
    @recorded
    async def slow(seconds: float, ctx: Context, steps: int = 1) -> str:
        steps = max(1, steps)
        for step in range(1, steps + 1):
            await anyio.sleep(seconds / steps)
            await ctx.report_progress(step, steps, f"step {step}/{steps}")
        return f"slept {seconds}s in {steps} steps"

    @server.tool(description="Returns a tool error (isError: true) carrying the message.")
    @recorded
    def fail(message: str) -> CallToolResult:
        return CallToolResult.model_validate({"content": [{"type": "text", "text": message}], "isError": True})

    @server.tool(description="Raises an exception inside the tool.")
    @recorded
    def crash() -> str:
        raise RuntimeError("crash requested")

    @server.tool(description="Answers with a JSON-RPC error instead of a result.")
    @recorded
    def rpc_error(code: int, message: str) -> str:
        raise _rpc_error(code, message)

    @server.tool(description="Writes a line that is not JSON-RPC to the original stdout, then returns 'ok'.")
    @recorded
    def garbage(text: str = "this is not JSON-RPC") -> str:
        os.write(WIRE_FD, (text + "\n").encode())
        return "ok"

    @server.tool(description="Exits the server process at once with the given code.")
    @recorded
    def die(code: int = 3) -> str:
        sys.stderr.flush()
        os._exit(code)

    @server.tool(description="Returns the process's environment as a JSON object.")
    @recorded
    def environment() -> str:
        return json.dumps(dict(os.environ), sort_keys=True)

    @server.tool(description="Runs a program (argv, no shell) and returns its status, stdout and stderr as JSON.")
    @recorded
    def run(argv: list[str], stdin: str = "") -> str:
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30)
            result = {"status": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            result = {"status": -1, "stdout": "", "stderr": str(exc)}
        return json.dumps(result, sort_keys=True)

    @server.tool(description="Sends `count` info log messages ('TEXT 1', 'TEXT 2', ...) while it runs, then returns `text`.")
    @recorded
    async def chatty(text: str, ctx: Context, count: int = 3) -> str:
        for index in range(1, max(0, count) + 1):
            await ctx.info(f"{text} {index}")
        return text

    @server.tool(description="Announces that the tool list changed (notifications/tools/list_changed), then returns 'ok'.")
    @recorded
    async def change_tools(ctx: Context) -> str:
        if SDK_GENERATION == 2:
            await ctx.notify_tools_changed()  # to every subscriptions/listen stream that asked for it
        else:
            await ctx.session.send_tool_list_changed()
        return "ok"

    @server.tool(description="Announces that the resource `uri` changed (notifications/resources/updated), then returns 'ok'.")
    @recorded
    async def touch(uri: str, ctx: Context) -> str:
        if SDK_GENERATION == 2:
            await ctx.notify_resource_updated(uri)  # to every subscriptions/listen stream subscribed to `uri`
        else:
            await ctx.session.send_resource_updated(uri)
        return "ok"

    @server.resource("fixture://note", description="A short text, for resources/read.")
    def note() -> str:
        return "a note from the fixture"

    if args.tools_file:
        # --tools-file FILE: each tools/list answers with the JSON array of tool objects in FILE, read afresh each time
        # (so a test can change the list while sessions are open); tools/call still runs the fixture's own tools.
        from mcp.types import Tool as ListedTool

        async def listed_from_file() -> Any:
            with open(args.tools_file) as handle:
                return [ListedTool.model_validate(tool) for tool in json.load(handle)]

        server.list_tools = listed_from_file
        if SDK_GENERATION == 1:
            server._mcp_server.list_tools()(listed_from_file)

    if args.tools_list != "normal":
        # --tools-list error|hang: the server's own tools/list fails (a JSON-RPC error) or never answers.
        async def broken_list_tools() -> Any:
            if args.tools_list == "hang":
                await anyio.sleep(3600)
            raise _rpc_error(-32603, "tools/list is broken on purpose")

        server.list_tools = broken_list_tools
        if SDK_GENERATION == 1:
            server._mcp_server.list_tools()(broken_list_tools)

    return server


class HttpFixtures:
    """ASGI middleware for the HTTP transports.

    --http-log FILE: one JSON line per HTTP request, written when the response starts (method, path, query,
      request headers, request body, response status and headers), so tests can see exactly what reached the
      upstream (e.g. which headers a gateway forwarded).
    --http-status TOOL=CODE: a POSTed `tools/call` of TOOL is answered with that bare HTTP status and an empty
      body, before the MCP server sees it (so it never reaches the ledger): an upstream failing at the HTTP
      layer.
    --http-status-after TOOL=CODE: a POSTed `tools/call` of TOOL goes to the MCP server, which runs it (ledger
      line and all); its answer is discarded and replaced by that bare HTTP status: an upstream that acts and
      then fails at the HTTP layer.
    """

    def __init__(
        self, app: Any, log_path: str | None, statuses: dict[str, int], statuses_after: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.log_path = log_path
        self.statuses = statuses
        self.statuses_after = statuses_after or {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = b""
        if scope["method"] == "POST":
            while True:  # buffer the whole request body, then replay it to the app
                message = await receive()
                if message["type"] != "http.request":
                    break
                raw += message.get("body", b"")
                if not message.get("more_body", False):
                    break
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")

        replayed = False
        logged = False

        async def replay() -> Any:
            nonlocal replayed
            if scope["method"] == "POST" and not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        async def logged_send(message: Any) -> None:
            nonlocal logged
            # Only the first response start of a request: the SDK's SSE endpoint sends a second one (which the
            # server drops) when the stream ends, and that would log the same GET twice.
            if message["type"] == "http.response.start" and self.log_path and not logged:
                logged = True
                _json_line(
                    self.log_path,
                    {
                        "method": scope["method"],
                        "path": scope["path"],
                        "query": scope.get("query_string", b"").decode("latin-1"),
                        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
                        "body": body,
                        "status": message["status"],
                        "response_headers": [
                            [k.decode("latin-1"), v.decode("latin-1")] for k, v in message.get("headers", [])
                        ],
                        "time": time.time(),
                    },
                )
            await send(message)

        if (
            isinstance(body, dict)
            and body.get("method") == "tools/call"
            and isinstance(body.get("params"), dict)
            and body["params"].get("name") in self.statuses
        ):
            status = self.statuses[body["params"]["name"]]
            await logged_send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
            await logged_send({"type": "http.response.body", "body": b""})
            return
        if (
            isinstance(body, dict)
            and body.get("method") == "tools/call"
            and isinstance(body.get("params"), dict)
            and body["params"].get("name") in self.statuses_after
        ):
            status = self.statuses_after[body["params"]["name"]]

            async def discard(message: Any) -> None:
                pass

            # The server handles the call to its end (the tool runs); what it answers never leaves.
            await self.app(scope, replay, discard)
            await logged_send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
            await logged_send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, replay, logged_send)


async def serve_http(server: Any, args: argparse.Namespace) -> None:
    import uvicorn

    if SDK_GENERATION == 2:
        if args.transport == "streamable-http":
            app = server.streamable_http_app(
                host="127.0.0.1", json_response=args.json_response, stateless_http=args.stateless
            )
        else:
            app = server.sse_app(host="127.0.0.1")
    else:
        app = server.streamable_http_app() if args.transport == "streamable-http" else server.sse_app()
    if args.http_log or args.http_status or args.http_status_after:

        def parse(items: list[str]) -> dict[str, int]:
            statuses = {}
            for item in items:
                tool, _, code = item.partition("=")
                statuses[tool] = int(code)
            return statuses

        app = HttpFixtures(app, args.http_log, parse(args.http_status), parse(args.http_status_after))

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    path = "/mcp" if args.transport == "streamable-http" else "/sse"
    url = f"http://127.0.0.1:{port}{path}"

    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    uv = uvicorn.Server(config)

    async def announce() -> None:
        while not uv.started:
            if uv.should_exit:
                return
            await anyio.sleep(0.01)
        sys.stdout.write(f"READY {url}\n")
        sys.stdout.flush()

    async with anyio.create_task_group() as tg:
        tg.start_soon(announce)
        await uv.serve(sockets=[sock])
        tg.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transport", choices=["stdio", "streamable-http", "sse"], default="stdio")
    parser.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--ledger", help="append one JSON line per tool call to this file")
    parser.add_argument("--outcomes", help="append one JSON line per finished tool call to this file")
    parser.add_argument("--http-log", help="HTTP: append one JSON line per request (headers, body, status)")
    parser.add_argument(
        "--http-status", action="append", default=[], metavar="TOOL=CODE",
        help="HTTP: answer a tools/call of TOOL with this bare HTTP status (repeatable)",
    )
    parser.add_argument(
        "--http-status-after", action="append", default=[], metavar="TOOL=CODE",
        help="streamable-http: run a tools/call of TOOL, then answer it with this bare HTTP status instead (repeatable)",
    )
    parser.add_argument(
        "--tools-list", choices=["normal", "error", "hang"], default="normal",
        help="error: answer tools/list with a JSON-RPC error; hang: never answer it",
    )
    parser.add_argument("--tools-file", help="answer each tools/list with the JSON array of tools in this file, re-read each time")
    parser.add_argument("--json-response", action="store_true", help="streamable-http: answer POSTs with JSON, not SSE")
    parser.add_argument("--stateless", action="store_true", help="streamable-http: no sessions")
    args = parser.parse_args()
    for path in (args.ledger, args.outcomes, args.http_log):
        if path:
            open(path, "a").close()

    server = build_server(args)
    if args.transport == "stdio":
        global WIRE_FD
        WIRE_FD = os.dup(1)
        server.run("stdio")
    else:
        anyio.run(serve_http, server, args)


if __name__ == "__main__":
    main()
