"""The file sink: JSON Lines of wire events, appended to a file only its owner can read."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._factory import create_sink
from codex_telemetry._export._file import FileSink, event_line, timestamp_text
from codex_telemetry._settings import TelemetrySettings
from codex_telemetry.events import AppServerClient, SkillInvocationEvent, ThreadInitializedEvent
from codex_telemetry.facts import RuntimeMetadata

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
THREAD = ThreadInitializedEvent(
    thread_id="thread-2",
    app_server_client=AppServerClient("codex-tui", "codex-tui", "1.0.0", "stdio", None),
    runtime=RuntimeMetadata("0.1.0", "macos", "15.3.1", "aarch64"),
    model="gpt-5",
    ephemeral=False,
    thread_source="user",
    initialization_mode="new",
    subagent_source=None,
    parent_thread_id=None,
    created_at=1,
)

# When the events were produced; a line starts with it, to the microsecond, in UTC.
PRODUCED = 1_796_292_000_123_456_789
STAMP = '{"timestamp":"2026-12-03T10:00:00.123456Z",'
LATER = PRODUCED + 1_500_000_000
LATER_STAMP = '{"timestamp":"2026-12-03T10:00:01.623456Z",'

SKILL_LINE = (
    '"event_type":"skill_invocation","skill_id":"037cfe53fd881d2ea36aec8302ccde76376a0f7a",'
    '"skill_name":"doc","event_params":{"product_client_id":"codex_cli_rs","skill_scope":"user",'
    '"repo_url":null,"thread_id":"thread-2","invoke_type":"explicit","model_slug":"gpt-5"}}\n'
)
THREAD_LINE = (
    '"event_type":"codex_thread_initialized","event_params":{"thread_id":"thread-2",'
    '"app_server_client":{"product_client_id":"codex-tui","client_name":"codex-tui",'
    '"client_version":"1.0.0","rpc_transport":"stdio","experimental_api_enabled":null},'
    '"runtime":{"codex_rs_version":"0.1.0","runtime_os":"macos","runtime_os_version":"15.3.1",'
    '"runtime_arch":"aarch64"},"model":"gpt-5","ephemeral":false,"thread_source":"user",'
    '"initialization_mode":"new","subagent_source":null,"parent_thread_id":null,'
    '"created_at":1}}\n'
)


def test_events_are_written_as_literal_json_lines_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    delivery = DeliveryCounters()
    sink = FileSink(path, delivery)

    sink.export([THREAD, SKILL], PRODUCED)
    assert sink.force_flush(5.0) is True

    assert path.read_text(encoding="utf-8") == STAMP + THREAD_LINE + STAMP + SKILL_LINE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sink.shutdown(1.0) is True
    assert delivery.exported.value == 2
    # Each line is the wire object plus the one "timestamp" key.
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"timestamp": "2026-12-03T10:00:00.123456Z", **THREAD.to_dict()},
        {"timestamp": "2026-12-03T10:00:00.123456Z", **SKILL.to_dict()},
    ]


def test_a_second_sink_appends(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    first = FileSink(path, DeliveryCounters())
    first.export([SKILL], PRODUCED)
    assert first.shutdown(5.0) is True

    second = FileSink(path, DeliveryCounters())
    second.export([THREAD], LATER)
    assert second.shutdown(5.0) is True

    assert path.read_text(encoding="utf-8") == STAMP + SKILL_LINE + LATER_STAMP + THREAD_LINE


def test_shutdown_writes_what_was_queued(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = FileSink(path, DeliveryCounters(), interval=60.0)
    sink.export([SKILL] * 3, PRODUCED)
    assert sink.shutdown(5.0) is True
    assert path.read_text(encoding="utf-8") == (STAMP + SKILL_LINE) * 3


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("")
    path.chmod(0o640)
    sink = FileSink(path, DeliveryCounters())
    sink.shutdown(1.0)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_factory_builds_a_file_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "from-settings.jsonl"
    settings = TelemetrySettings(exporter="file", file={"path": path})
    sink = create_sink(settings, DeliveryCounters())
    sink.export([SKILL], PRODUCED)
    assert sink.shutdown(5.0) is True
    assert path.read_text(encoding="utf-8") == STAMP + SKILL_LINE


def test_the_timestamp_is_utc_to_the_microsecond() -> None:
    assert timestamp_text(0) == "1970-01-01T00:00:00.000000Z"
    assert timestamp_text(PRODUCED) == "2026-12-03T10:00:00.123456Z"
    assert timestamp_text(1_796_292_000_999_999_999) == "2026-12-03T10:00:00.999999Z"


def test_a_line_is_the_timestamp_then_the_wire_object() -> None:
    line = json.loads(event_line(SKILL, PRODUCED))
    assert list(line) == ["timestamp", "event_type", "skill_id", "skill_name", "event_params"]
