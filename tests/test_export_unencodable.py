"""An event whose text cannot be written as UTF-8 (a lone surrogate, as a file name
decoded with surrogateescape carries) is dropped alone: the rest of its batch goes out.
And the deepest and the largest value a fact accepts is written by every sink."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest

from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._codex_backend import CodexBackendSink
from codex_telemetry._export._console import ConsoleSink
from codex_telemetry._export._file import FileSink
from codex_telemetry.events import AnalyticsEvent, SkillInvocationEvent
from codex_telemetry.facts import CODEX_ERROR_INFO_MAX_BYTES, CODEX_ERROR_INFO_MAX_DEPTH, TurnError
from tests.test_export_codex_backend import Backend
from tests.test_reducer import full_turn, make_reducer, preamble, turn_completed
from tests.test_reducer_edge_cases import nested_info


def _skill(name: str) -> SkillInvocationEvent:
    return SkillInvocationEvent(
        skill_id="037cfe53fd881d2ea36aec8302ccde76376a0f7a",
        skill_name=name,
        product_client_id="codex_cli_rs",
        skill_scope="user",
        repo_url=None,
        thread_id="thread-2",
        invoke_type="explicit",
        model_slug="gpt-5",
    )


EVENTS = [_skill("before"), _skill("caf\udce9"), _skill("after")]


def test_the_file_sink_writes_the_rest_of_the_batch(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    delivery = DeliveryCounters()
    sink = FileSink(path, delivery, interval=60.0)
    sink.export(EVENTS, 1)
    assert sink.force_flush(10.0) is False  # one event was lost
    sink.shutdown(1.0)

    names = [json.loads(line)["skill_name"] for line in path.read_text("utf-8").splitlines()]
    assert names == ["before", "after"]
    assert delivery.exported.value == 2
    assert delivery.dropped.snapshot() == {"encoding_error": 1}


def test_the_codex_backend_sink_posts_the_rest_of_the_batch() -> None:
    backend = Backend()
    try:
        delivery = DeliveryCounters()
        sink = CodexBackendSink(backend.base_url, "token", delivery, interval=60.0)
        sink.export(EVENTS, 1)
        assert sink.force_flush(10.0) is False
        sink.shutdown(1.0)
    finally:
        backend.close()

    [(_, _, body)] = backend.requests
    assert [event["skill_name"] for event in json.loads(body)["events"]] == ["before", "after"]
    assert delivery.exported.value == 2
    assert delivery.dropped.snapshot() == {"encoding_error": 1}


# --- the deepest and the largest codex_error_info a fact accepts -------------------------

LIMIT_VALUES = {
    "deepest": nested_info(CODEX_ERROR_INFO_MAX_DEPTH),
    "deepest_in_lists": nested_info(CODEX_ERROR_INFO_MAX_DEPTH - 1, leaf=[None, 1.5, "x"]),
    # {"x":"..."} is 8 bytes of JSON around the string.
    "largest": {"x": "é" * ((CODEX_ERROR_INFO_MAX_BYTES - 8) // 2)},
}


def failed_turn(info: Any) -> AnalyticsEvent:
    """The turn event of a turn that failed with ``info`` as its ``codex_error_info``."""
    reducer = make_reducer()
    preamble(reducer)
    facts = [*full_turn()[:-1], turn_completed(status="failed", error=TurnError("boom", info))]
    [event] = [event for fact in facts for event in reducer.ingest(fact)]
    return event


@pytest.mark.parametrize("info", LIMIT_VALUES.values(), ids=LIMIT_VALUES.keys())
def test_the_file_sink_writes_the_limits_of_a_fact(info: Any, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    delivery = DeliveryCounters()
    sink = FileSink(path, delivery, interval=60.0)
    sink.export([failed_turn(info), _skill("after")], 1)
    assert sink.force_flush(10.0) is True
    sink.shutdown(1.0)
    turn, skill = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert turn["event_params"]["turn_error"] == info
    assert skill["skill_name"] == "after"
    assert delivery.exported.value == 2


@pytest.mark.parametrize("info", LIMIT_VALUES.values(), ids=LIMIT_VALUES.keys())
def test_the_console_sink_writes_the_limits_of_a_fact(info: Any) -> None:
    stream = io.StringIO()
    delivery = DeliveryCounters()
    sink = ConsoleSink(delivery, stream=stream, interval=60.0)
    sink.export([failed_turn(info)], 1)
    assert sink.force_flush(10.0) is True
    sink.shutdown(1.0)
    event_type, _, attributes = stream.getvalue().rstrip("\n").split(" ", 2)
    assert event_type == "codex_turn_event"
    assert json.loads(attributes)["turn_error"] == info
    assert delivery.exported.value == 1


@pytest.mark.parametrize("info", LIMIT_VALUES.values(), ids=LIMIT_VALUES.keys())
def test_the_codex_backend_sink_posts_the_limits_of_a_fact(info: Any) -> None:
    backend = Backend()
    try:
        delivery = DeliveryCounters()
        sink = CodexBackendSink(backend.base_url, "token", delivery, interval=60.0)
        sink.export([failed_turn(info)], 1)
        assert sink.force_flush(10.0) is True
        sink.shutdown(1.0)
    finally:
        backend.close()
    [(_, _, body)] = backend.requests
    [event] = json.loads(body)["events"]
    assert event["event_params"]["turn_error"] == info
    assert delivery.exported.value == 1


def _too_deep_for_json() -> SkillInvocationEvent:
    # Built directly (a fact refuses a value this deep): Python's JSON encoder runs out
    # of stack on it.
    deep: object = 1
    for _ in range(100_000):
        deep = [deep]
    return dataclasses.replace(_skill("deep"), repo_url=deep)  # type: ignore[arg-type]


def test_the_codex_backend_sink_drops_alone_an_event_too_deep_to_encode() -> None:
    backend = Backend()
    try:
        delivery = DeliveryCounters()
        sink = CodexBackendSink(backend.base_url, "token", delivery, interval=60.0)
        sink.export([_skill("before"), _too_deep_for_json(), _skill("after")], 1)
        assert sink.force_flush(10.0) is False
        sink.shutdown(1.0)
    finally:
        backend.close()
    [(_, _, body)] = backend.requests
    assert [event["skill_name"] for event in json.loads(body)["events"]] == ["before", "after"]
    assert delivery.exported.value == 2
    assert delivery.dropped.snapshot() == {"encoding_error": 1}


def test_the_file_sink_drops_alone_an_event_too_deep_to_encode(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    delivery = DeliveryCounters()
    sink = FileSink(path, delivery, interval=60.0)
    sink.export([_skill("before"), _too_deep_for_json(), _skill("after")], 1)
    assert sink.force_flush(10.0) is False
    sink.shutdown(1.0)
    names = [json.loads(line)["skill_name"] for line in path.read_text("utf-8").splitlines()]
    assert names == ["before", "after"]
    assert delivery.exported.value == 2
    assert delivery.dropped.snapshot() == {"encoding_error": 1}
