"""An upstream that sends 100,000 progress notifications of 64 KiB each (6.4 GB) on one call whose agent reads its
event stream at 1 KiB/s: the gateway's RSS stays under 512 MiB (its peak printed), what it drops is counted, and
another agent's calls are served meanwhile (their worst latency printed). FLOOD_COUNT overrides the count."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

from harness import Agent, ScenarioFailed, rss_kib, wait_until

COUNT = int(os.environ.get("FLOOD_COUNT", "100000"))
SIZE = 64 << 10
RSS_BOUND_MIB = 512
LATENCY_BOUND_SECONDS = 2.0  # the debug build on 2 busy cores took 1.1 s at worst


def run(context) -> str:
    counter = context.root / "flood-counter"
    server = {
        "command": str(context.python),
        "args": [str(Path(__file__).resolve().parent.parent / "flood_server.py"), "--counter", str(counter)],
    }
    gateway = context.gateway({"fl": server}, {"fl": {"version": "1", "default": "allow"}})
    reader_agent = Agent(gateway, "agent-a", "fl").open()
    other = Agent(gateway, "agent-b", "fl").open()
    other.call("echo", {"text": "warm"})
    baseline = rss_kib(gateway.pid) / 1024

    # The slow reader: a raw socket with a small receive buffer, reading 1 KiB a second.
    body = json.dumps({
        "jsonrpc": "2.0", "id": "flood", "method": "tools/call",
        "params": {"name": "flood", "arguments": {"count": COUNT, "size": SIZE}, "_meta": {"progressToken": "p"}},
    }).encode()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", gateway.port))
    head = (
        f"POST /mcp/fl HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Accept: application/json, text/event-stream\r\nAuthorization: Bearer {gateway.keys['agent-a']}\r\n"
        f"Mcp-Session-Id: {reader_agent.session}\r\nMCP-Protocol-Version: 2025-11-25\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body)
    stop = threading.Event()
    read = [0]

    def slow_reader() -> None:
        sock.settimeout(1.0)
        while not stop.is_set():
            try:
                chunk = sock.recv(1024)
            except OSError:
                chunk = b"-"
            if not chunk:
                break
            read[0] += len(chunk)
            stop.wait(1.0)

    reader = threading.Thread(target=slow_reader, daemon=True)
    reader.start()

    peak = [baseline]
    latencies: list[float] = []

    runaway = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(gateway.pid) / 1024)
            if peak[0] > 2 * RSS_BOUND_MIB:
                runaway.set()  # far past the bound (an unbounded build): stop before it takes the machine's memory
                return
            time.sleep(0.2)

    failures: list[str] = []

    def other_agent() -> None:
        while not stop.is_set():
            reply = other.call("echo", {"text": "served"})
            if not reply.succeeded():
                failures.append(reply.error_message())
            latencies.append(reply.seconds)
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    served = threading.Thread(target=other_agent, daemon=True)
    sampler.start()
    served.start()
    started = time.monotonic()

    def sent() -> int:
        try:
            return int(counter.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    try:
        wait_until(lambda: sent() >= COUNT or runaway.is_set(), 1800, 0.5, f"the upstream to send {COUNT} notifications")
    finally:
        elapsed = time.monotonic() - started
        time.sleep(1.0)
        stop.set()
        served.join(10)
        sampler.join(2)
    sock.close()
    dropped = gateway.metric("tollgate_relay_messages_dropped_total")
    buffered_peak = gateway.metric("tollgate_buffered_bytes_peak") / (1 << 20)
    worst = max(latencies) if latencies else float("inf")
    figure = (
        (f"stopped after {sent():,} of " if runaway.is_set() else "")
        + f"{COUNT:,} x 64 KiB progress in {elapsed:.0f} s to a 1 KiB/s reader: gateway RSS peak {peak[0]:.0f} MiB "
        f"(baseline {baseline:.0f}, bound {RSS_BOUND_MIB}), buffered peak {buffered_peak:.1f} MiB, {dropped:,.0f} dropped; "
        f"other agent {len(latencies)} calls, worst {worst * 1000:.0f} ms"
    )
    if failures:
        raise ScenarioFailed(figure + f"; {len(failures)} of the other agent's calls failed: {failures[0]}")
    if peak[0] > RSS_BOUND_MIB:
        raise ScenarioFailed(figure)
    if not latencies or worst > LATENCY_BOUND_SECONDS:
        raise ScenarioFailed(figure + f" (bound {LATENCY_BOUND_SECONDS:g} s)")
    return figure
