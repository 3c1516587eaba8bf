"""An idle `BEGIN; SELECT pg_current_xact_id();` held for 60 s in another session: a held call's release after approve
and its webhooks (approval.requested, approval.decided) still arrive within 5 s; the horizon metric stays 0 (an open
transaction that never appends holds the log's readers back no more)."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from pathlib import Path

from harness import Agent, ScenarioFailed, wait_until

HOLD_SECONDS = 60.0
ROUNDS_AT = (5.0, 40.0)  # seconds into the idle transaction
BOUND = 5.0


def webhook_times(log: Path, kind: str, approval: str) -> list[float]:
    times = []
    if not log.exists():
        return times
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        body = entry.get("body") or ""
        if kind in body and approval in body:
            times.append(entry["time"])
    return times


def run(context) -> str:
    ledger = context.root / "ledger.jsonl"
    hooks = context.root / "webhooks.jsonl"
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    receiver = context.webhook_receiver(hooks, "--secret", secret)
    policy = {"version": "1", "default": "allow", "tools": {"echo": {"action": "require_approval", "approval": {"hold": "50s"}}}}
    gateway = context.gateway(
        {"fx": context.fixture_stdio(ledger)},
        {"fx": policy},
        reviewers=[("alice", "reviewer")],
        config={"webhooks": [{"name": "reviewers", "url": receiver, "secrets": [secret]}]},
    )
    token = gateway.tokens["alice"]
    idle = gateway.psql_session()
    assert idle.stdin and idle.stdout
    idle.stdin.write("BEGIN; SELECT 'xid ' || pg_current_xact_id();\n")
    idle.stdin.flush()
    line = idle.stdout.readline()
    if not line.startswith("xid "):
        raise ScenarioFailed(f"the idle transaction did not start: {line!r}")
    opened = time.time()
    figures = []
    worst = 0.0
    try:
        for round_number, at in enumerate(ROUNDS_AT, 1):
            time.sleep(max(0.0, opened + at - time.time()))
            agent = Agent(gateway, "agent-a", "fx", timeout=70).open()
            answer: dict = {}

            def held_call() -> None:
                reply = agent.call("echo", {"text": f"held {round_number}"})
                answer["reply"] = reply
                answer["time"] = time.time()

            called = time.time()
            thread = threading.Thread(target=held_call)
            thread.start()

            def pending() -> str | None:
                status, body, _ = gateway.get("/v1/approvals?status=pending", token=token)
                items = json.loads(body).get("items", []) if status == 200 else []
                return items[0]["id"] if items else None

            approval = wait_until(pending, 10, 0.05, "the approval request")
            requested_hook = wait_until(lambda: webhook_times(hooks, "approval.requested", approval), 30, 0.05, "approval.requested")[0]
            approved = time.time()
            status, _ = gateway.post_json(f"/v1/approvals/{approval}/approve", {"comment": "ok"}, token)
            if status != 200:
                raise ScenarioFailed(f"approve answered {status}")
            thread.join(60)
            reply = answer.get("reply")
            if reply is None or not reply.succeeded():
                raise ScenarioFailed(f"round {round_number}: the held call was not released: {reply and reply.error_message()}")
            decided_hook = wait_until(lambda: webhook_times(hooks, "approval.decided", approval), 30, 0.05, "approval.decided")[0]
            release = answer["time"] - approved
            request_delay = requested_hook - called
            decided_delay = decided_hook - approved
            worst = max(worst, release, request_delay, decided_delay)
            held = gateway.metric("tollgate_log_horizon_held_seconds")
            figures.append(
                f"at {time.time() - opened:.0f} s: release {release * 1000:.0f} ms after approve, approval.requested webhook "
                f"{request_delay * 1000:.0f} ms after the call, approval.decided {decided_delay * 1000:.0f} ms after approve, "
                f"horizon held {held:g} s"
            )
            agent.close()
        time.sleep(max(0.0, opened + HOLD_SECONDS - time.time()))
        idle.stdin.write("SELECT 'still ' || txid_current_if_assigned();\n")
        idle.stdin.flush()
        still = idle.stdout.readline().strip()
    finally:
        idle.stdin.write("ROLLBACK;\n\\q\n")
        idle.stdin.flush()
        idle.wait(10)
    figure = f"idle transaction open {HOLD_SECONDS:g} s ({still or 'ended?'}): " + "; ".join(figures)
    if worst > BOUND:
        raise ScenarioFailed(figure + f"; bound {BOUND:g} s")
    return figure
