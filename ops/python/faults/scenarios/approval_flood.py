"""One agent makes 500 distinct calls that need approval: at most limits.max_pending_approvals (20 by default) requests
are ever pending, every call past it is refused at once with the reason and never forwarded, and reviewers get the
burst as coalesced webhooks (the first request alone, the rest in one message per endpoint and window, generic and
slack), while another agent's request is still told on its own."""

from __future__ import annotations

import base64
import json
import os
import threading
import time

from harness import Agent, ScenarioFailed, read_ledger, wait_until

CALLS = 500
THREADS = 8
CAP = 20  # limits.max_pending_approvals, the default
COALESCE = 30  # the endpoints' coalesce, the default


def run(context) -> str:
    ledger = context.root / "ledger.jsonl"
    generic_log = context.root / "generic.jsonl"
    slack_log = context.root / "slack.jsonl"
    generic = context.webhook_receiver(generic_log)
    slack = context.webhook_receiver(slack_log)
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    policy = {
        "version": "1",
        "default": "allow",
        "tools": {"transfer": {"action": "require_approval", "approval": {"hold": "1s", "timeout": "1h"}}},
    }
    gateway = context.gateway(
        {"fx": context.fixture_stdio(ledger)},
        {"fx": policy},
        reviewers=(("alice", "reviewer"),),
        config={
            "public_url": "https://tollgate.example.com",
            "webhooks": [
                {"name": "reviewers", "url": generic, "secrets": [secret], "events": ["approval.requested"]},
                {"name": "chat", "url": slack, "secrets": [secret], "events": ["approval.requested"], "format": "slack"},
            ],
        },
    )

    outcomes = {"pending": 0, "refused": 0, "other": []}
    lock = threading.Lock()
    refusal_text = ""
    slowest_refusal = 0.0
    started = time.monotonic()

    def worker(offset: int) -> None:
        nonlocal refusal_text, slowest_refusal
        agent = Agent(gateway, "agent-a", "fx", timeout=60).open()
        for n in range(offset, CALLS, THREADS):
            reply = agent.call("transfer", {"amount": n + 1, "to": "bob"})
            result = (reply.result() or {}).get("result", {})
            with lock:
                if (result.get("structuredContent") or {}).get("status") == "pending_approval":
                    outcomes["pending"] += 1
                elif result.get("isError") and "limits.max_pending_approvals" in reply.error_message():
                    outcomes["refused"] += 1
                    refusal_text = reply.error_message()
                    slowest_refusal = max(slowest_refusal, reply.seconds)
                else:
                    outcomes["other"].append(f"HTTP {reply.status} {reply.body[:160]!r}")
        agent.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flood_seconds = time.monotonic() - started
    other = Agent(gateway, "agent-b", "fx").open().call("transfer", {"amount": 7, "to": "carol"})

    pending = int(gateway.psql("SELECT count(*) FROM tollgate.approvals WHERE status = 'pending' AND agent = 'agent-a'"))
    requested = int(gateway.psql("SELECT count(*) FROM tollgate.events WHERE type = 'ApprovalRequested'"))

    def deliveries(log) -> list[dict]:
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

    # agent-a: its first request at once and one burst when the window ends; agent-b: its own request.
    wait_until(lambda: len(deliveries(generic_log)) >= 3 and len(deliveries(slack_log)) >= 3, COALESCE + 20, 0.5,
               "the coalesced webhooks")
    time.sleep(2)
    sent_generic = deliveries(generic_log)
    sent_slack = deliveries(slack_log)
    bodies = [json.loads(d.get("body") or "{}") for d in sent_generic]
    burst = next((b for b in bodies if b.get("type") == "approval.requested.burst"), {})
    burst_count = int((burst.get("data") or {}).get("count", 0))
    reached = [entry for entry in read_ledger(ledger) if entry.get("tool") == "transfer"]
    figure = (
        f"{CALLS} require_approval calls from one agent in {flood_seconds:.1f} s: {outcomes['pending']} pending, "
        f"{outcomes['refused']} refused at once (slowest {slowest_refusal * 1000:.0f} ms), {len(outcomes['other'])} other; "
        f"pending requests {pending} (cap {CAP}), {requested} requests in the log; webhooks: {len(sent_generic)} generic "
        f"and {len(sent_slack)} slack deliveries (agent-a's burst of {burst_count} in one message, agent-b's own); "
        f"upstream reached {len(reached)}"
    )
    if pending > CAP or outcomes["pending"] > CAP or outcomes["other"] or outcomes["refused"] != CALLS - outcomes["pending"]:
        raise ScenarioFailed(figure + f"; wanted at most {CAP} pending and the rest refused: {outcomes['other'][:2]}")
    if not (other.result() or {}).get("result", {}).get("structuredContent", {}).get("status") == "pending_approval":
        raise ScenarioFailed(figure + "; agent-b's call was not held for approval")
    if len(sent_generic) != 3 or len(sent_slack) != 3 or burst_count != outcomes["pending"] - 1:
        raise ScenarioFailed(figure + "; wanted 3 messages per endpoint (agent-a's first, its burst, agent-b's)")
    if reached or slowest_refusal > 1.0:
        raise ScenarioFailed(figure + "; wanted nothing forwarded and every refusal within 1 s")
    return figure + f"; the refusal reads: {refusal_text[:160]!r}"
