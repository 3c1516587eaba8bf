"""One agent opening sessions without end hits its own cap (limits.max_sessions_per_agent, 100 by default) and is
refused with a clear reason, while another agent can still open a session and call within 1 s. The upstream is the
fixture over Streamable HTTP (a stdio upstream would be a process per session)."""

from __future__ import annotations

import time

from harness import Agent, ScenarioFailed

MOST = 1100  # past the gateway's own cap (1,000): without a per-agent cap, the flood takes every session
SERVE_BOUND = 1.0


def run(context) -> str:
    ledger = context.root / "ledger.jsonl"
    url = context.fixture_http(ledger)
    gateway = context.gateway({"fx": {"url": url}}, {"fx": {"version": "1", "default": "allow"}})

    opened = 0
    refusal = None
    started = time.monotonic()
    flood = Agent(gateway, "agent-a", "fx")
    initialize = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "ops-faults", "version": "1"},
    }
    for _ in range(MOST):
        flood.session = None
        reply = flood.request("initialize", initialize)
        if reply.status != 200 or not reply.succeeded():
            refusal = reply
            break
        opened += 1
    flooded = time.monotonic() - started
    flood.close()
    if refusal is None:
        raise ScenarioFailed(f"agent-a opened {opened} sessions in {flooded:.1f} s and was never refused")

    other = Agent(gateway, "agent-b", "fx")
    began = time.monotonic()
    try:
        other.open()
        call = other.call("echo", {"text": "still here"})
    except ScenarioFailed as failure:
        raise ScenarioFailed(
            f"agent-a was refused after {opened} sessions (HTTP {refusal.status}: {refusal.error_message()}); "
            f"then agent-b could not connect: {failure}"
        )
    other_seconds = time.monotonic() - began
    figure = (
        f"agent-a refused after {opened} sessions ({flooded:.1f} s) with HTTP {refusal.status}: "
        f"{refusal.error_message()!r}; agent-b then opened a session and called in {other_seconds * 1000:.0f} ms "
        f"(call {call.seconds * 1000:.0f} ms)"
    )
    if not call.succeeded() or other_seconds > SERVE_BOUND:
        raise ScenarioFailed(figure + f"; wanted agent-b served within {SERVE_BOUND:g} s")
    return figure
