"""The Codex backend sink against a loopback HTTP server: path, headers, literal body."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._codex_backend import CodexBackendSink
from codex_telemetry._export._factory import create_sink
from codex_telemetry._export._retry import RetryPolicy
from codex_telemetry._settings import TelemetrySettings
from codex_telemetry._version import __version__
from codex_telemetry.events import PluginInstalledEvent, SkillInvocationEvent

SKILL = SkillInvocationEvent(
    skill_id="037cfe53fd881d2ea36aec8302ccde76376a0f7a",
    skill_name="doc",
    product_client_id="codex_cli_rs",
    skill_scope="user",
    repo_url=None,
    thread_id="thread-2",
    invoke_type="explicit",
    model_slug="gpt-5",
)
PLUGIN = PluginInstalledEvent(
    plugin_id="sample@test",
    plugin_name="sample",
    marketplace_name="test",
    has_skills=True,
    mcp_server_count=0,
    connector_ids=(),
    product_client_id="codex_cli_rs",
)
EXPECTED_BODY = (
    '{"events":[{"event_type":"skill_invocation",'
    '"skill_id":"037cfe53fd881d2ea36aec8302ccde76376a0f7a","skill_name":"doc",'
    '"event_params":{"product_client_id":"codex_cli_rs","skill_scope":"user","repo_url":null,'
    '"thread_id":"thread-2","invoke_type":"explicit","model_slug":"gpt-5"}},'
    '{"event_type":"codex_plugin_installed","event_params":{"plugin_id":"sample@test",'
    '"plugin_name":"sample","marketplace_name":"test","has_skills":true,"mcp_server_count":0,'
    '"connector_ids":[],"product_client_id":"codex_cli_rs"}}]}'
)
TOKEN = "sk-test-token-123"
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05)


class Backend:
    """A loopback stand-in for the analytics endpoint, replying with scripted statuses."""

    def __init__(self, statuses: list[int] | None = None, max_events: int | None = None) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.statuses = list(statuses or [])
        self.max_events = max_events
        self.lock = threading.Lock()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with backend.lock:
                    backend.requests.append(
                        (self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = backend.statuses.pop(0) if backend.statuses else 200
                too_many = backend.max_events is not None and (
                    len(json.loads(body)["events"]) > backend.max_events
                )
                if too_many:
                    status = 413
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/backend-api"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backend() -> Iterator[Backend]:
    server = Backend()
    yield server
    server.close()


def test_posts_the_literal_batch_with_auth_headers(backend: Backend) -> None:
    delivery = DeliveryCounters()
    sink = CodexBackendSink(
        backend.base_url + "/", TOKEN, delivery, account_id="acct-42", interval=60.0
    )
    sink.export([SKILL, PLUGIN], 1)
    assert sink.force_flush(10.0) is True
    assert sink.shutdown(1.0) is True

    [(path, headers, body)] = backend.requests
    assert path == "/backend-api/codex/analytics-events/events"
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["chatgpt-account-id"] == "acct-42"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == f"codex-telemetry/{__version__}"
    assert body.decode("utf-8") == EXPECTED_BODY
    assert delivery.exported.value == 2


def test_no_account_header_without_an_account_id(backend: Backend) -> None:
    sink = CodexBackendSink(backend.base_url, TOKEN, DeliveryCounters())
    sink.export([SKILL], 1)
    assert sink.shutdown(5.0) is True
    [(_, headers, _)] = backend.requests
    assert "chatgpt-account-id" not in headers


def test_transient_failures_are_retried_and_nothing_is_lost() -> None:
    backend = Backend(statuses=[503, 429, 502])
    try:
        delivery = DeliveryCounters()
        sink = CodexBackendSink(backend.base_url, TOKEN, delivery, retry_policy=FAST)
        sink.export([SKILL, PLUGIN], 1)
        assert sink.force_flush(10.0) is True
        sink.shutdown(1.0)
    finally:
        backend.close()
    assert len(backend.requests) == 4
    assert backend.requests[-1][2].decode() == EXPECTED_BODY
    assert delivery.exported.value == 2


def test_unauthorized_is_not_retried_and_the_token_is_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = Backend(statuses=[401])
    try:
        delivery = DeliveryCounters()
        with caplog.at_level(logging.DEBUG):
            sink = CodexBackendSink(backend.base_url, TOKEN, delivery, retry_policy=FAST)
            sink.export([SKILL], 1)
            assert sink.force_flush(10.0) is False
            sink.shutdown(1.0)
    finally:
        backend.close()
    assert len(backend.requests) == 1
    assert delivery.dropped.snapshot() == {"http_401": 1}
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(sink)


def test_413_splits_the_batch() -> None:
    backend = Backend(max_events=1)
    try:
        delivery = DeliveryCounters()
        sink = CodexBackendSink(backend.base_url, TOKEN, delivery)
        sink.export([SKILL, PLUGIN, SKILL], 1)
        assert sink.force_flush(10.0) is True
        sink.shutdown(1.0)
    finally:
        backend.close()
    sizes = [len(json.loads(body)["events"]) for _, _, body in backend.requests]
    assert sizes == [3, 1, 2, 1, 1]
    assert delivery.exported.value == 3


def test_factory_builds_a_backend_sink(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = TelemetrySettings(
        exporter="codex_backend",
        codex_backend={"base_url": backend.base_url, "token": TOKEN, "account_id": "acct-7"},
    )
    sink = create_sink(settings, DeliveryCounters())
    sink.export([SKILL, PLUGIN], 1)
    assert sink.shutdown(5.0) is True
    [(path, headers, body)] = backend.requests
    assert path == "/backend-api/codex/analytics-events/events"
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["chatgpt-account-id"] == "acct-7"
    assert body.decode("utf-8") == EXPECTED_BODY
