"""One-call instrumentation of the ``openai-codex`` SDK.

The SDK runs unmodified, as a user's program would run it; its app-server is played by
``tests/recorded_app_server.py``: a stdio peer that answers each
request with what the real app-server 0.169 answered in a recording, mapping the
recorded request ids onto the SDK's. The events must then be exactly those of the
recording replayed directly (``tests/test_observer_replay.py``, where they are written
out in full). The real binary is exercised by ``tests/test_live_app_server.py``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

openai_codex = pytest.importorskip("openai_codex")

from openai_codex import AsyncCodex, Codex, CodexConfig  # noqa: E402
from openai_codex.client import CodexClient  # noqa: E402
from openai_codex.errors import InvalidRequestError  # noqa: E402

import codex_telemetry  # noqa: E402
from codex_telemetry import _instrument_openai_codex, _instrumentation  # noqa: E402
from codex_telemetry.testing import EventCapture, capture_events  # noqa: E402
from tests.test_observer_replay import replay  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "codex-app-server-0.169"
PEER = Path(__file__).parent / "recorded_app_server.py"
ORIGINAL_WRITE = CodexClient.__dict__["_write_message"]
ORIGINAL_READ = CodexClient.__dict__["_read_message"]


def peer(recording: str, conn: str) -> CodexConfig:
    """An SDK configuration whose app-server replays ``conn`` of ``recording``."""
    return CodexConfig(
        launch_args_override=(sys.executable, str(PEER), str(FIXTURES / recording), conn),
        # The recording's client, so that the events equal the recorded ones.
        client_name="oracle-recorder",
        client_title="Oracle recorder",
        client_version="0.0.1",
    )


@pytest.fixture
def capture() -> Iterator[EventCapture]:
    with capture_events() as capture:
        _instrumentation.instrument("openai_codex", capture.telemetry)
        try:
            yield capture
        finally:
            _instrumentation.uninstrument("openai_codex")


def without_steer_times(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steer events carry the wall-clock time their request was seen; set it to 0."""
    for event in events:
        if event["event_type"] == "codex_turn_steer_event":
            assert isinstance(event["event_params"]["created_at"], int)
            event["event_params"]["created_at"] = 0
    return events


def test_a_sync_program_reports_the_recorded_events(capture: EventCapture) -> None:
    with Codex(peer("e_steer.jsonl", "conn1")) as codex:
        thread = codex.thread_start()
        turn = thread.turn("start a slow turn")
        with pytest.raises(InvalidRequestError, match="expected active turn id"):
            codex._client.turn_steer(thread.id, "not-the-active-turn", "wrong turn")
        turn.steer("please also say hi")
        assert turn.run().status.value == "completed"
        with pytest.raises(InvalidRequestError, match="no active turn"):
            turn.steer("too late")
    assert without_steer_times(capture.dicts()) == without_steer_times(replay("e_steer.jsonl"))


def test_each_app_server_process_is_its_own_connection(capture: EventCapture) -> None:
    with Codex(peer("b_resume_fork.jsonl", "proc1")) as first:
        first.thread_start().run("hello (materialize rollout)")
        first_observer = _instrument_openai_codex.observer_for(first)
    with Codex(peer("b_resume_fork.jsonl", "proc2")) as second:
        thread_id = "01a2108a-6701-79f3-ab6e-7c8d599a064d"
        second.thread_resume(thread_id)
        second.thread_fork(thread_id).run("turn on the forked thread")
        second.thread_resume(thread_id)
        second_observer = _instrument_openai_codex.observer_for(second)
    assert first_observer is not None and second_observer is not None
    assert first_observer.connection_id != second_observer.connection_id
    assert capture.dicts() == replay("b_resume_fork.jsonl")
    assert second_observer.stats().malformed == 0


def test_an_observer_is_forgotten_with_its_app_server_process(capture: EventCapture) -> None:
    with Codex(peer("a_thread_start.jsonl", "conn1")) as codex:
        codex.thread_start()
        observer = _instrument_openai_codex.observer_for(codex)
        assert observer is not None
        # Filed under the id of the client's process object.
        key = id(codex._client._proc)
        assert _instrument_openai_codex._observers == {key: observer}
    # Closing the client lets go of the process object, and with it the observer, once
    # the SDK's reader thread has returned from its last (hooked) read.
    deadline = time.monotonic() + 10
    while _instrument_openai_codex._observers and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    assert _instrument_openai_codex._observers == {}


def test_an_async_program_reports_the_recorded_events(capture: EventCapture) -> None:
    async def program() -> None:
        async with AsyncCodex(peer("c_full_turn.jsonl", "conn1")) as codex:
            thread = await codex.thread_start()
            question = openai_codex.TextInput("What is in this image?")
            with pytest.raises(InvalidRequestError, match="remote image URLs"):
                await thread.turn(
                    [question, openai_codex.ImageInput("http://127.0.0.1:41277/img/cat.png")]
                )
            image = openai_codex.ImageInput("data:image/png;base64,AAAA")
            await (await thread.turn([question, image])).run()
            await thread.run("second turn, text only")

    asyncio.run(program())
    assert capture.dicts() == replay("c_full_turn.jsonl")


def test_instrumenting_twice_hooks_once_and_uninstrument_restores_the_originals() -> None:
    with capture_events() as capture:
        _instrumentation.instrument("openai_codex", capture.telemetry)
        hooked_write = CodexClient.__dict__["_write_message"]
        _instrumentation.instrument("openai_codex", capture.telemetry)
        assert CodexClient.__dict__["_write_message"] is hooked_write
        assert hooked_write.__wrapped__ is ORIGINAL_WRITE
        assert _instrumentation.instrumented() == ("openai_codex",)
        _instrumentation.uninstrument("openai_codex")
        _instrumentation.uninstrument("openai_codex")
    assert CodexClient.__dict__["_write_message"] is ORIGINAL_WRITE
    assert CodexClient.__dict__["_read_message"] is ORIGINAL_READ
    assert _instrumentation.instrumented() == ()


def test_nothing_is_observed_once_uninstrumented() -> None:
    with capture_events() as capture:
        _instrumentation.instrument("openai_codex", capture.telemetry)
        _instrumentation.uninstrument("openai_codex")
        with Codex(peer("a_thread_start.jsonl", "conn1")) as codex:
            codex.thread_start()
            assert _instrument_openai_codex.observer_for(codex) is None
        assert capture.dicts() == []


def test_init_instruments_and_shutdown_uninstruments(tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    telemetry = codex_telemetry.init(
        instrument=["openai_codex"],
        exporter="file",
        file={"path": str(events_file)},
        general_analytics=True,
    )
    try:
        assert CodexClient.__dict__["_write_message"] is not ORIGINAL_WRITE
        with Codex(peer("a_thread_start.jsonl", "conn1")) as codex:
            codex.thread_start()
            codex.thread_start(ephemeral=True)
            codex.thread_start(model="mock-model-2")
        assert telemetry.flush(timeout=10.0)
    finally:
        codex_telemetry.shutdown(timeout=10.0)
    assert CodexClient.__dict__["_write_message"] is ORIGINAL_WRITE
    lines = events_file.read_text().splitlines()
    assert [json.loads(line) for line in lines] == replay("a_thread_start.jsonl")


def test_protocol_facts_filtered_by_the_flag_are_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from codex_telemetry._gate import FILTER  # noqa: PLC0415
    from codex_telemetry.facts import Initialize  # noqa: PLC0415

    events_file = tmp_path / "events.jsonl"
    with caplog.at_level(logging.INFO, logger="codex_telemetry"):
        telemetry = codex_telemetry.init(
            instrument=["openai_codex"], exporter="file", file={"path": str(events_file)}
        )
        try:
            with Codex(peer("a_thread_start.jsonl", "conn1")) as codex:
                codex.thread_start()
                codex.thread_start(ephemeral=True)
            assert telemetry.flush(timeout=10.0)
            stats = telemetry.stats()
            # Told once: the later filtered facts took the plain route again.
            assert telemetry._routes[Initialize] == FILTER
        finally:
            codex_telemetry.shutdown(timeout=10.0)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "codex_telemetry: the 'openai_codex' instrumentation reports thread and turn "
            "facts, but general_analytics is off, so they are filtered and make no events; "
            "set general_analytics=True (CODEX_TELEMETRY_GENERAL_ANALYTICS=true) to collect "
            "them",
        )
    ]
    assert stats.facts_filtered > 2
    assert (stats.facts_accepted, stats.events_produced) == (0, 0)
    assert stats.notices == {"filtered_while_instrumented": 1}
    assert events_file.read_text() == ""


def test_unknown_instrumentations_are_refused(tmp_path: Path) -> None:
    with (
        capture_events() as capture,
        pytest.raises(ValueError, match="unknown instrumentation 'openai'; known: 'openai_codex'"),
    ):
        _instrumentation.instrument("openai", capture.telemetry)
    with pytest.raises(codex_telemetry.ConfigurationError, match="unknown instrumentation"):
        codex_telemetry.init(
            instrument=["nope"], exporter="file", file={"path": str(tmp_path / "e.jsonl")}
        )


def test_the_package_never_imports_openai_codex_unless_asked() -> None:
    program = (
        "import sys, codex_telemetry\n"
        "codex_telemetry.init(exporter='none')\n"
        "print('openai_codex' in sys.modules, 'codex_telemetry._instrumentation' in sys.modules)"
    )
    output = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert output.split() == ["False", "False"]
