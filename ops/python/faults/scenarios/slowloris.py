"""5,000 sockets each sending a request's head one byte every 10 s: a real agent (a session and a call) and
/healthz are served within 1 s throughout, and every slow socket is closed by the gateway within 30 s
(limits.header_timeout, 10 s by default)."""

from __future__ import annotations

import resource
import selectors
import socket
import threading
import time

from harness import Agent, ScenarioFailed, wait_until

SOCKETS = 5000
BYTE_EVERY = 10.0
CLOSE_BOUND = 30.0
SERVE_BOUND = 1.0
HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"


def run(context) -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < SOCKETS + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, SOCKETS + 1024), hard))
    ledger = context.root / "ledger.jsonl"
    gateway = context.gateway({"fx": context.fixture_stdio(ledger)}, {"fx": {"version": "1", "default": "allow"}})
    agent = Agent(gateway, "agent-a", "fx").open()

    # The slow sockets: each sends its first byte as it connects, then one more every 10 s.
    selector = selectors.DefaultSelector()
    opened: dict[socket.socket, float] = {}
    sent: dict[socket.socket, int] = {}
    closed_after: list[float] = []
    answers: dict[bytes, int] = {}
    started = time.monotonic()
    for _ in range(SOCKETS):
        s = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
        s.setblocking(False)
        s.send(HEAD[:1])
        opened[s] = time.monotonic()
        sent[s] = 1
        selector.register(s, selectors.EVENT_READ)
    connected = time.monotonic() - started
    # Measured once the gateway holds them all (while they connect, a new connection waits its turn in the kernel's
    # accept queue behind them).
    try:
        wait_until(lambda: gateway.metric("tollgate_http_connections") >= SOCKETS, 30, 0.1, "the gateway to accept them")
    except ScenarioFailed:
        pass  # an older gateway has no such metric
    accepted = time.monotonic() - started

    # Meanwhile, a real agent and /healthz, timed, every half second.
    latencies: dict[str, list[float]] = {"call": [], "healthz": []}
    failures: list[str] = []
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            reply = agent.call("echo", {"text": "through"})
            latencies["call"].append(reply.seconds)
            if not reply.succeeded():
                failures.append(f"call: {reply.error_message()}")
            try:
                status, _, seconds = gateway.get("/healthz", timeout=10)
            except OSError as error:
                status, seconds = 0, 10.0
                failures.append(f"/healthz: {error}")
            latencies["healthz"].append(seconds)
            if status != 200:
                failures.append(f"/healthz answered {status}")
            done.wait(0.5)

    prober = threading.Thread(target=probe)
    prober.start()
    next_byte = time.monotonic() + BYTE_EVERY
    try:
        while opened and time.monotonic() - started < CLOSE_BOUND + 15:
            for key, _ in selector.select(timeout=0.2):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                if data:
                    status = data.split(b"\r\n", 1)[0][:12]
                    answers[status] = answers.get(status, 0) + 1
                    continue
                closed_after.append(time.monotonic() - opened.pop(s))
                selector.unregister(s)
                s.close()
            if time.monotonic() >= next_byte:
                for s in list(opened):
                    if sent[s] < len(HEAD):
                        try:
                            s.send(HEAD[sent[s] : sent[s] + 1])
                            sent[s] += 1
                        except OSError:
                            pass
                next_byte += BYTE_EVERY
    finally:
        done.set()
        prober.join()
        for s in opened:
            selector.unregister(s)
            s.close()
    worst_call = max(latencies["call"], default=0.0)
    worst_health = max(latencies["healthz"], default=0.0)
    figure = (
        f"{SOCKETS} sockets (connected in {connected:.1f} s, held by the gateway after {accepted:.1f} s), one head byte every {BYTE_EVERY:g} s: "
        f"{len(closed_after)} closed by the gateway, the last {max(closed_after, default=0):.1f} s after it opened "
        f"(answers {', '.join(f'{k.decode()} x{v}' for k, v in answers.items()) or 'none'}), {len(opened)} still open; "
        f"meanwhile {len(latencies['call'])} calls, worst {worst_call * 1000:.0f} ms, "
        f"/healthz worst {worst_health * 1000:.0f} ms"
    )
    if opened or max(closed_after, default=0) > CLOSE_BOUND:
        raise ScenarioFailed(figure + f"; wanted every slow socket closed within {CLOSE_BOUND:g} s")
    if failures or worst_call > SERVE_BOUND or worst_health > SERVE_BOUND:
        raise ScenarioFailed(figure + f"; wanted every call and /healthz within {SERVE_BOUND:g} s; {failures[:3]}")
    return figure
