#!/usr/bin/env python3
"""A loopback stand-in for Slack in Tollgate's tests (Slack itself is unreachable from the test machines): it plays
Slack's Web API (`POST <prefix>/api/views.open`), the `response_url`s of interactions (`POST /hooks/...`) and an
incoming webhook (`POST /incoming`), and logs every request.

Usage:
  python slack_fake.py [--port N] --log FILE [--views-open-error CODE]

It listens on 127.0.0.1 only (--port 0, the default, picks a free port) and prints exactly one line `READY <port>` to
stdout once it accepts connections. SIGTERM ends it.

Answers (as Slack does):
  POST .../views.open   200 application/json {"ok": true, "view": {"id": "V0FAKE"}}, or with --views-open-error CODE
                        {"ok": false, "error": CODE}
  any other POST        200 text/plain "ok"
  any other method      405

Every request appends one JSON line to --log *before* it is answered, in one write:
  {"time": UNIX_SECONDS, "method": "POST", "path": "/api/views.open",
   "headers": {lowercased name: value}, "body": the body as UTF-8 text, "json": the body parsed as JSON or null}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", required=True)
    parser.add_argument("--views-open-error", default=None)
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *values: object) -> None:
            pass

        def _log(self, body: bytes) -> None:
            text = body.decode("utf-8", errors="replace")
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            line = {
                "time": time.time(),
                "method": self.command,
                "path": self.path,
                "headers": {name.lower(): value for name, value in self.headers.items()},
                "body": text,
                "json": parsed,
            }
            data = (json.dumps(line) + "\n").encode("utf-8")
            fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            self._log(body)
            if self.path.endswith("/views.open"):
                if args.views_open_error:
                    answer = {"ok": False, "error": args.views_open_error}
                else:
                    answer = {"ok": True, "view": {"id": "V0FAKE"}}
                self._answer(200, "application/json; charset=utf-8", json.dumps(answer).encode("utf-8"))
            else:
                self._answer(200, "text/plain; charset=utf-8", b"ok")

        def do_GET(self) -> None:
            self._log(b"")
            self._answer(405, "text/plain; charset=utf-8", b"method not allowed")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
