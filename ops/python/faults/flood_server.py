"""A minimal stdio MCP server for ops/faults' progress_flood: its tool `flood(count, size)` sends `count` progress
notifications of `size` bytes each on the call's progress token as fast as its stdout takes them, then answers;
`echo(text)` answers at once. Written by hand (not the SDK) so that the upstream, not Python, sets the pace: the
notifications are built once and only their counter changes. With `--counter FILE`, the number sent so far is written
there every 1,000 notifications and at the end."""

from __future__ import annotations

import json
import sys

TOOLS = [
    {"name": "flood", "description": "Sends count progress notifications of size bytes.",
     "inputSchema": {"type": "object", "properties": {"count": {"type": "integer"}, "size": {"type": "integer"}}}},
    {"name": "echo", "description": "Returns text.",
     "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
]


def main() -> None:
    counter = sys.argv[sys.argv.index("--counter") + 1] if "--counter" in sys.argv else None
    out = sys.stdout.buffer

    def send(message: dict) -> None:
        out.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        out.flush()

    def note(sent: int) -> None:
        if counter:
            with open(counter, "w") as file:
                file.write(f"{sent}\n")

    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        message = json.loads(line)
        method, id = message.get("method"), message.get("id")
        if id is None:
            continue
        if method == "initialize":
            send({"jsonrpc": "2.0", "id": id, "result": {
                "protocolVersion": message["params"].get("protocolVersion", "2025-11-25"),
                "capabilities": {"tools": {}}, "serverInfo": {"name": "flood", "version": "1"}}})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": id, "result": {"tools": TOOLS}})
        elif method == "tools/call":
            params = message.get("params", {})
            arguments = params.get("arguments", {})
            if params.get("name") == "flood":
                count, size = int(arguments.get("count", 1)), int(arguments.get("size", 65536))
                token = json.dumps(params.get("_meta", {}).get("progressToken", "none"))
                head = ('{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":%s,"progress":' % token).encode()
                tail = (',"message":"' + "x" * max(0, size - len(head) - 40) + '"}}\n').encode()
                for n in range(1, count + 1):
                    out.write(head + str(n).encode() + tail)
                    if n % 1000 == 0:
                        out.flush()
                        note(n)
                out.flush()
                note(count)
                send({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": f"sent {count}"}]}})
            else:
                send({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": arguments.get("text", "")}]}})
        else:
            send({"jsonrpc": "2.0", "id": id, "result": {}})


if __name__ == "__main__":
    main()
