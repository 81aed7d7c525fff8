"""An event whose text cannot be written as UTF-8 (a lone surrogate, as a file name
decoded with surrogateescape carries) is dropped alone: the rest of its batch goes out."""

from __future__ import annotations

import json
from pathlib import Path

from codex_telemetry._export._base import DeliveryCounters
from codex_telemetry._export._codex_backend import CodexBackendSink
from codex_telemetry._export._file import FileSink
from codex_telemetry.events import SkillInvocationEvent
from tests.test_export_codex_backend import Backend


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
