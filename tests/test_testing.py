"""codex_telemetry.testing: the in-memory sink, capture_events and the pytest fixture."""

from __future__ import annotations

import threading

import pytest

import codex_telemetry
from codex_telemetry import _client
from codex_telemetry.testing import EventCapture, InMemorySink, capture_events
from tests.test_client import hook_run, initialize, thread_started

pytest_plugins = ["pytester"]


def test_the_fixture_captures_what_the_code_under_test_reports(
    codex_telemetry_events: EventCapture,
) -> None:
    # The code under test uses the module-level facade, as a program would.
    codex_telemetry.track_fact(initialize())
    codex_telemetry.track_fact(thread_started())
    codex_telemetry.track_fact(hook_run())
    assert codex_telemetry_events.event_types() == ["codex_thread_initialized", "codex_hook_run"]
    assert codex_telemetry_events.dicts()[1] == {
        "event_type": "codex_hook_run",
        "event_params": {
            "thread_id": "thread-1",
            "turn_id": "turn-1",
            "model_slug": "gpt-5",
            "hook_name": "Stop",
            "hook_source": "user",
            "status": "completed",
        },
    }
    codex_telemetry_events.clear()
    assert codex_telemetry_events.events == []


def test_the_fixture_is_strict(codex_telemetry_events: EventCapture) -> None:
    with pytest.raises(TypeError):
        codex_telemetry.track_fact("not a fact")  # type: ignore[arg-type]


def test_capture_ignores_the_environment_and_restores_the_previous_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    monkeypatch.setenv("CODEX_TELEMETRY_GENERAL_ANALYTICS", "false")
    previous = _client._swap_default(None)
    try:
        with capture_events() as capture:
            codex_telemetry.track_fact(hook_run())
            codex_telemetry.track_fact(initialize())
            assert capture.telemetry.enabled
            assert capture.event_types() == ["codex_hook_run"]
            assert capture.telemetry.stats().facts_accepted == 2
        assert _client._default is None
        codex_telemetry.track_fact(hook_run())  # no client: nothing happens
        assert capture.telemetry.stats().facts_dropped["after_shutdown"] == 0
    finally:
        _client._swap_default(previous)


def test_capture_takes_settings_overrides() -> None:
    with capture_events(general_analytics=False, originator="my_app") as capture:
        codex_telemetry.track_fact(initialize())
        codex_telemetry.track_fact(hook_run())
        assert capture.event_types() == ["codex_hook_run"]
        assert capture.telemetry.settings.originator == "my_app"


def test_in_memory_sink_keeps_events_from_many_threads() -> None:
    sink = InMemorySink()
    event = hook_run()
    with capture_events() as capture:
        capture.telemetry.track_fact(event)
        [produced] = capture.events

    def export() -> None:
        for _ in range(1000):
            sink.export([produced], 1)

    threads = [threading.Thread(target=export) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sink.events) == 8000
    assert sink.delivery.exported.value == 8000
    assert sink.timestamps_ns == [1] * 8000
    assert sink.force_flush(0) and sink.shutdown(0)
    sink.clear()
    assert sink.events == [] and sink.dicts() == []


def test_the_plugin_serves_users_test_suites(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import codex_telemetry
        from codex_telemetry import facts

        def report_hook():
            codex_telemetry.track_fact(
                facts.HookRun(
                    tracking=facts.TrackingContext(model_slug="m", thread_id="t", turn_id="u"),
                    hook_name="Stop",
                    hook_source="user",
                    status="running",
                )
            )

        def test_reports_a_hook(codex_telemetry_events):
            report_hook()
            [event] = codex_telemetry_events.dicts()
            assert event["event_params"]["status"] == "failed"

        def test_sees_nothing_from_the_previous_test(codex_telemetry_events):
            assert codex_telemetry_events.events == []
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
