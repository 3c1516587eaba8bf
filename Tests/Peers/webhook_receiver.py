#!/usr/bin/env python3
"""A real webhook receiver for Tollgate's integration tests: it checks every delivery with the official Standard
Webhooks library for Python (`standardwebhooks` from PyPI, pinned in ops/python/requirements-webhooks.txt and
installed into ops/.venv/mcp2), so a test shows that Tollgate's signatures verify where its users will verify them.

Usage:
  python webhook_receiver.py [--port N] [--log FILE] [--secret whsec_...]... [--reject-unverified]
                             [--fail-first N | --hang | --status CODE]

It listens on 127.0.0.1 only (--port 0, the default, picks a free port) and prints exactly one line `READY <port>`
to stdout once it accepts connections; nothing else goes to stdout. Errors go to stderr. SIGTERM ends it at once
(status 143), a request that hangs included.

Each POST is verified with `standardwebhooks.webhooks.Webhook(secret).verify(body, headers)` for each --secret in
turn, until one accepts it (several secrets: a receiver in the middle of a rotation). The library needs the headers
webhook-id, webhook-timestamp (within 5 minutes of this machine's clock) and webhook-signature, and the body bytes as
sent. With no --secret, nothing verifies.

The answer depends on the behaviour chosen, not on the verification (unless --reject-unverified):
  (default)        204 to every request
  --fail-first N   500 to the first N requests, 204 to the ones after
  --hang           no answer at all: the request is logged, then its handler sleeps for an hour (the connection stays
                   open, so the sender's time-out is what ends it)
  --status CODE    CODE (200-599) to every request
  --reject-unverified  401 to a POST that did not verify, whatever the behaviour (a POST that verified gets the
                   behaviour's answer; requests still count towards --fail-first)
A GET, PUT, PATCH or DELETE gets 405 and is not verified (other methods: the library's 501, not logged). Answers other than 204 and 304 carry a short text/plain
body; the server speaks HTTP/1.1 and keeps connections open between requests.

With --log FILE, every request appends one JSON line *before* it is answered (so a sender that has its answer finds
the line already there), in one write, so concurrent requests never interleave:
  {"time": UNIX_SECONDS (float, when the request arrived), "method": "POST", "path": "/hook?x=1",
   "headers": {lowercased name: value; a repeated header's values joined with ", "},
   "body": the body as UTF-8 text (undecodable bytes replaced by U+FFFD),
   "verified": true|false, "error": null | why no secret verified it ("ExceptionType: message", one per distinct
   message, joined with "; "), "status": the status answered (null for --hang)}
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook

HANG_SECONDS = 3600
# Webhook.verify parses the body as JSON after a match unless told not to (1.x); an older or newer release may not
# take the option, so it is passed only where it exists.
_VERIFY_OPTIONS: dict[str, Any] = (
    {"json_parse": False} if "json_parse" in inspect.signature(Webhook.verify).parameters else {}
)


class Behaviour:
    """What to answer: shared by every handler thread, so the --fail-first count is kept under a lock."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.fail_first: int = args.fail_first or 0
        self.hang: bool = args.hang
        self.status: int | None = args.status
        self.reject_unverified: bool = args.reject_unverified
        self.webhooks = [Webhook(secret) for secret in args.secret]
        self.log_path: str | None = args.log
        self._lock = threading.Lock()
        self._seen = 0

    def next_status(self) -> int | None:
        """The answer to the next request by the behaviour alone (None: hang). Counts the request."""
        with self._lock:
            self._seen += 1
            seen = self._seen
        if self.hang:
            return None
        if self.status is not None:
            return self.status
        return 500 if seen <= self.fail_first else 204

    def verify(self, body: bytes, headers: dict[str, str]) -> tuple[bool, str | None]:
        if not self.webhooks:
            return False, "the receiver has no --secret to verify with"
        errors: list[str] = []
        for webhook in self.webhooks:
            try:
                webhook.verify(body, headers, **_VERIFY_OPTIONS)
                return True, None
            except Exception as error:  # the library raises more than its own error for malformed headers
                message = f"{type(error).__name__}: {error}"
                if message not in errors:
                    errors.append(message)
        return False, "; ".join(errors)

    def log(self, record: dict[str, Any]) -> None:
        if not self.log_path:
            return
        line = json.dumps(record, sort_keys=True) + "\n"
        # One write on an O_APPEND descriptor: concurrent requests never interleave within a line.
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tollgate-webhook-receiver/1"
    behaviour: Behaviour  # set on the class by main()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass  # no access log: the JSON log is the record

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # Trailer fields, up to the empty line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after the chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return headers

    def _handle(self) -> None:
        received = time.time()
        behaviour = self.behaviour
        body = self._read_body()
        headers = self._headers()
        status = behaviour.next_status()
        if self.command == "POST":
            verified, error = behaviour.verify(body, headers)
            if not verified and behaviour.reject_unverified:
                status = 401
        else:
            verified, error = False, f"{self.command} is not a delivery (only POST is verified)"
            status = 405
        behaviour.log(
            {
                "time": received,
                "method": self.command,
                "path": self.path,
                "headers": headers,
                "body": body.decode("utf-8", errors="replace"),
                "verified": verified,
                "error": error,
                "status": status,
            }
        )
        if status is None:
            time.sleep(HANG_SECONDS)
            self.close_connection = True
            return
        self.send_response(status)
        if status in (204, 304):
            self.end_headers()
            return
        text = f"{status} {'verified' if verified else 'not verified'}\n".encode()
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    do_POST = _handle
    do_GET = _handle
    do_PUT = _handle
    do_PATCH = _handle
    do_DELETE = _handle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--log", help="append one JSON line per request to this file")
    parser.add_argument(
        "--secret", action="append", default=[], help="whsec_... secret; repeat for several (any may verify)"
    )
    parser.add_argument("--reject-unverified", action="store_true", help="answer 401 to a POST that did not verify")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--fail-first", type=int, metavar="N", help="answer 500 to the first N requests, then 204")
    mode.add_argument("--hang", action="store_true", help="never answer")
    mode.add_argument("--status", type=int, metavar="CODE", help="always answer CODE")
    args = parser.parse_args()

    if args.fail_first is not None and args.fail_first < 0:
        parser.error("--fail-first needs a number >= 0")
    if args.status is not None and not 200 <= args.status <= 599:
        parser.error("--status needs a code from 200 to 599")
    for secret in args.secret:
        if not secret.startswith("whsec_"):
            parser.error("each --secret is whsec_ and base64 (the form Tollgate prints)")
    try:
        Handler.behaviour = Behaviour(args)
    except Exception as error:  # a secret that the library cannot decode
        parser.error(f"the standardwebhooks library refused a --secret: {type(error).__name__}: {error}")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True  # a hanging handler never holds up the exit
    sys.stdout.write(f"READY {server.server_address[1]}\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
