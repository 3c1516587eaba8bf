"""What the browser tests run against: one real `tollgate serve` on a free 127.0.0.1 port with its own embedded
PostgreSQL cluster (through ops/python/faults/harness.py), the fixture MCP server of Tests/Peers as its upstream over
stdio (its ledger says which calls really ran), a policy that holds calls for approval, reviewers and agents with
fresh keys, and the official `mcp` client (Tests/Peers/mcp_client.py on ops/.venv/mcp2) making held calls in the
background. Plus raw HTTP for what a browser would not send (forged POSTs, old cookies).

Only loopback addresses are used. Nothing here decides a test's verdict.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "ops" / "python" / "faults"))

import harness  # noqa: E402  (ops/python/faults/harness.py: the gateway on its own embedded cluster)

SERVER = "pay"

# Who is who. `agent-a` is also a reviewer: the calls it makes are the ones it may not decide (self-approval).
AGENTS = ("agent-a", "agent-b")
REVIEWERS = (
    ("alice", "reviewer"),
    ("bob", "reviewer"),
    ("carol", "auditor"),
    ("dave", "admin"),
    ("erin", "reviewer"),  # not among delete_file's reviewers
    ("agent-a", "reviewer"),
)

# transfer: quorum 1, any reviewer. delete_file: quorum 2 of a list of reviewers. echo: expires after a few seconds.
EXPIRY_SECONDS = 5
POLICY: dict[str, Any] = {
    "version": "1",
    "default": "allow",
    "tools": {
        "transfer": {
            "action": "require_approval",
            "reason": "money moves",
            "approval": {"hold": "40s", "timeout": "10m"},
        },
        "delete_file": {
            "action": "require_approval",
            "reason": "files go away",
            "approval": {"hold": "40s", "timeout": "10m", "quorum": 2, "reviewers": ["alice", "bob", "dave"]},
        },
        "echo": {
            "action": "require_approval",
            "reason": "short lived",
            "approval": {"hold": f"{EXPIRY_SECONDS}s", "timeout": f"{EXPIRY_SECONDS}s"},
        },
    },
}


class Failure(AssertionError):
    pass


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


class HeldCall:
    """One `tools/call` made by the official client (mcp 2.3.0) in the background."""

    def __init__(self, process: subprocess.Popen, tool: str, arguments: dict[str, Any]):
        self.process = process
        self.tool = tool
        self.arguments = arguments
        self._lines: list[dict[str, Any]] | None = None
        self._stderr = ""

    def result(self, timeout: float = 60) -> dict[str, Any]:
        """The client's record of the call (`ok`, `result` with `isError`, `content`, `structuredContent`)."""
        if self._lines is None:
            try:
                stdout, self._stderr = self.process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.stop()
                raise Failure(f"the agent's {self.tool} call got no answer within {timeout:g} s")
            self._lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        for line in self._lines:
            if line.get("step") == 0:
                return line
        raise Failure(f"the client recorded no step: {self._lines} {self._stderr[-2000:]}")

    def done(self) -> bool:
        return self.process.poll() is not None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Stack:
    """The gateway, its upstream, its people, and the agent."""

    def __init__(self, tollgate: Path, peers: Path, python2: Path):
        root = Path(tempfile.mkdtemp(prefix="tollgate-browser-"))
        os.chmod(root, 0o755)  # the embedded cluster runs as `postgres` when we are root
        self.context = harness.Context(tollgate=tollgate, peers=peers, python=python2, root=root, keep=False)
        self.python2 = python2
        self.client = peers / "mcp_client.py"
        self.ledger = root / "ledger.jsonl"
        self.calls: list[HeldCall] = []
        self.gateway = self.context.gateway(
            servers={SERVER: self.context.fixture_stdio(self.ledger)},
            policies={SERVER: POLICY},
            agents=AGENTS,
            reviewers=REVIEWERS,
            config={"logging": {"level": "notice"}},
        )

    @property
    def base(self) -> str:
        return self.gateway.url

    @property
    def port(self) -> int:
        return self.gateway.port

    def token(self, reviewer: str) -> str:
        return self.gateway.tokens[reviewer]

    def close(self) -> None:
        for call in self.calls:
            call.stop()
        harness.close_context(self.context)

    def log_tail(self, characters: int = 3000) -> str:
        try:
            return self.gateway.log.read_text()[-characters:]
        except OSError:
            return ""

    # ---- the agent -------------------------------------------------------------------------------------------

    def hold(self, tool: str, arguments: dict[str, Any], agent: str = "agent-a") -> HeldCall:
        """Starts one call by the official client; it is held by the policy until someone decides."""
        steps = [{"op": "call_tool", "name": tool, "arguments": arguments, "timeout": 90}]
        process = subprocess.Popen(
            [
                str(self.python2),
                str(self.client),
                "--url",
                f"{self.base}/mcp/{SERVER}",
                "--header",
                f"Authorization: Bearer {self.gateway.keys[agent]}",
                "--steps",
                json.dumps(steps),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        call = HeldCall(process, tool, arguments)
        self.calls.append(call)
        return call

    def runs(self, tool: str, arguments: dict[str, Any]) -> int:
        """How many times the upstream really ran this call (the fixture's ledger)."""
        return sum(
            1
            for line in harness.read_ledger(self.ledger)
            if line.get("tool") == tool and _same(line.get("arguments", {}), arguments)
        )

    # ---- the /v1 API (to find requests and read their state; the page is what the tests decide with) ------------

    def api(self, method: str, path: str, reviewer: str = "carol", body: Any = None) -> Answer:
        headers = {"Authorization": f"Bearer {self.token(reviewer)}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return self.request(method, path, headers=headers, body=data)

    def approval(self, approval_id: str) -> dict[str, Any]:
        answer = self.api("GET", f"/v1/approvals/{approval_id}")
        if answer.status != 200:
            raise Failure(f"GET /v1/approvals/{approval_id}: {answer.status} {answer.body[:300]}")
        return answer.json()

    def request_for(self, call: HeldCall, timeout: float = 20) -> str:
        """The id of the pending request `call` made (matched by tool and arguments)."""

        def find() -> str | None:
            if call.done():
                raise Failure(f"the agent's call ended before it was held: {call.result(1)}")
            answer = self.api("GET", f"/v1/approvals?status=pending&tool={call.tool}&limit=500")
            for item in answer.json().get("items", []) if answer.status == 200 else []:
                if _same(self.approval(item["id"]).get("arguments") or {}, call.arguments):
                    return item["id"]
            return None

        return wait_until(find, timeout, f"the {call.tool} call {call.arguments} to be held", interval=0.1)

    # ---- raw HTTP ----------------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 15,
    ) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, text)
        finally:
            connection.close()

    def form_post(self, path: str, fields: dict[str, str], cookie: str | None, origin: str | None = "own") -> Answer:
        """A form POST as a browser would send it (urlencoded; Origin the gateway's own unless told otherwise)."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if cookie is not None:
            headers["Cookie"] = cookie
        if origin == "own":
            headers["Origin"] = self.base
        elif origin is not None:
            headers["Origin"] = origin
        return self.request("POST", path, headers=headers, body=urllib.parse.urlencode(fields).encode())


def _same(recorded: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Equal arguments, numbers compared as numbers (the fixture records `1` as `1.0`)."""
    if set(recorded) != set(wanted):
        return False
    for key, value in wanted.items():
        other = recorded[key]
        if isinstance(value, (int, float)) and isinstance(other, (int, float)):
            if float(value) != float(other):
                return False
        elif value != other:
            return False
    return True


def hidden_csrf(html: str) -> str | None:
    """The value of the first hidden `csrf` field of a page."""
    for tag in re.findall(r"<input\b[^>]*>", html, flags=re.IGNORECASE):
        if re.search(r'\bname\s*=\s*"?csrf"?', tag):
            value = re.search(r'\bvalue\s*=\s*"([^"]*)"', tag)
            if value:
                return value.group(1)
    return None
