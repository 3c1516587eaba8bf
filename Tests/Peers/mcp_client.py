#!/usr/bin/env python3
"""A scriptable MCP client for Tollgate's interop tests, built on the official Python SDK as agents use it.

Runs with either generation of the SDK:
  - mcp 2.x (ops/.venv/mcp2): `mcp.Client` with --mode auto (server/discover, falling back to initialize),
    legacy (initialize only) or 2026-07-28 (no handshake: every request carries its version);
  - mcp 1.x (ops/.venv/mcp1): `mcp.ClientSession` with the initialize handshake; --mode is ignored.

Usage:
  python mcp_client.py --url URL [--transport streamable-http|sse] [--header 'Authorization: Bearer X']...
                       [--mode auto|legacy|2026-07-28] --steps STEPS
  python mcp_client.py --transport stdio --command 'mcp-server-git --repository /tmp/r' [--env K=V]... [--cwd DIR]
                       --steps STEPS

Over stdio the server gets the SDK's minimal environment (PATH, HOME, USER, SHELL, TERM, LOGNAME) unless --env
is given, in which case it gets this process's whole environment plus the --env pairs.

STEPS is a JSON list (inline, `@FILE`, or `-` for stdin) of objects:
  {"op": "list_tools"}                                 result: the tool names (with "detail": true, the tools)
  {"op": "call_tool", "name": N, "arguments": {...},   result: {"isError", "content": [texts], "structuredContent"}
   "progress": true,        ask for progress (the notifications received are in the step's "progress")
   "timeout": SECONDS,      the SDK's read time-out for this call
   "cancel_after": SECONDS} abandon the call after that long (the SDK's own cancellation path)
  {"op": "sleep", "seconds": S}
  {"op": "wait_notification", "method": M, "timeout": S}   waits for a server notification (e.g.
                                                        notifications/tools/list_changed) received since the
                                                        last one this op consumed
  {"op": "ping"}                                       (handshake-era sessions only: a 2.x server answers
                                                        -32601 on a session at 2026-07-28)
  {"op": "set_logging_level", "level": L}             logging/setLevel (handshake-era sessions; at 2026-07-28 use
                                                        --log-level, which stamps the opt-in on every request)
  {"op": "listen", "tools_list_changed": B,           mcp 2.x at 2026-07-28: opens a subscriptions/listen stream
   "resources_list_changed": B,                          (entering waits for its acknowledgement), runs the nested
   "resource_subscriptions": [URI, ...],                 "steps" while it is open, then waits up to "timeout"
   "steps": [...], "events": N, "timeout": S}            seconds (default 10) for N events (default 1) in all.
                                                        result: {"honored": filter, "events": [{"kind":
                                                        "ToolsListChanged"|"ResourceUpdated"|..., "uri"?}],
                                                        "steps": [nested step records]}
  {"op": "write_file", "path": P, "text": T}           writes T to P (a temporary file renamed over P), e.g. a
                                                        gateway's policy file while a listen stream is open

Output, one JSON line each, on stdout:
  {"connected": {"sdk", "mode", "transport", "handshake", "protocolVersion", "serverInfo", "capabilities",
                 "instructions"}}
      sdk "mcp 2.3.0" | "mcp 1.30.0"; mode as given (always "legacy" with 1.x); handshake "server/discover",
      "initialize" or "none" (mode 2026-07-28: serverInfo null, capabilities {})
  {"step": I, "op": OP, "ok": true, "result": ..., "progress": [...], "notifications": [...], "elapsed_ms": MS}
  {"step": I, "op": OP, "ok": false, "error": {"type": "MCPError", "code": C, "message": M, "data": D}, "elapsed_ms": MS}
  {"fatal": "...", "step": I}      then exit 2: the session died (connection closed, session terminated,
                                   transport failure) or could not be established (step null); a fatal
                                   SDK error also carries "error".
  Log messages (notifications/message) arrive only after an opt-in: --log-level LEVEL (2.x, every request at
  2026-07-28) or a set_logging_level step (handshake-era sessions); they are in the step's "notifications".
  "progress" ({"progress", "total", "message"} each) is there when the step asked for it or got some;
  "notifications" when the session surfaced anything but progress during the step: server notifications
  ({"method", "params"}) and transport-level trouble ({"method": null, "exception": "..."}: a line that is
  not JSON-RPC on stdio, a late answer to an abandoned request with 1.x).
  error.type: "MCPError" (2.x) or "McpError" (1.x) for a JSON-RPC error (real or made up by the SDK);
  "Cancelled" for cancel_after; "TimeoutError" for wait_notification; otherwise the exception's class.

What the SDKs do that a test will see (mcp 2.3.0 / 1.30.0):
  - timeout: 2.x answers -32001 "Request 'tools/call' timed out" and cancels upstream; 1.x answers code 408
    and sends no cancellation (the upstream call runs on; its late answer may show up in "notifications").
  - cancel_after: 2.x sends notifications/cancelled (stdio, sse, handshake-era HTTP) or just drops the POST
    (streamable-http at 2026-07-28); 1.x sends nothing at all.
  - a bare HTTP error (no JSON-RPC body) to a POST: over streamable-http 2.x makes it -32603 "Server returned
    an error response" for that call (404 with a session: -32600 "Session terminated", fatal here) and goes
    on; 1.x raises HTTPStatusError and the session dies (fatal). Over sse both generations' writer dies: the
    call hangs until its time-out (forever without --timeout / "timeout") and the session is dead.
  - both send tools/list on their own after the first tools/call of a tool they have not listed (to check
    structuredContent against the outputSchema).
Always give a test's steps a "timeout" (or --timeout) where the peer might not answer.
Exit 0 when every step ran (failed steps included), 2 on a fatal error, 64 on bad usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import sys
import time
import traceback
from contextlib import AsyncExitStack
from datetime import timedelta
from importlib.metadata import version as _dist_version
from typing import Any

import anyio

try:
    BaseExceptionGroup
except NameError:  # Python 3.10: anyio's backport
    from exceptiongroup import BaseExceptionGroup

MCP_VERSION = _dist_version("mcp")
GENERATION = int(MCP_VERSION.split(".")[0])

if GENERATION >= 2:
    from mcp import Client, StdioServerParameters
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp.shared.exceptions import MCPError as SDKError
else:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.sse import sse_client
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp.shared.exceptions import McpError as SDKError

from mcp.types import Implementation

# Both SDKs synthesize these when the session itself is gone (stream closed; HTTP 404 on a known session).
_DEAD_SESSION_MESSAGES = ("Connection closed", "Session terminated")


class Fatal(Exception):
    pass


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


def dump(model: Any) -> Any:
    if model is None:
        return None
    if hasattr(model, "model_dump"):
        return model.model_dump(by_alias=True, mode="json", exclude_none=True)
    return model


def error_record(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, SDKError):
        err = exc.error
        record = {"type": type(exc).__name__, "code": err.code, "message": err.message}
        if err.data is not None:
            record["data"] = err.data
        return record
    return {"type": type(exc).__name__, "message": str(exc)}


def session_died(exc: BaseException) -> bool:
    return isinstance(exc, SDKError) and exc.error.message in _DEAD_SESSION_MESSAGES


def call_result(result: Any) -> dict[str, Any]:
    data = dump(result)
    content = []
    for block in data.get("content", []):
        content.append(block["text"] if block.get("type") == "text" else block)
    out: dict[str, Any] = {"isError": bool(data.get("isError", False)), "content": content}
    if data.get("structuredContent") is not None:
        out["structuredContent"] = data["structuredContent"]
    return out


class Notifications:
    """Every server notification the session surfaced, in arrival order."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.consumed = 0
        self.changed = anyio.Event()

    async def handler(self, message: Any) -> None:
        if isinstance(message, Exception):
            self.items.append({"method": None, "exception": f"{type(message).__name__}: {message}"})
        else:
            inner = getattr(message, "root", message)
            method = getattr(inner, "method", None)
            if method is None:  # a server request (1.x hands those to the message handler too)
                return
            self.items.append({"method": method, "params": dump(getattr(inner, "params", None))})
        self.changed.set()
        self.changed = anyio.Event()
        await anyio.lowlevel.checkpoint()

    async def wait_for(self, method: str) -> dict[str, Any]:
        while True:
            for index in range(self.consumed, len(self.items)):
                if self.items[index]["method"] == method:
                    self.consumed = index + 1
                    return self.items[index]
            await self.changed.wait()


def parse_headers(raw: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise SystemExit(f"mcp_client: bad --header {item!r} (want 'Name: value')")
        headers[name.strip()] = value.strip()
    return headers


def stdio_parameters(args: argparse.Namespace) -> Any:
    argv = shlex.split(args.command or "")
    if not argv:
        raise SystemExit("mcp_client: --transport stdio needs --command")
    env = None
    if args.env:
        env = dict(os.environ)
        for item in args.env:
            key, _, value = item.partition("=")
            env[key] = value
    return StdioServerParameters(command=argv[0], args=argv[1:], env=env, cwd=args.cwd)


class Peer:
    """One connected session, either SDK generation, behind the few operations the steps use."""

    def __init__(self, args: argparse.Namespace, notes: Notifications) -> None:
        self.args = args
        self.notes = notes
        self.client: Any = None  # 2.x Client
        self.session: Any = None  # 1.x ClientSession
        self.connected: dict[str, Any] = {}

    async def connect(self, stack: AsyncExitStack) -> None:
        args = self.args
        headers = parse_headers(args.header)
        client_info = Implementation(name=args.client_name, version=args.client_version)
        if GENERATION >= 2:
            if args.transport == "stdio":
                server: Any = stdio_parameters(args)
            elif args.transport == "sse":
                server = sse_client(args.url, headers=headers or None)
            else:
                http = await stack.enter_async_context(create_mcp_http_client(headers=headers or None))
                server = streamable_http_client(args.url, http_client=http)
            options: dict[str, Any] = {
                "mode": args.mode,
                "message_handler": self.notes.handler,
                "client_info": client_info,
                "read_timeout_seconds": args.timeout,
            }
            if args.no_cache:
                options["cache"] = None
            if args.log_level:
                options["log_level"] = args.log_level
            self.client = await stack.enter_async_context(Client(server, **options))
            session = self.client.session
            if session.discover_result is not None and args.mode == "auto":
                handshake = "server/discover"
            elif session.initialize_result is not None:
                handshake = "initialize"
            else:
                handshake = "none"
            self.connected = {
                "sdk": f"mcp {MCP_VERSION}",
                "mode": args.mode,
                "transport": args.transport,
                "handshake": handshake,
                "protocolVersion": self.client.protocol_version,
                "serverInfo": dump(self.client.server_info),
                "capabilities": dump(self.client.server_capabilities),
                "instructions": self.client.instructions,
            }
        else:
            if args.transport == "stdio":
                read, write = await stack.enter_async_context(stdio_client(stdio_parameters(args)))
            elif args.transport == "sse":
                read, write = await stack.enter_async_context(sse_client(args.url, headers=headers or None))
            else:
                http = await stack.enter_async_context(create_mcp_http_client(headers=headers or None))
                read, write, _ = await stack.enter_async_context(streamable_http_client(args.url, http_client=http))
            timeout = timedelta(seconds=args.timeout) if args.timeout is not None else None
            self.session = await stack.enter_async_context(
                ClientSession(
                    read,
                    write,
                    read_timeout_seconds=timeout,
                    message_handler=self.notes.handler,
                    client_info=client_info,
                )
            )
            init = await self.session.initialize()
            self.connected = {
                "sdk": f"mcp {MCP_VERSION}",
                "mode": "legacy",
                "transport": args.transport,
                "handshake": "initialize",
                "protocolVersion": init.protocolVersion,
                "serverInfo": dump(init.serverInfo),
                "capabilities": dump(init.capabilities),
                "instructions": init.instructions,
            }

    async def list_tools(self) -> Any:
        if self.client is not None:
            return await self.client.list_tools()
        return await self.session.list_tools()

    async def call_tool(self, name: str, arguments: Any, timeout: float | None, progress: Any) -> Any:
        if self.client is not None:
            return await self.client.call_tool(name, arguments, read_timeout_seconds=timeout, progress_callback=progress)
        return await self.session.call_tool(
            name,
            arguments,
            read_timeout_seconds=timedelta(seconds=timeout) if timeout is not None else None,
            progress_callback=progress,
        )

    async def set_logging_level(self, level: str) -> Any:
        if self.client is not None:
            return await self.client.session.set_logging_level(level)
        return await self.session.set_logging_level(level)

    async def ping(self) -> Any:
        if self.client is not None:
            return await self.client.session.send_ping()
        return await self.session.send_ping()


async def run_step(peer: Peer, notes: Notifications, index: int, step: dict[str, Any]) -> dict[str, Any]:
    op = step.get("op")
    record: dict[str, Any] = {"step": index, "op": op}
    progress: list[dict[str, Any]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append({"progress": value, "total": total, "message": message})

    seen_before = len(notes.items)
    started = time.perf_counter()
    try:
        if op == "list_tools":
            listing = await peer.list_tools()
            tools = [dump(tool) for tool in listing.tools]
            result: Any = tools if step.get("detail") else [tool["name"] for tool in tools]
        elif op == "call_tool":
            callback = on_progress if step.get("progress") else None
            call = peer.call_tool(step["name"], step.get("arguments"), step.get("timeout"), callback)
            if step.get("cancel_after") is not None:
                outcome: list[Any] = []

                async def attempt() -> None:
                    outcome.append(await call)

                with anyio.move_on_after(float(step["cancel_after"])) as scope:
                    await attempt()
                if scope.cancelled_caught and not outcome:
                    record.update(
                        ok=False,
                        error={"type": "Cancelled", "message": f"abandoned by the client after {step['cancel_after']}s"},
                    )
                    result = None
                else:
                    result = call_result(outcome[0])
            else:
                result = call_result(await call)
        elif op == "sleep":
            await anyio.sleep(float(step.get("seconds", 0)))
            result = None
        elif op == "wait_notification":
            limit = float(step.get("timeout", 10))
            try:
                with anyio.fail_after(limit):
                    result = await notes.wait_for(step["method"])
            except TimeoutError:
                raise TimeoutError(f"no {step['method']} within {limit}s") from None
        elif op == "ping":
            await peer.ping()
            result = {}
        elif op == "set_logging_level":
            await peer.set_logging_level(step["level"])
            result = {}
        elif op == "listen":
            result = await listen_step(peer, notes, step)
        elif op == "write_file":
            path = step["path"]
            with open(path + ".tmp", "w") as handle:
                handle.write(step["text"])
            os.replace(path + ".tmp", path)
            result = None
        else:
            raise ValueError(f"unknown op {op!r}")
        if "ok" not in record:
            record.update(ok=True, result=result)
    except SDKError as exc:
        record.update(ok=False, error=error_record(exc))
        if session_died(exc):
            record["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
            emit(record)
            raise Fatal(f"session died: {exc.error.message} (code {exc.error.code})") from exc
    except (TimeoutError, ValueError, KeyError, TypeError) as exc:
        record.update(ok=False, error=error_record(exc))
    if step.get("progress") or progress:
        record["progress"] = progress
    received = [n for n in notes.items[seen_before:] if n.get("method") != "notifications/progress"]
    if received and op != "wait_notification":
        record["notifications"] = received
    record["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return record


def describe_event(event: Any) -> dict[str, Any]:
    described: dict[str, Any] = {"kind": type(event).__name__}
    if dataclasses.is_dataclass(event):
        described.update(dataclasses.asdict(event))
    return described


async def listen_step(peer: Peer, notes: Notifications, step: dict[str, Any]) -> dict[str, Any]:
    if peer.client is None:
        raise ValueError("listen needs mcp 2.x")
    limit = float(step.get("timeout", 10))
    want = int(step.get("events", 1))
    events: list[dict[str, Any]] = []
    nested: list[dict[str, Any]] = []
    with anyio.fail_after(limit):  # the acknowledgement must come in time
        listening = peer.client.listen(
            tools_list_changed=bool(step.get("tools_list_changed")),
            resources_list_changed=bool(step.get("resources_list_changed")),
            resource_subscriptions=list(step.get("resource_subscriptions", [])),
        )
        subscription = await listening.__aenter__()
    try:
        honored = dump(subscription.honored)
        for index, inner in enumerate(step.get("steps", [])):
            nested.append(await run_step(peer, notes, index, inner))
        with anyio.move_on_after(limit):
            async for event in subscription:
                events.append(describe_event(event))
                if len(events) >= want:
                    break
    finally:
        with anyio.move_on_after(5, shield=True):
            await listening.__aexit__(None, None, None)
    return {"honored": honored, "events": events, "steps": nested}


def load_steps(raw: str) -> list[dict[str, Any]]:
    if raw == "-":
        text = sys.stdin.read()
    elif raw.startswith("@"):
        try:
            with open(raw[1:]) as handle:
                text = handle.read()
        except OSError as exc:
            raise SystemExit(f"mcp_client: cannot read --steps file: {exc}") from None
    else:
        text = raw
    try:
        steps = json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"mcp_client: --steps is not JSON: {exc}") from None
    if not isinstance(steps, list) or not all(isinstance(s, dict) and "op" in s for s in steps):
        raise SystemExit('mcp_client: --steps must be a JSON list of objects with an "op"')
    return steps


def flatten(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


async def main_async(args: argparse.Namespace, steps: list[dict[str, Any]]) -> int:
    notes = Notifications()
    peer = Peer(args, notes)
    current = {"step": None}
    try:
        async with AsyncExitStack() as stack:
            await peer.connect(stack)
            emit({"connected": peer.connected})
            for index, step in enumerate(steps):
                current["step"] = index
                emit(await run_step(peer, notes, index, step))
            current["step"] = None
    except Exception as exc:  # transport failures surface here, often wrapped in an ExceptionGroup
        inner = flatten(exc)
        if isinstance(inner, Fatal):
            emit({"fatal": str(inner), "step": current["step"]})
            return 2
        if args.verbose:
            traceback.print_exception(exc)
        record: dict[str, Any] = {"fatal": f"{type(inner).__name__}: {inner}", "step": current["step"]}
        if isinstance(inner, SDKError):
            record["error"] = error_record(inner)
        emit(record)
        return 2
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on bad usage; this script promises 64
        self.print_usage(sys.stderr)
        raise SystemExit(f"{self.prog}: error: {message}")


def main() -> None:
    parser = _Parser(description="Scriptable MCP client (official Python SDK).")
    parser.add_argument("--url", help="the MCP endpoint (streamable-http) or the SSE endpoint (sse)")
    parser.add_argument("--transport", choices=["streamable-http", "sse", "stdio"], default="streamable-http")
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable (HTTP only)")
    parser.add_argument("--mode", default="auto", help="mcp 2.x: auto | legacy | 2026-07-28 (ignored by 1.x)")
    parser.add_argument("--command", help="stdio: the server command line (split like a shell would)")
    parser.add_argument("--env", action="append", default=[], help="stdio: KEY=VALUE added to the environment")
    parser.add_argument("--cwd", help="stdio: the server's working directory")
    parser.add_argument("--timeout", type=float, default=None, help="read time-out for every request (default: none)")
    parser.add_argument("--no-cache", action="store_true", help="mcp 2.x: disable the client's response cache")
    parser.add_argument("--log-level", help="mcp 2.x: opt in to log messages at this level (2026-07-28 requests)")
    parser.add_argument("--client-name", default="tollgate-test-client")
    parser.add_argument("--client-version", default="1.0.0")
    parser.add_argument("--steps", required=True, help="JSON list, @FILE or - (stdin)")
    parser.add_argument("--verbose", action="store_true", help="print tracebacks of fatal errors to stderr")
    args = parser.parse_args()
    if args.transport != "stdio" and not args.url:
        parser.error("--url is required unless --transport stdio")
    if args.mode not in ("auto", "legacy") and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", args.mode):
        parser.error(f"--mode must be auto, legacy or a protocol version (YYYY-MM-DD), not {args.mode!r}")
    steps = load_steps(args.steps)
    sys.exit(anyio.run(main_async, args, steps))


if __name__ == "__main__":
    try:
        main()
    except SystemExit as exc:
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
            sys.exit(64)
        raise
