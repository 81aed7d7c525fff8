"""The console sink: one readable line per event."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._console import ConsoleSink
from codex_telemetry._export._factory import create_sink
from codex_telemetry._settings import TelemetrySettings
from codex_telemetry.events import PluginUsedEvent, SkillInvocationEvent

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
PLUGIN = PluginUsedEvent(
    plugin_id="sample@test",
    plugin_name="sample",
    marketplace_name="test",
    has_skills=None,
    mcp_server_count=None,
    connector_ids=("calendar",),
    product_client_id="codex_cli_rs",
    thread_id="thread-2",
    turn_id="turn-2",
    model_slug="gpt-5",
)


def test_each_event_is_one_line_with_its_type_time_and_json_attributes() -> None:
    stream = io.StringIO()
    delivery = DeliveryCounters()
    sink = ConsoleSink(delivery, stream=stream)

    sink.export([SKILL, PLUGIN], 1_796_292_000_123_456_789)
    assert sink.force_flush(5.0) is True
    assert sink.shutdown(1.0) is True

    assert stream.getvalue() == (
        "skill_invocation 2026-12-03T10:00:00.123456Z "
        '{"skill_id": "037cfe53fd881d2ea36aec8302ccde76376a0f7a", '
        '"skill_name": "doc", "product_client_id": "codex_cli_rs", "skill_scope": "user", '
        '"repo_url": null, "thread_id": "thread-2", "invoke_type": "explicit", '
        '"model_slug": "gpt-5"}\n'
        "codex_plugin_used 2026-12-03T10:00:00.123456Z "
        '{"plugin_id": "sample@test", "plugin_name": "sample", '
        '"marketplace_name": "test", "has_skills": null, "mcp_server_count": null, '
        '"connector_ids": ["calendar"], "product_client_id": "codex_cli_rs", '
        '"thread_id": "thread-2", "turn_id": "turn-2", "model_slug": "gpt-5"}\n'
    )
    assert delivery.exported.value == 2


def test_default_stream_is_standard_error(capsys: pytest.CaptureFixture[str]) -> None:
    sink = ConsoleSink(DeliveryCounters())
    sink.export([SKILL], 1)
    assert sink.shutdown(5.0) is True
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith('skill_invocation 1970-01-01T00:00:00.000000Z {"skill_id": ')


def test_a_broken_stream_is_counted_not_raised() -> None:
    stream = io.StringIO()
    stream.close()
    delivery = DeliveryCounters()
    sink = ConsoleSink(delivery, stream=stream)
    sink.export([SKILL], 1)
    assert sink.force_flush(5.0) is False
    sink.shutdown(1.0)
    assert delivery.dropped.snapshot() == {"console_error": 1}


def test_factory_builds_a_console_sink(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    sink = create_sink(TelemetrySettings(exporter="console"), DeliveryCounters())
    sink.export([SKILL], 1)
    assert sink.shutdown(5.0) is True
    assert capsys.readouterr().err.startswith("skill_invocation 1970-01-01T00:00:00.000000Z {")


def test_an_event_the_json_encoder_cannot_write_is_dropped_alone() -> None:
    # Built directly (a fact refuses a value this deep): Python's JSON encoder runs out
    # of stack. It must not cost the rest of the batch.
    deep: object = 1
    for _ in range(100_000):
        deep = [deep]
    unwritable = dataclasses.replace(SKILL, repo_url=deep)  # type: ignore[arg-type]
    stream = io.StringIO()
    delivery = DeliveryCounters()
    sink = ConsoleSink(delivery, stream=stream, interval=60.0)
    sink.export([SKILL, unwritable, PLUGIN], 1)
    assert sink.force_flush(10.0) is False
    sink.shutdown(1.0)
    assert [line.split(" ")[0] for line in stream.getvalue().splitlines()] == [
        "skill_invocation",
        "codex_plugin_used",
    ]
    assert delivery.exported.value == 2
    assert delivery.dropped.snapshot() == {"encoding_error": 1}
