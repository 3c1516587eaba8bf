"""A 20 MB body sent with `Connection: close` by a client that reads only after sending it all gets its 413 within
1 s (the gateway drains or resets what it did not read), and the gateway keeps serving."""

from __future__ import annotations

import socket
import time

from harness import Agent, ScenarioFailed

BODY_BYTES = 20 * 1024 * 1024
BOUND_SECONDS = 1.0


def send_big(port: int, key: str, chunked: bool) -> tuple[str, float]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {BODY_BYTES}"
        head = (
            f"POST /mcp/fx HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
            f"{framing}\r\nConnection: close\r\n\r\n"
        ).encode()
        started = time.monotonic()
        s.sendall(head)
        block = b"x" * 65536
        sent = 0
        try:
            while sent < BODY_BYTES:
                piece = block[: min(len(block), BODY_BYTES - sent)]
                s.sendall((b"%x\r\n" % len(piece) + piece + b"\r\n") if chunked else piece)
                sent += len(piece)
            if chunked:
                s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # a reset after the answer is allowed: the answer is already in our receive buffer
        answer = b""
        try:
            while b"\r\n" not in answer:
                data = s.recv(4096)
                if not data:
                    break
                answer += data
        except ConnectionResetError:
            pass
        return answer.split(b"\r\n", 1)[0].decode(errors="replace"), time.monotonic() - started


def run(context) -> str:
    ledger = context.root / "ledger.jsonl"
    gateway = context.gateway(
        {"fx": context.fixture_stdio(ledger)},
        {"fx": {"version": "1", "default": "allow"}},
        config={"limits": {"max_body_bytes": 4194304}},
    )
    figures = []
    for chunked in (False, True):
        status, seconds = send_big(gateway.port, gateway.keys["agent-a"], chunked)
        name = "chunked" if chunked else "content-length"
        if " 413 " not in status + " ":
            raise ScenarioFailed(f"{name}: got {status!r} after {seconds:.2f} s, wanted 413")
        if seconds > BOUND_SECONDS:
            raise ScenarioFailed(f"{name}: 413 after {seconds:.2f} s (bound {BOUND_SECONDS:g} s)")
        figures.append(f"{name} 413 in {seconds * 1000:.0f} ms")
    if not Agent(gateway, "agent-b", "fx").open().call("echo", {"text": "after"}).succeeded():
        raise ScenarioFailed("an agent's call after the big bodies failed")
    return "20 MB body with Connection: close: " + ", ".join(figures) + "; the gateway still serves"
