"""A loopback stand-in for the OpenAI Responses API, enough for one successful Codex turn.

``POST .../responses`` answers with a server-sent-event stream: the response is created,
one assistant message (``"Done"``) is output, and the response completes with a fixed
token usage. When told, the next model request fails with an HTTP status, or waits until
released (which keeps a turn active). Every other request gets a 404 with an empty JSON
object, so that optional endpoints a Codex binary probes fail fast instead of hanging.
Each request is recorded (method, path, JSON body) so that a test can see what the binary
asked for.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["USAGE", "MockResponsesAPI", "RecordedRequest"]

# The usage the recordings were made with: 1234 input (200 cached), 56 output (7 of them
# reasoning), 1290 in total.
USAGE = {
    "input_tokens": 1234,
    "input_tokens_details": {"cached_tokens": 200},
    "output_tokens": 56,
    "output_tokens_details": {"reasoning_tokens": 7},
    "total_tokens": 1290,
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the mock received it."""

    method: str
    path: str
    body: Any


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def _turn_stream(number: int) -> bytes:
    response_id = f"resp-{number}"
    message = {
        "type": "message",
        "id": f"msg-{number}",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Done", "annotations": []}],
    }
    return b"".join(
        _sse(event)
        for event in (
            {"type": "response.created", "response": {"id": response_id}},
            {"type": "response.output_item.added", "output_index": 0, "item": message},
            {"type": "response.output_item.done", "output_index": 0, "item": message},
            {
                "type": "response.completed",
                "response": {"id": response_id, "usage": USAGE, "output": [message]},
            },
        )
    )


class MockResponsesAPI:
    """The mock server on 127.0.0.1 (a free port); use as a context manager."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        # While set, the next model request waits for this gate to open.
        self._held: threading.Event | None = None
        self._gate = threading.Event()
        self._arrived = threading.Event()
        self._fail_status: int | None = None
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                with mock._lock:
                    mock.requests.append(RecordedRequest(self.command, self.path, body))

            def _reply(self, status: int, content_type: str, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._record()
                self._reply(404, "application/json", b"{}")

            def do_POST(self) -> None:
                self._record()
                if self.path.split("?")[0].endswith("/responses"):
                    held, mock._held = mock._held, None
                    mock._arrived.set()
                    if held is not None:
                        held.wait()
                    status, mock._fail_status = mock._fail_status, None
                    if status is not None:
                        error = {"error": {"message": "mock failure", "type": "server_error"}}
                        self._reply(status, "application/json", json.dumps(error).encode())
                        return
                    number = sum(1 for request in mock.requests if "responses" in request.path)
                    self._reply(200, "text/event-stream", _turn_stream(number))
                else:
                    self._reply(404, "application/json", b"{}")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def fail_next_turn(self, status: int) -> None:
        """Answer the next model request with HTTP ``status`` and an error body."""
        self._fail_status = status

    def hold_next_turn(self) -> None:
        """Keep the next model request waiting until :meth:`release`: the turn stays active."""
        self._arrived.clear()
        self._gate = threading.Event()
        self._held = self._gate

    def wait_until_held(self, timeout: float = 60.0) -> bool:
        """Wait for the held model request to arrive."""
        return self._arrived.wait(timeout)

    def release(self) -> None:
        """Answer the held model request."""
        self._gate.set()

    @property
    def base_url(self) -> str:
        """The provider base URL (``.../v1``) to put in Codex's ``config.toml``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> MockResponsesAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._gate.set()
        self._server.shutdown()
        self._server.server_close()
