"""`kill -9` of `tollgate serve` with 20 stdio sessions open (20 upstream processes): no child survives 5 s."""

from __future__ import annotations

import os
import signal
import time

from harness import Agent, ScenarioFailed, alive, children_of, wait_until

SESSIONS = 20
BOUND_SECONDS = 5.0


def run(context) -> str:
    ledger = context.root / "ledger.jsonl"
    gateway = context.gateway(
        {"fx": context.fixture_stdio(ledger)}, {"fx": {"version": "1", "default": "allow"}}
    )
    agents = [Agent(gateway, "agent-a", "fx").open() for _ in range(SESSIONS)]
    for agent in agents:
        if not agent.call("echo", {"text": "hello"}).succeeded():
            raise ScenarioFailed("a session's first call failed")
    postgres = set(gateway.postgres_pids())
    children = [pid for pid in children_of(gateway.pid) if pid not in postgres]
    upstreams = [pid for pid in children if "fixture_server.py" in open(f"/proc/{pid}/cmdline").read()]
    if len(upstreams) < SESSIONS:
        raise ScenarioFailed(f"expected {SESSIONS} upstream processes, found {len(upstreams)}")
    os.kill(gateway.pid, signal.SIGKILL)
    killed = time.monotonic()
    gateway.process.wait()
    survivors: list[int] = []

    def all_gone() -> bool:
        survivors[:] = [pid for pid in children if alive(pid)]
        return not survivors

    try:
        wait_until(all_gone, BOUND_SECONDS, 0.02, "the children to die")
    except ScenarioFailed:
        raise ScenarioFailed(f"{len(survivors)} of {len(children)} children alive {BOUND_SECONDS:g} s after kill -9")
    return (
        f"kill -9 with {SESSIONS} stdio sessions: all {len(children)} children gone "
        f"{(time.monotonic() - killed) * 1000:.0f} ms later"
    )
