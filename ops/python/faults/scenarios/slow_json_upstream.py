"""A Streamable HTTP upstream that answers calls with one JSON body after 30 s, `upstream_timeout: 3s`: each of 64
calls (the gateway's connection limit to one upstream, all busy) gets -32001 within 5 s; 16 calls that wait their turn
behind them and are given up there (their agents hang up after 1 s) are never sent, nor is a cancellation for them
(the upstream's ledger and HTTP log, read 33 s in, after the slow answers would have freed the connections)."""

from __future__ import annotations

import json
import threading
import time

from harness import Agent, ScenarioFailed, read_ledger, wait_until

CAP = 64
QUEUED = 16
BOUND_SECONDS = 5.0


def run(context) -> str:
    ledger = context.root / "ledger.jsonl"
    http_log = context.root / "http.jsonl"
    url = context.fixture_http(ledger, "--json-response", "--http-log", str(http_log))
    gateway = context.gateway(
        {"fx": {"url": url}},
        {"fx": {"version": "1", "default": "allow"}},
        agents=("agent-a", "agent-b", "agent-c"),
        config={"limits": {"upstream_timeout": "3s"}},
    )
    # Every session first, one at a time: their handshakes use the same connections.
    blockers = [Agent(gateway, "agent-a", "fx", timeout=60).open() for _ in range(CAP)]
    queued = [Agent(gateway, "agent-b", "fx", timeout=60).open() for _ in range(QUEUED)]
    other = Agent(gateway, "agent-c", "fx", timeout=60).open()
    # Each session's first call makes the gateway read the upstream's tools/list: done before the connections fill,
    # so that the calls below are forwarded (and wait for a connection), not refused for want of a tool list.
    for agent in blockers + queued + [other]:
        warm = agent.call("echo", {"text": "warm"})
        if not warm.succeeded():
            raise ScenarioFailed(f"a first call failed: {warm.error_message()}")
    started = time.monotonic()
    answers: list = [None] * CAP

    def block(index: int) -> None:
        answers[index] = blockers[index].call("slow", {"seconds": 30}, id=f"slow-{index}")

    threads = [threading.Thread(target=block, args=(i,)) for i in range(CAP)]
    for thread in threads:
        thread.start()
    wait_until(lambda: sum(entry["tool"] == "slow" for entry in read_ledger(ledger)) >= CAP, 20, 0.05,
               f"{CAP} slow calls to reach the upstream")
    time.sleep(0.2)
    hung_up: list[float] = []

    def give_up(index: int) -> None:
        agent = queued[index]
        agent.close()
        agent.timeout = 1.0
        begun = time.monotonic()
        try:
            reply = agent.call("echo", {"text": f"queued-{index}"}, id=f"queued-{index}")
            raise ScenarioFailed(f"a queued call was answered while every connection was busy: {reply.body[:200]!r}")
        except (TimeoutError, OSError):
            agent.close()  # the agent hangs up: the gateway gives the call up
            hung_up.append(time.monotonic() - begun)

    waiting = [threading.Thread(target=give_up, args=(i,)) for i in range(QUEUED)]
    for thread in waiting:
        thread.start()
    for thread in threads + waiting:
        thread.join(60)
    if any(answer is None for answer in answers):
        raise ScenarioFailed("a slow call got no answer within 60 s")
    latencies = sorted(answer.seconds for answer in answers)
    codes = {(answer.result() or {}).get("error", {}).get("code") for answer in answers}
    if codes != {-32001}:
        raise ScenarioFailed(f"the slow calls were answered {codes}, wanted only -32001")
    if latencies[-1] > BOUND_SECONDS:
        raise ScenarioFailed(f"the slowest -32001 took {latencies[-1]:.2f} s (bound {BOUND_SECONDS:g} s)")
    # The connections of calls given up are closed, so the upstream's slow answers do not hold them.
    after = other.call("echo", {"text": "after"})
    # The upstream would answer the slow calls 30 s in, freeing their connections: look after that.
    time.sleep(max(0.0, 33 - (time.monotonic() - started)))
    sent = [entry for entry in read_ledger(ledger) if str(entry["arguments"].get("text", "")).startswith("queued-")]
    posts = [json.loads(line) for line in http_log.read_text().splitlines() if line.strip()] if http_log.exists() else []
    cancelled = [post["body"]["params"].get("requestId") for post in posts
                 if isinstance(post.get("body"), dict) and post["body"].get("method") == "notifications/cancelled"]
    cancelled_queued = [c for c in cancelled if str(c).startswith("queued-")]
    cancelled_slow = [c for c in cancelled if str(c).startswith("slow-")]
    # A call that timed out while it waited its turn must not reach the upstream later either.
    after_timed_out = (after.result() or {}).get("error", {}).get("code") == -32001
    late = [entry for entry in read_ledger(ledger) if entry["arguments"].get("text") == "after"] if after_timed_out else []
    if late:
        sent.extend(late)
    figure = (
        f"{CAP} calls to a 30 s JSON upstream got -32001 in {latencies[0]:.2f}-{latencies[-1]:.2f} s "
        f"(bound {BOUND_SECONDS:g}), upstream told for {len(cancelled_slow)}; {QUEUED} queued calls given up after "
        f"{max(hung_up):.1f} s: {len(sent)} sent, {len(cancelled_queued)} cancellations for them (read at 33 s); "
        f"next call after the time-outs: {'served' if after.succeeded() else after.error_message()} in {after.seconds * 1000:.0f} ms"
        + (", and reached the upstream anyway" if late else "")
    )
    if sent or cancelled_queued or not after.succeeded():
        raise ScenarioFailed(figure)
    return figure
