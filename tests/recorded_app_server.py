"""A stand-in for ``codex app-server`` that answers from a recorded session.

Run as ``python recorded_app_server.py <recording.jsonl> <conn>``: it speaks JSON-RPC on
stdio like the real app-server, and answers each request with what the real app-server
answered in the recording. Tests use it to run the ``openai-codex`` SDK unmodified
without the model or the network.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["recorded_app_server"]


def recorded_app_server(recording: str, conn: str) -> None:
    """Answer the SDK on stdio as the real app-server did in ``recording``.

    Each request must be the next client request of the recording (same method); the
    server messages recorded after it, up to the next client message, are written back,
    with the recorded request id replaced by the SDK's. A request the recording does not
    have next is answered with an error, so that a diverging test fails fast.
    """
    lines = [json.loads(line) for line in Path(recording).read_text().splitlines()]
    script = [
        (line["dir"], line["msg"])
        for line in sorted(lines, key=lambda line: line["seq"])
        if line["conn"] == conn and line["dir"] != "meta"
    ]
    position = 0
    for raw in sys.stdin:
        message = json.loads(raw)
        method = message.get("method")
        if method is None:
            continue  # a response to a request of ours (none in the recordings used)
        direction, recorded = script[position] if position < len(script) else ("", {})
        if direction != "client->server" or recorded.get("method") != method:
            if "id" in message:
                error = {"code": -32601, "message": f"{method} is not next in the recording"}
                print(json.dumps({"id": message["id"], "error": error}), flush=True)
            continue
        position += 1
        while position < len(script) and script[position][0] == "server->client":
            answer = script[position][1]
            if "method" not in answer and answer.get("id") == recorded.get("id"):
                answer = {**answer, "id": message.get("id")}
            print(json.dumps(answer), flush=True)
            position += 1


if __name__ == "__main__":
    recorded_app_server(sys.argv[1], sys.argv[2])
