"""Calls answered while PostgreSQL is stopped have their ToolCallCompleted in the log once it is back: two
`slow(5)` calls, the cluster stopped with `pg_ctl stop -m immediate` while they run, started again after they were
answered; `audit replay` shows `success` for both, not `no_outcome`."""

from __future__ import annotations

import json
import threading
import time

from harness import Agent, ScenarioFailed, wait_until

CALLS = 2
BOUND_SECONDS = 30.0  # from the cluster's start to both outcomes in the log (the backlog retries with backoff)


def run(context) -> str:
    ledger = context.root / "ledger.jsonl"
    gateway = context.gateway(
        {"fx": context.fixture_stdio(ledger)}, {"fx": {"version": "1", "default": "allow"}}
    )
    replies: list = [None] * CALLS

    def call(index: int) -> None:
        agent = Agent(gateway, "agent-a", "fx", timeout=60).open()
        replies[index] = agent.call("slow", {"seconds": 5})

    threads = [threading.Thread(target=call, args=(i,)) for i in range(CALLS)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(ledger.read_text().splitlines()) >= CALLS if ledger.exists() else False, 30, 0.05,
               "both calls to reach the upstream")
    gateway.stop_database()
    for thread in threads:
        thread.join(60)
    if not all(reply is not None and reply.succeeded() for reply in replies):
        raise ScenarioFailed(f"the agents did not get their success during the outage: {[r and r.error_message() for r in replies]}")
    time.sleep(1)
    gateway.start_database()
    started = time.monotonic()

    def outcomes() -> list[str] | None:
        rows = [json.loads(line) for line in gateway.tollgate(context.tollgate, "audit", "replay", "--tool", "slow",
                                                               "--format", "jsonl").splitlines() if line.strip()]
        found = [str(row.get("outcome")) for row in rows]
        return found if len(found) == CALLS and all(o == "success" for o in found) else None

    try:
        found = wait_until(outcomes, BOUND_SECONDS, 0.25, "both outcomes in the log")
    except ScenarioFailed:
        rows = gateway.tollgate(context.tollgate, "audit", "replay", "--tool", "slow", "--format", "jsonl")
        raise ScenarioFailed(f"outcomes not recorded {BOUND_SECONDS:g} s after PostgreSQL came back: {rows.strip()[:400]}")
    return (
        f"{CALLS} calls answered during the outage; `audit replay` shows {'/'.join(found)} "
        f"{time.monotonic() - started:.2f} s after PostgreSQL came back"
    )
