"""The parts every fault scenario uses: a real `tollgate serve` on its own embedded PostgreSQL cluster, the fixture
MCP server of Tests/Peers as its upstream (stdio or HTTP, with a ledger of the calls that reached it), agent keys and
reviewer tokens made by `tollgate keys new`, a small Streamable HTTP client over raw sockets, the webhook receiver,
psql as the cluster's owner, and the processes' pids and memory. Only loopback addresses are used.

Nothing here decides a scenario's verdict: each scenario measures, compares with its bound, and raises
`ScenarioFailed` (or returns its figure line).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable


PG_CTL = "/usr/lib/postgresql/15/bin/pg_ctl"


class ScenarioFailed(Exception):
    """The scenario ran and its bound was missed; the message is its figure and what was expected."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "a condition") -> Any:
    """Polls `condition` until it returns something truthy (returned) or `timeout` seconds pass (ScenarioFailed)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ScenarioFailed(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(p / 100 * (len(ordered) - 1)))))
    return ordered[index]


def rss_kib(pid: int) -> int:
    """The resident set of one process, in KiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def children_of(pid: int) -> list[int]:
    """Every descendant of `pid` (from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
        except OSError:
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    queue = [pid]
    while queue:
        current = queue.pop(0)
        for child in parents.get(current, []):
            found.append(child)
            queue.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def read_ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---- MCP over Streamable HTTP, by hand ------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    messages: list[dict[str, Any]]
    seconds: float

    def result(self) -> dict[str, Any] | None:
        for message in self.messages:
            if "result" in message or "error" in message:
                return message
        return None

    def error_message(self) -> str:
        answer = self.result()
        if answer is None:
            return f"HTTP {self.status}: {self.body[:200]!r}"
        if "error" in answer:
            return str(answer["error"].get("message"))
        result = answer.get("result", {})
        if result.get("isError"):
            return " ".join(str(c.get("text", "")) for c in result.get("content", []))
        return ""

    def succeeded(self) -> bool:
        answer = self.result()
        return answer is not None and "result" in answer and not answer["result"].get("isError")


def parse_messages(content_type: str, body: bytes) -> list[dict[str, Any]]:
    if not body:
        return []
    if content_type.startswith("text/event-stream"):
        messages = []
        for event in body.decode("utf-8", "replace").split("\n\n"):
            data = "\n".join(line[5:].lstrip() for line in event.splitlines() if line.startswith("data:"))
            if data:
                try:
                    messages.append(json.loads(data))
                except ValueError:
                    pass
        return messages
    try:
        value = json.loads(body)
    except ValueError:
        return []
    return value if isinstance(value, list) else [value]


class Agent:
    """One agent's MCP session (protocol 2025-11-25) over Streamable HTTP on one keep-alive connection."""

    def __init__(self, gateway: "Gateway", agent: str, server: str, timeout: float = 30.0):
        self.gateway = gateway
        self.key = gateway.keys[agent]
        self.path = f"/mcp/{server}"
        self.timeout = timeout
        self.session: str | None = None
        self.next_id = 1
        self.connection: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.gateway.port, timeout=self.timeout)
        return self.connection

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def post(self, body: bytes, extra: dict[str, str] | None = None) -> Reply:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "Authorization": f"Bearer {self.key}",
        }
        if self.session:
            headers["Mcp-Session-Id"] = self.session
            headers["MCP-Protocol-Version"] = "2025-11-25"
        headers.update(extra or {})
        started = time.monotonic()
        for attempt in range(2):
            connection = self._connection()
            try:
                connection.request("POST", self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                break
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self.close()
                if attempt == 1:
                    raise
        response_headers = {k.lower(): v for k, v in response.getheaders()}
        if response_headers.get("connection", "").lower() == "close":
            self.close()
        return Reply(
            response.status,
            response_headers,
            data,
            parse_messages(response_headers.get("content-type", ""), data),
            time.monotonic() - started,
        )

    def request(self, method: str, params: dict[str, Any] | None = None, id: Any = None) -> Reply:
        if id is None:
            id = self.next_id
            self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            message["params"] = params
        return self.post(json.dumps(message).encode())

    def open(self) -> "Agent":
        reply = self.request(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "ops-faults", "version": "1"},
            },
        )
        if reply.status != 200 or not reply.succeeded():
            raise ScenarioFailed(f"initialize through the gateway failed: HTTP {reply.status} {reply.body[:300]!r}")
        self.session = reply.headers.get("mcp-session-id")
        self.post(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode())
        return self

    def call(self, tool: str, arguments: dict[str, Any], id: Any = None) -> Reply:
        return self.request("tools/call", {"name": tool, "arguments": arguments}, id=id)


# ---- the gateway ------------------------------------------------------------------------------------------------


@dataclass
class Gateway:
    directory: Path
    port: int
    process: subprocess.Popen
    keys: dict[str, str]
    tokens: dict[str, str]
    log: Path
    data_directory: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def get(self, path: str, token: str | None = None, timeout: float = 10.0) -> tuple[int, bytes, float]:
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response.status, response.read(), time.monotonic() - started
        finally:
            connection.close()

    def post_json(self, path: str, value: Any, token: str, timeout: float = 10.0) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(
                "POST",
                path,
                body=json.dumps(value).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            response = connection.getresponse()
            data = response.read()
            return response.status, (json.loads(data) if data else None)
        finally:
            connection.close()

    def metric(self, name: str) -> float:
        """The sum of every series of one metric on /metrics (0 when absent)."""
        _, body, _ = self.get("/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name) and (line[len(name)] in " {"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    # The embedded cluster.
    def postmaster_pid(self) -> int:
        return int((self.data_directory / "postmaster.pid").read_text().splitlines()[0])

    def postgres_pids(self) -> list[int]:
        postmaster = self.postmaster_pid()
        return [postmaster] + children_of(postmaster)

    def psql(self, sql: str, timeout: float = 30.0) -> str:
        connection = (
            f"host={self.data_directory} user=tollgate dbname=tollgate "
            f"passfile={self.data_directory / 'owner.pgpass'}"
        )
        result = subprocess.run(
            ["psql", connection, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
        )
        if result.returncode != 0:
            raise ScenarioFailed(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def psql_session(self) -> subprocess.Popen:
        """An interactive psql as the owner (stdin a pipe): for a transaction held open by a scenario."""
        connection = (
            f"host={self.data_directory} user=tollgate dbname=tollgate "
            f"passfile={self.data_directory / 'owner.pgpass'}"
        )
        return subprocess.Popen(
            ["psql", connection, "-XAtq"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def pg_ctl(self, *arguments: str, timeout: float = 90.0) -> None:
        """Runs pg_ctl on the embedded cluster (as `postgres` when we are root, as the gateway does)."""
        command = [PG_CTL, "-D", str(self.data_directory), *arguments]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--"] + command
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise ScenarioFailed(f"pg_ctl {' '.join(arguments)} failed: {result.stderr.strip() or result.stdout.strip()}")

    def stop_database(self) -> None:
        """Stops the cluster at once (`pg_ctl stop -m immediate`): a crash as the gateway sees it."""
        self.pg_ctl("-w", "-m", "immediate", "stop")

    def start_database(self) -> None:
        """Starts the cluster again the way the gateway starts it (socket in the data directory, no TCP port)."""
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.data_directory}' -c max_connections=200"
        )
        self.pg_ctl("-w", "-t", "60", "-l", str(self.data_directory / "server.log"), "-o", options, "start")

    def tollgate(self, tollgate: Path, *arguments: str, timeout: float = 60.0) -> str:
        """A `tollgate` command against this gateway's cluster (`--data-dir`); its stdout."""
        result = subprocess.run(
            [str(tollgate), *arguments, "--data-dir", str(self.data_directory.parent)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise ScenarioFailed(f"tollgate {' '.join(arguments)} failed: {result.stderr.strip()[-400:]}")
        return result.stdout

    def events_bytes(self) -> int:
        """What the event log holds on disk: the events table with its indexes and TOAST."""
        return int(self.psql("SELECT pg_total_relation_size('tollgate.events')"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Context:
    tollgate: Path
    peers: Path
    python: Path
    root: Path
    keep: bool
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    # Upstreams.
    def fixture_stdio(self, ledger: Path, *extra: str) -> dict[str, Any]:
        """A `servers:` entry that runs the fixture MCP server over stdio, its ledger at `ledger`."""
        return {
            "command": str(self.python),
            "args": [str(self.peers / "fixture_server.py"), "--transport", "stdio", "--ledger", str(ledger), *extra],
        }

    def fixture_http(self, ledger: Path, *extra: str) -> str:
        """Starts the fixture MCP server over Streamable HTTP; returns its URL."""
        process = subprocess.Popen(
            [
                str(self.python),
                str(self.peers / "fixture_server.py"),
                "--transport",
                "streamable-http",
                "--ledger",
                str(ledger),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=open(self.root / f"fixture-http-{len(self.cleanups)}.log", "w"),
            text=True,
        )
        self.cleanups.append(lambda: _terminate(process))
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("READY "):
            raise ScenarioFailed(f"the fixture HTTP server did not start: {line!r}")
        return line.split()[1]

    def webhook_receiver(self, log: Path, *extra: str) -> str:
        process = subprocess.Popen(
            [str(self.python), str(self.peers / "webhook_receiver.py"), "--log", str(log), *extra],
            stdout=subprocess.PIPE,
            stderr=open(self.root / "webhook-receiver.log", "w"),
            text=True,
        )
        self.cleanups.append(lambda: _terminate(process))
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("READY "):
            raise ScenarioFailed(f"the webhook receiver did not start: {line!r}")
        return f"http://127.0.0.1:{line.split()[1]}/hook"

    def background(self, argv: list[str], log_name: str) -> subprocess.Popen:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(self.root / log_name, "w"))
        self.cleanups.append(lambda: _terminate(process))
        return process

    # Keys.
    def _new_key(self, name: str, *options: str) -> tuple[str, str]:
        output = subprocess.run(
            [str(self.tollgate), "keys", "new", name, *options], capture_output=True, text=True, check=True
        ).stdout
        secret = re.search(r"\b(tg_[A-Za-z0-9_-]+)", output)
        digest = re.search(r"(sha256:[0-9a-f]{64})", output)
        if not secret or not digest:
            raise ScenarioFailed(f"`tollgate keys new` printed no key: {output!r}")
        return secret.group(1), digest.group(1)

    def gateway(
        self,
        servers: dict[str, dict[str, Any]],
        policies: dict[str, dict[str, Any]],
        agents: Iterable[str] = ("agent-a", "agent-b"),
        reviewers: Iterable[tuple[str, str]] = (),
        config: dict[str, Any] | None = None,
        ready_timeout: float = 120.0,
    ) -> Gateway:
        """Writes a configuration (every server with its policy; each agent with grant `g`), starts `tollgate serve`
        on a free port with a fresh embedded cluster under this scenario's directory and waits for /readyz."""
        directory = self.root
        keys: dict[str, str] = {}
        tokens: dict[str, str] = {}
        document: dict[str, Any] = dict(config or {})
        document["servers"] = {}
        for name, server in servers.items():
            policy_path = directory / f"policy-{name}.json"
            policy_path.write_text(json.dumps(policies[name], indent=2))
            document["servers"][name] = {**server, "policy": str(policy_path)}
        document["agents"] = []
        for agent in agents:
            secret, digest = self._new_key(agent, "--grant", "g")
            keys[agent] = secret
            document["agents"].append({"id": agent, "grant": "g", "key_hash": digest})
        if reviewers:
            document["reviewers"] = []
            for reviewer, role in reviewers:
                secret, digest = self._new_key(reviewer, "--reviewer", role)
                tokens[reviewer] = secret
                document["reviewers"].append({"id": reviewer, "role": role, "token_hash": digest})
        config_path = directory / "tollgate.json"
        config_path.write_text(json.dumps(document, indent=2))
        port = free_port()
        data_directory = directory / "data" / "postgres"
        log = directory / "serve.log"
        process = subprocess.Popen(
            [
                str(self.tollgate),
                "serve",
                "--config",
                str(config_path),
                "--listen",
                f"127.0.0.1:{port}",
                "--data-dir",
                str(data_directory.parent),
            ],
            stdout=open(log, "a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        gateway = Gateway(directory, port, process, keys, tokens, log, data_directory)
        self.cleanups.append(lambda: _stop_gateway(gateway))

        def ready() -> bool:
            if process.poll() is not None:
                raise ScenarioFailed(f"tollgate serve exited ({process.returncode}); see {log}")
            try:
                return gateway.get("/readyz", timeout=2)[0] == 200
            except OSError:
                return False

        wait_until(ready, ready_timeout, 0.1, "tollgate serve to be ready")
        return gateway


def _terminate(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _stop_gateway(gateway: Gateway) -> None:
    """Stops serve and, whatever state a scenario left it in, its cluster (continued if stopped, then pg_ctl stop)."""
    try:
        for pid in gateway.postgres_pids():
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
    except (OSError, ValueError, IndexError):
        pass
    gateway.stop()
    if (gateway.data_directory / "postmaster.pid").exists():
        command = [PG_CTL, "-D", str(gateway.data_directory), "-m", "immediate", "-w", "stop"]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--"] + command
        subprocess.run(command, capture_output=True, timeout=60)


def make_context(tollgate: Path, peers: Path, name: str, keep: bool) -> Context:
    base = Path(tempfile.mkdtemp(prefix=f"tollgate-faults-{name}-"))
    # The embedded cluster runs as `postgres` when we are root: it must be able to reach its data directory.
    os.chmod(base, 0o755)
    return Context(tollgate=tollgate, peers=peers, python=Path(sys.executable), root=base, keep=keep)


def close_context(context: Context) -> None:
    for cleanup in reversed(context.cleanups):
        try:
            cleanup()
        except Exception as error:  # a cleanup that fails must not hide the scenario's own line
            print(f"  (cleanup: {error})", file=sys.stderr)
    if not context.keep:
        shutil.rmtree(context.root, ignore_errors=True)
