"""codex_telemetry.testing: the in-memory sink, capture_events and the pytest fixture."""

from __future__ import annotations

import threading

import pytest

import codex_telemetry
from codex_telemetry import _client
from codex_telemetry.testing import EventCapture, InMemorySink, capture_events
from tests import sample_app
from tests.otlp_receiver import HttpReceiver
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


SAMPLE_APP_EVENTS = [
    {
        "event_type": "skill_invocation",
        "skill_id": "5bc517ec8f1b05d17d2b3928ad95807550108bdd",
        "skill_name": "doc",
        "event_params": {
            "product_client_id": "sample_app",
            "skill_scope": "user",
            "repo_url": None,
            "thread_id": "thread-1",
            "invoke_type": "explicit",
            "model_slug": "gpt-5",
        },
    },
    {
        "event_type": "codex_hook_run",
        "event_params": {
            "thread_id": "thread-1",
            "turn_id": "turn-1",
            "model_slug": "gpt-5",
            "hook_name": "Stop",
            "hook_source": "user",
            "status": "completed",
        },
    },
]


def test_an_app_that_calls_init_itself_is_captured_exactly(
    codex_telemetry_events: EventCapture,
) -> None:
    with HttpReceiver() as collector:
        sample_app.main(collector.url())  # init(exporter="otlp", ...) then three facts
        # The app's own settings apply (originator, the app_used exclusion), its sink not.
        assert codex_telemetry_events.dicts() == SAMPLE_APP_EVENTS
        assert codex_telemetry.shutdown(10)
    assert collector.attempts == 0
    app_client = codex_telemetry_events.telemetry
    assert app_client.settings.originator == "sample_app"
    assert app_client.stats().events_filtered_by_type == 1
    assert repr(app_client) == "<Telemetry sink=InMemorySink shut down>"


def test_the_capture_says_what_it_is() -> None:
    with capture_events() as capture:
        assert repr(capture) == (
            "<EventCapture in memory: 0 events, reported by <Telemetry sink=InMemorySink running>>"
        )
        codex_telemetry.track_fact(hook_run())
        capture.events  # noqa: B018 - waits for the worker
        assert repr(capture).startswith("<EventCapture in memory: 1 event, ")


def test_the_capture_settings_win_over_the_app_and_init_keeps_the_capture() -> None:
    previous = _client._swap_default(None)
    try:
        with capture_events(originator="from_the_test") as capture:
            first = capture.telemetry
            sample_app.main("http://127.0.0.1:9/v1/logs")
            assert capture.telemetry is not first
            assert repr(first) == "<Telemetry sink=InMemorySink shut down>"
            assert capture.event_types() == ["skill_invocation", "codex_hook_run"]
            assert capture.dicts()[0]["event_params"]["product_client_id"] == "from_the_test"
            with pytest.raises(codex_telemetry.ConfigurationError, match="max_queue_size"):
                codex_telemetry.init(max_queue_size=0)
        assert _client._default is None
        assert _client._capture is None
    finally:
        _client._swap_default(previous)


def test_an_app_calling_init_leaves_no_exit_line_after_the_summary(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_app="""
        import codex_telemetry
        from codex_telemetry import facts

        def main():  # the app: its own init(), to a collector that is not there
            codex_telemetry.init(otlp__endpoint="http://127.0.0.1:9/v1/logs")
            codex_telemetry.track_fact(
                facts.HookRun(
                    tracking=facts.TrackingContext(model_slug="m", thread_id="t", turn_id="u"),
                    hook_name="Stop",
                    hook_source="user",
                    status="completed",
                )
            )

        def test_main_reports_the_hook(codex_telemetry_events):
            main()
            assert codex_telemetry_events.event_types() == ["codex_hook_run"]
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    output = result.stdout.str() + result.stderr.str()
    assert "codex_telemetry" not in output  # no exit line, no warning
    assert result.stdout.lines[-1].startswith("1 passed in ")  # the summary is the last line


def test_the_marker_passes_options_to_the_capture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import codex_telemetry
        from codex_telemetry import facts

        @pytest.mark.codex_telemetry(general_analytics=False, originator="marked")
        def test_options(codex_telemetry_events):
            settings = codex_telemetry_events.telemetry.settings
            assert (settings.general_analytics, settings.originator) == (False, "marked")
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=1)
