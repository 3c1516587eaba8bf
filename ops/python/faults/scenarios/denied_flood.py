"""One agent sends refused calls as fast as it can: 2,000 denied calls with 900 KiB arguments and a 64 KiB id (refused
at once with -32600, never decided or logged), then 2,000 denied calls with 900 KiB arguments and a 250-byte id (the
longest id a call may have: decided, answered, and recorded with bounded arguments within the agent's budget of
recorded refusals, the rest counted in one summary event a minute). The log grows by a bounded, stated amount
(pg_total_relation_size of tollgate.events, and the events' bytes), and another agent's calls are served meanwhile."""

from __future__ import annotations

import json
import math
import threading
import time

from harness import Agent, ScenarioFailed, percentile, read_ledger

CALLS = 2000
THREADS = 4
ARGUMENT_BYTES = 900 * 1024
# The worst case per recorded refusal (event, row, indexes, seal) and per summary, from docs/audit.md.
PER_REFUSAL = 5_600
PER_SUMMARY = 21_000
BUDGET = 60  # limits.max_recorded_refusals_per_minute, the default
# Agent b's calls must all be served; their latency is reported (the debug build parses each 900 KiB body slowly).
OTHER_P99_BOUND = 5.0


def run(context) -> str:
    ledger = context.root / "ledger.jsonl"
    gateway = context.gateway(
        {"fx": context.fixture_stdio(ledger)},
        {"fx": {"version": "1", "default": "allow", "tools": {"echo": {"action": "deny", "reason": "echo is off"}}}},
    )
    text = "x" * ARGUMENT_BYTES

    def body(id_json: str, n: int) -> bytes:
        arguments = json.dumps({"text": text, "n": n})
        return ('{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"echo","arguments":%s}}' % (id_json, arguments)).encode()

    # Agent b: an allowed call every 50 ms for as long as the flood lasts.
    other = Agent(gateway, "agent-b", "fx").open()
    stop = threading.Event()
    latencies: list[float] = []
    failures: list[str] = []

    def serve_other() -> None:
        while not stop.is_set():
            reply = other.call("add", {"a": 1, "b": 2})
            if reply.succeeded():
                latencies.append(reply.seconds)
            else:
                failures.append(reply.error_message()[:200])
            time.sleep(0.05)

    def flood(id_for, check) -> tuple[float, list[str]]:
        problems: list[str] = []
        started = time.monotonic()

        def worker(offset: int) -> None:
            agent = Agent(gateway, "agent-a", "fx", timeout=120).open()
            for n in range(offset, CALLS, THREADS):
                reply = agent.post(body(id_for(n), n))
                problem = check(reply)
                if problem and len(problems) < 5:
                    problems.append(problem)
            agent.close()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started, problems

    def refused_as_bad_id(reply) -> str | None:
        error = (reply.result() or {}).get("error", {})
        return None if reply.status == 400 and error.get("code") == -32600 else f"HTTP {reply.status} {reply.body[:160]!r}"

    def denied(reply) -> str | None:
        answer = reply.result() or {}
        result = answer.get("result", {})
        ok = reply.status == 200 and result.get("isError") and "echo is off" in reply.error_message()
        return None if ok else f"HTTP {reply.status} {reply.body[:160]!r}"

    def log_size() -> tuple[int, int, int]:
        """The events table on disk (every agent), and agent-a's events: how many, and their rows' bytes."""
        row = gateway.psql(
            "SELECT pg_total_relation_size('tollgate.events'), count(*), coalesce(sum(pg_column_size(e.*)), 0) "
            "FROM tollgate.events e WHERE e.data->>'agent' = 'agent-a'"
        )
        total, count, data = (int(part) for part in row.split("|"))
        return total, count, data

    watcher = threading.Thread(target=serve_other)
    watcher.start()
    try:
        before = log_size()
        big_id = json.dumps("i" * 65536)
        long_seconds, problems = flood(lambda n: big_id, refused_as_bad_id)
        if problems:
            raise ScenarioFailed(f"a call with a 64 KiB id was not refused with 400/-32600: {problems[0]}")
        after_ids = log_size()

        denied_seconds, problems = flood(lambda n: json.dumps(f"{n:06d}-" + "i" * 241), denied)
        if problems:
            raise ScenarioFailed(f"a denied call was not answered as denied: {problems[0]}")
    finally:
        stop.set()
        watcher.join()
        other.close()
    # A clean stop writes the summaries of minutes not yet over (and stops the cluster, started again to read it).
    gateway.stop()
    if not (gateway.data_directory / "postmaster.pid").exists():
        gateway.start_database()
    return _report(context, gateway, before, after_ids, log_size, long_seconds, denied_seconds, latencies, failures, ledger)


def _report(context, gateway, before, after_ids, log_size, long_seconds, denied_seconds, latencies, failures, ledger) -> str:
    after = log_size()
    recorded = int(gateway.psql("SELECT count(*) FROM tollgate.events WHERE type = 'ToolCallDecided' AND data->>'agent' = 'agent-a'"))
    largest = int(gateway.psql("SELECT coalesce(max(octet_length(data::text)), 0) FROM tollgate.events WHERE type = 'ToolCallDecided'"))
    summarized = int(
        gateway.psql("SELECT coalesce(sum((data->>'summarized')::int), 0) FROM tollgate.events WHERE type = 'RefusalsSummarized'")
    )
    summaries = int(gateway.psql("SELECT count(*) FROM tollgate.events WHERE type = 'RefusalsSummarized'"))
    grown = after[0] - before[0]
    minutes = math.ceil((long_seconds + denied_seconds) / 60)
    bound = minutes * (BUDGET * PER_REFUSAL + PER_SUMMARY)
    reached = [entry for entry in read_ledger(ledger) if entry.get("tool") == "echo"]
    rows = after[2] - before[2]
    figure = (
        f"64 KiB ids: {CALLS} refused 400/-32600 in {long_seconds:.1f} s, agent-a's log +{after_ids[1] - before[1]} events; "
        f"900 KiB denied: {CALLS} answered in {denied_seconds:.1f} s, {recorded} recorded (largest event {largest} B) "
        f"+ {summarized} counted in {summaries} summaries: agent-a's rows +{rows / 1024:.0f} KiB "
        f"(bound {bound / 1024:.0f} KiB for {minutes} min, i.e. {60 * (BUDGET * PER_REFUSAL + PER_SUMMARY) / 1e6:.0f} "
        f"MB/agent/hour), events table +{grown / 1024:.0f} KiB with agent-b's calls; agent-b: {len(latencies)} calls "
        f"all served, p50 {percentile(latencies, 50) * 1000:.0f} ms p99 {percentile(latencies, 99) * 1000:.0f} ms; "
        f"denied calls that reached the upstream: {len(reached)}"
    )
    if after_ids[1] != before[1]:
        raise ScenarioFailed(figure + "; wanted nothing logged for the 64 KiB ids")
    if recorded + summarized != CALLS:
        raise ScenarioFailed(figure + f"; wanted every denied call recorded or counted ({CALLS})")
    if rows > bound or largest > 4096 + 1024:
        raise ScenarioFailed(figure + f"; wanted the log to grow at most {bound} bytes, each event under 5 KiB")
    if failures or not latencies or percentile(latencies, 99) > OTHER_P99_BOUND or reached:
        raise ScenarioFailed(figure + f"; wanted agent-b served (p99 under {OTHER_P99_BOUND:g} s) and nothing forwarded")
    return figure
