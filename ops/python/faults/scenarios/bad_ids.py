"""Ids the gateway cannot pass on faithfully (1.5, 1e2, 1e400, true, {}, a 64 KiB string) are refused at once with
400 / -32600 and never reach the upstream."""

from __future__ import annotations

import json

from harness import Agent, ScenarioFailed, read_ledger

BAD_IDS = ["1.5", "1e2", "1e400", "true", "{}", "[]", "1.0", "9007199254740992", json.dumps("x" * 65536)]
BOUND_SECONDS = 1.0


def run(context) -> str:
    ledger = context.root / "ledger.jsonl"
    gateway = context.gateway(
        {"fx": context.fixture_stdio(ledger)}, {"fx": {"version": "1", "default": "allow"}}
    )
    agent = Agent(gateway, "agent-a", "fx").open()
    slowest = 0.0
    for raw in BAD_IDS:
        body = ('{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"echo","arguments":{"text":"bad id"}}}' % raw).encode()
        reply = agent.post(body)
        error = (reply.result() or {}).get("error", {})
        if reply.status != 400 or error.get("code") != -32600:
            raise ScenarioFailed(f"id {raw[:20]}: HTTP {reply.status} {reply.body[:200]!r}, wanted 400 / -32600")
        slowest = max(slowest, reply.seconds)
    good = agent.call("echo", {"text": "good id"})
    if not good.succeeded():
        raise ScenarioFailed(f"a good call after the bad ids failed: {good.error_message()}")
    reached = [entry for entry in read_ledger(ledger) if entry["arguments"].get("text") == "bad id"]
    if reached:
        raise ScenarioFailed(f"{len(reached)} calls with a bad id reached the upstream")
    if slowest > BOUND_SECONDS:
        raise ScenarioFailed(f"slowest refusal took {slowest * 1000:.0f} ms (bound {BOUND_SECONDS:g} s)")
    return f"{len(BAD_IDS)} bad ids refused 400/-32600, slowest {slowest * 1000:.1f} ms, 0 reached the upstream"
