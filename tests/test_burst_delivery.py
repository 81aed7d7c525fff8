"""A burst no larger than the fact queue reaches every sink whole: nothing is dropped.

Default settings (the fact queue holds ``max_queue_size`` = 10000 facts, the export queue
2048 events), a healthy loopback receiver (or a file, or a captured console), and 10000
facts tracked as fast as one thread can: the SDK's worker waits for the sink instead of
dropping, so every event is delivered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codex_telemetry._client import Telemetry
from codex_telemetry._settings import load_settings
from codex_telemetry.facts import HookRun, TrackingContext
from tests.otlp_receiver import GrpcReceiver, HttpReceiver, plain_records
from tests.test_export_codex_backend import Backend

BURST = 10_000  # the default max_queue_size


def _facts() -> list[HookRun]:
    return [
        HookRun(
            tracking=TrackingContext(model_slug="gpt-5", thread_id="t", turn_id=f"turn-{n}"),
            hook_name="Stop",
            hook_source="user",
            status="completed",
        )
        for n in range(BURST)
    ]


def _burst(tmp_path: Path, **settings: Any) -> None:
    """Track the burst, flush, shut down; every fact accepted and every event exported."""
    facts = _facts()  # built first: the burst is as fast as tracking alone
    client = Telemetry(load_settings(spool__directory=tmp_path / "spool", **settings))
    try:
        for fact in facts:
            client.track_fact(fact)
        assert client.flush(timeout=120)
    finally:
        client.shutdown(timeout=30)
    stats = client.stats()
    assert stats.facts_accepted == BURST
    assert stats.facts_dropped_total == 0
    assert stats.events_dropped == {}
    assert (stats.events_produced, stats.events_exported) == (BURST, BURST)


def _turn_ids(received: list[Any]) -> set[str]:
    return {str(r.attributes["turn_id"]) for item in received for r in plain_records(item)}


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_a_burst_over_otlp_http_is_delivered_whole(tmp_path: Path, protocol: str) -> None:
    with HttpReceiver() as receiver:
        _burst(tmp_path, otlp__endpoint=receiver.url(), otlp__protocol=protocol)
        assert _turn_ids(receiver.received) == {f"turn-{n}" for n in range(BURST)}


def test_a_burst_over_otlp_grpc_is_delivered_whole(tmp_path: Path) -> None:
    with GrpcReceiver() as receiver:
        _burst(tmp_path, otlp__endpoint=receiver.endpoint, otlp__protocol="grpc")
        assert _turn_ids(receiver.received) == {f"turn-{n}" for n in range(BURST)}


def test_a_burst_to_the_file_sink_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    _burst(tmp_path, exporter="file", file__path=path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == BURST
    assert {json.loads(line)["event_params"]["turn_id"] for line in lines} == {
        f"turn-{n}" for n in range(BURST)
    }


def test_a_burst_to_the_console_is_printed_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _burst(tmp_path, exporter="console")
    printed = [line for line in capsys.readouterr().err.splitlines() if "codex_hook_run" in line]
    assert len(printed) == BURST


def test_a_burst_to_the_codex_backend_is_posted_whole(tmp_path: Path) -> None:
    backend = Backend()
    try:
        _burst(
            tmp_path,
            exporter="codex_backend",
            codex_backend__base_url=backend.base_url,
            codex_backend__token="t",
        )
        with backend.lock:
            bodies = [json.loads(body) for _, _, body in backend.requests]
    finally:
        backend.close()
    turn_ids = {event["event_params"]["turn_id"] for body in bodies for event in body["events"]}
    assert turn_ids == {f"turn-{n}" for n in range(BURST)}
