"""Every PostgreSQL process stopped with SIGSTOP for 30 s under load at 100 calls/s: each call is answered (refused)
within the decision deadline (2 s by default), none of them reaches the upstream, and calls succeed again within 5 s of
SIGCONT."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from harness import ScenarioFailed, percentile, read_ledger

RATE = 100  # calls per second
WARM_SECONDS = 3.0
STOP_SECONDS = 30.0
AFTER_SECONDS = 8.0
DEADLINE = 2.0  # limits.decision_deadline's default
SLACK = 0.5
RECOVERY_BOUND = 5.0
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "ops-faults", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


def run(context) -> str:
    ledger = context.root / "ledger.jsonl"
    gateway = context.gateway({"fx": context.fixture_stdio(ledger)}, {"fx": {"version": "1", "default": "allow"}})
    key = gateway.keys["agent-a"]
    local = threading.local()
    results: list[tuple[float, float, str, str]] = []  # (sent, seconds, "ok" | "refused" | "error", text)
    lock = threading.Lock()

    def call(number: int) -> None:
        if getattr(local, "connection", None) is None:
            local.connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=60)
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": number,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": f"load {number}"}, "_meta": META},
            }
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": f"Bearer {key}",
            "MCP-Protocol-Version": "2026-07-28",
        }
        sent = time.monotonic()
        try:
            local.connection.request("POST", "/mcp/fx", body=body, headers=headers)
            response = local.connection.getresponse()
            data = response.read()
            result = (json.loads(data) or {}).get("result") or {}
            text = " ".join(part.get("text", "") for part in result.get("content", []) if isinstance(part, dict))
            kind = "refused" if result.get("isError") else ("ok" if result else "error")
        except Exception as error:  # noqa: BLE001 - any failure to get an answer is a figure
            local.connection.close()
            local.connection = None
            kind, text = "error", f"{type(error).__name__}: {error}"
        with lock:
            results.append((sent, time.monotonic() - sent, kind, text if kind != "ok" else f"load {number}"))

    executor = ThreadPoolExecutor(max_workers=400)
    started = time.monotonic()
    stopped: list[int] = []
    stop_time: float | None = None
    cont_time: float | None = None
    number = 0
    try:
        while True:
            now = time.monotonic()
            if stop_time is None and now >= started + WARM_SECONDS:
                stopped = gateway.postgres_pids()
                stop_time = time.monotonic()
                for pid in stopped:
                    os.kill(pid, signal.SIGSTOP)
            if stop_time is not None and cont_time is None and now >= stop_time + STOP_SECONDS:
                for pid in stopped:
                    os.kill(pid, signal.SIGCONT)
                cont_time = time.monotonic()
            if cont_time is not None and now >= cont_time + AFTER_SECONDS:
                break
            number += 1
            executor.submit(call, number)
            time.sleep(max(0.0, started + number / RATE - time.monotonic()))
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        executor.shutdown(wait=True)
    assert stop_time is not None and cont_time is not None
    # Calls sent while the database was stopped, early enough that their deadline passed before SIGCONT.
    during = [r for r in results if stop_time <= r[0] < cont_time - DEADLINE - SLACK]
    refused = [r for r in during if r[2] == "refused"]
    slowest = max((r[1] for r in during), default=0.0)
    p99 = percentile([r[1] for r in during], 99) if during else 0.0
    errors = [r for r in results if r[2] == "error"]
    reached = {entry["arguments"].get("text") for entry in read_ledger(ledger)}
    refused_texts = {f"load {i}" for i in range(1, number + 1)} - {r[3] for r in results if r[2] == "ok"}
    forwarded_refused = len(refused_texts & reached)
    successes_after = sorted(r[0] + r[1] for r in results if r[2] == "ok" and r[0] + r[1] >= cont_time)
    recovery = (successes_after[0] - cont_time) if successes_after else float("inf")
    deadline_texts = sum(1 for r in refused if "did not answer in" in r[3])
    figure = (
        f"{len(results)} calls at {RATE}/s, SIGSTOP of {len(stopped)} PostgreSQL processes for {STOP_SECONDS:g} s: "
        f"{len(during)} calls sent while stopped, {len(refused)} refused ({deadline_texts} 'did not answer'), "
        f"slowest answer {slowest:.2f} s, p99 {p99:.2f} s (deadline {DEADLINE:g} s); refused calls that reached the "
        f"upstream: {forwarded_refused}; first success {recovery:.2f} s after SIGCONT; "
        f"{len([r for r in results if r[2] == 'ok'])} succeeded in all; errors {len(errors)}"
    )
    if errors:
        raise ScenarioFailed(figure + f"; first error: {errors[0][3][:200]}")
    if len(refused) != len(during) or slowest > DEADLINE + SLACK:
        raise ScenarioFailed(figure + f"; bound: every call refused within {DEADLINE + SLACK:g} s")
    if forwarded_refused:
        raise ScenarioFailed(figure + "; bound: none forwarded")
    if recovery > RECOVERY_BOUND:
        raise ScenarioFailed(figure + f"; bound: a success within {RECOVERY_BOUND:g} s of SIGCONT")
    return figure
