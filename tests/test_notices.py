"""Say it once, when it first happens: the notices a user reads on the ``codex_telemetry``
logger, checked word for word."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

import pytest

import codex_telemetry
from codex_telemetry import Telemetry, _client
from codex_telemetry._explain import DebugReducer
from codex_telemetry._notices import Notices
from codex_telemetry._reducer import AnalyticsReducer
from codex_telemetry._settings import load_settings
from codex_telemetry.events import AnalyticsEvent
from codex_telemetry.facts import AppInvocation, AppUsed, SkillInvoked, TrackingContext
from codex_telemetry.testing import InMemorySink, capture_events
from tests.otlp_receiver import HttpReceiver, HttpReply
from tests.test_export_faults import free_port
from tests.test_reducer import (
    initialize,
    thread_response,
    token_usage,
    turn_completed,
    turn_start_request,
    turn_start_response,
)

TRACKING = TrackingContext(model_slug="gpt-5", thread_id="thread-1", turn_id="turn-1")


def app_used(connector_id: str) -> AppUsed:
    return AppUsed(
        tracking=TRACKING,
        app=AppInvocation(connector_id=connector_id, app_name=None, invocation_type=None),
    )


def messages(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= level]


@pytest.fixture
def no_default_client() -> Iterator[None]:
    previous = _client._swap_default(None)
    yield
    codex_telemetry.shutdown(timeout=5)
    _client._swap_default(previous)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- the rate limit -----------------------------------------------------------------------


def test_each_kind_is_said_once_per_interval_with_the_repeats_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    notices = Notices(interval=60.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="codex_telemetry"):
        assert notices.say("a", "first a %d", 1) is True
        assert notices.say("a", "first a %d", 2) is False
        assert notices.say("b", "first b") is True
        assert notices.say("a", "first a %d", 3) is False
        clock.now += 60.0
        assert notices.say("a", "again a") is True
        clock.now += 60.0
        assert notices.say("a", "a once more") is True
    assert messages(caplog) == [
        "first a 1",
        "first b",
        "again a (2 more since the last report)",
        "a once more",
    ]
    assert notices.counts() == {"a": 3, "b": 1}


# --- what each notice says ----------------------------------------------------------------


def otlp_notices() -> Notices:
    settings = load_settings(
        otlp__endpoint="http://user:pw@collector.example:4318/v1/logs",
        otlp__headers="authorization=Bearer sekrit",
    )
    return Notices.for_settings(settings)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (
            "http_401",
            "codex_telemetry: the collector at http://***@collector.example:4318/v1/logs "
            "refused 3 events with HTTP 401, and will likely refuse every later request: "
            "check otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS); your program is unaffected",
        ),
        (
            "grpc_permission_denied",
            "codex_telemetry: the collector at http://***@collector.example:4318/v1/logs "
            "refused 3 events with gRPC status PERMISSION_DENIED, and will likely refuse "
            "every later request: check otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS); your "
            "program is unaffected",
        ),
        (
            "http_404",
            "codex_telemetry: the collector at http://***@collector.example:4318/v1/logs "
            "refused 3 events with HTTP 404, and will likely refuse every later request: "
            "check otlp.endpoint (CODEX_TELEMETRY_OTLP__ENDPOINT) and otlp.protocol "
            "(CODEX_TELEMETRY_OTLP__PROTOCOL); your program is unaffected",
        ),
        (
            "http_400",
            "codex_telemetry: the collector at http://***@collector.example:4318/v1/logs "
            "refused 3 events with HTTP 400, and will likely refuse every later request: "
            "its logs say why; your program is unaffected",
        ),
        (
            "unreachable",
            "codex_telemetry: 3 events could not be delivered to the collector at "
            "http://***@collector.example:4318/v1/logs (unreachable) after retrying: check "
            "that it is running and reachable; your program is unaffected",
        ),
        (
            "http_503",
            "codex_telemetry: 3 events could not be delivered to the collector at "
            "http://***@collector.example:4318/v1/logs: it answered HTTP 503 (busy or "
            "unavailable) until the batch's retries ran out, or asked to wait longer than "
            "they last (Retry-After); check its load and its logs; your program is "
            "unaffected",
        ),
        (
            "grpc_unavailable",
            "codex_telemetry: 3 events could not be delivered to the collector at "
            "http://***@collector.example:4318/v1/logs: it answered UNAVAILABLE (busy or "
            "unavailable) until the batch's retries ran out, or asked to wait longer than "
            "they last (Retry-After); check its load and its logs; your program is "
            "unaffected",
        ),
        (
            "export_queue_full",
            "codex_telemetry: 3 events were dropped: the queue of events waiting for the "
            "collector at http://***@collector.example:4318/v1/logs is full "
            "(max_export_queue_size=2048); raise max_export_queue_size "
            "(CODEX_TELEMETRY_MAX_EXPORT_QUEUE_SIZE) if events come in bursts; your "
            "program is unaffected",
        ),
        (
            "rejected",
            "codex_telemetry: the collector at http://***@collector.example:4318/v1/logs "
            "rejected 3 events (a partial success); its logs say why; your program is "
            "unaffected",
        ),
    ],
)
def test_what_a_drop_of_events_says(
    reason: str, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    notices = otlp_notices()
    with caplog.at_level(logging.INFO, logger="codex_telemetry"):
        notices.events_dropped(reason, 3)
    assert messages(caplog) == [expected]
    assert "sekrit" not in caplog.text
    assert notices.counts() == {f"events_dropped:{reason}": 1}


def test_the_codex_backend_names_its_token(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(exporter="codex_backend", codex_backend__token="sekrit")
    with caplog.at_level(logging.INFO, logger="codex_telemetry"):
        Notices.for_settings(settings).events_dropped("http_403", 1)
    assert messages(caplog) == [
        "codex_telemetry: the Codex backend at https://chatgpt.com/backend-api refused 1 "
        "events with HTTP 403, and will likely refuse every later request: check "
        "codex_backend.token (CODEX_TELEMETRY_CODEX_BACKEND__TOKEN) and "
        "codex_backend.account_id (CODEX_TELEMETRY_CODEX_BACKEND__ACCOUNT_ID); your "
        "program is unaffected"
    ]


def test_losses_said_elsewhere_are_not_repeated(caplog: pytest.LogCaptureFixture) -> None:
    notices = otlp_notices()
    with caplog.at_level(logging.INFO, logger="codex_telemetry"):
        for reason in ("shutdown", "encoding_error", "internal_error", "sink_error"):
            notices.events_dropped(reason, 1)
    assert caplog.records == []
    assert notices.counts() == {}


# --- in a running client ------------------------------------------------------------------


class BlockingSink(InMemorySink):
    """Holds the SDK's worker in ``export`` until released, so that the fact queue fills."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def export(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> None:
        self.entered.set()
        self.release.wait(10)
        super().export(events, timestamp_ns)


def test_the_first_full_queue_is_said_at_once_with_what_to_do(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = BlockingSink()
    client = Telemetry(load_settings(max_queue_size=2, strict=True), sink=sink)
    with caplog.at_level(logging.INFO, logger="codex_telemetry"):
        client.track_fact(app_used("c0"))
        assert sink.entered.wait(10)  # the worker holds c0; the queue has room for 2
        for number in range(1, 11):
            client.track_fact(app_used(f"c{number}"))
        said = messages(caplog)
        sink.release.set()
        assert client.shutdown(10)
    assert said == [
        "codex_telemetry: facts are being dropped: the queue of facts waiting for the worker "
        "is full (max_queue_size=2); raise max_queue_size (CODEX_TELEMETRY_MAX_QUEUE_SIZE) "
        "if your program tracks facts in bursts; your program is unaffected"
    ]
    stats = client.stats()
    assert stats.facts_dropped["queue_full"] == 8
    assert stats.notices == {"fact_dropped:queue_full": 1}


def test_a_fact_after_shutdown_and_an_empty_list_are_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="codex_telemetry"), capture_events() as capture:
        codex_telemetry.track_fact(SkillInvoked(tracking=TRACKING, invocations=[]))
        codex_telemetry.track_fact(SkillInvoked(tracking=TRACKING, invocations=[]))
        capture.telemetry.shutdown(5)
        capture.telemetry.track_fact(app_used("late"))
        stats = capture.telemetry.stats()
    assert messages(caplog) == [
        "codex_telemetry: a SkillInvoked or AppMentioned fact with an empty list was "
        "dropped: it makes no event; your program is unaffected",
        "codex_telemetry: a fact tracked after shutdown() was dropped; track facts before "
        "shutting down, or call init() again to start a new client; your program is "
        "unaffected",
    ]
    assert stats.notices == {"fact_dropped:empty": 1, "fact_dropped:after_shutdown": 1}


def test_a_collector_that_refuses_is_said_when_it_first_happens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with HttpReceiver(default=HttpReply(status=401)) as receiver:
        client = Telemetry(
            load_settings(
                otlp__endpoint=receiver.url(),
                otlp__headers="authorization=Bearer sekrit",
                export_interval=0.05,
            )
        )
        with caplog.at_level(logging.INFO, logger="codex_telemetry"):
            client.track_fact(app_used("c1"))
            assert client.flush(10) is False
            said_while_running = messages(caplog)
            client.track_fact(app_used("c2"))
            assert client.flush(10) is False
            client.shutdown(5)
    url = receiver.url()
    assert said_while_running == [
        f"codex_telemetry: the collector at {url} refused 1 events with HTTP 401, and will "
        "likely refuse every later request: check otlp.headers "
        "(CODEX_TELEMETRY_OTLP__HEADERS); your program is unaffected"
    ]
    # Said once; the exit line names the endpoint too.
    assert messages(caplog)[1:] == [
        f"codex_telemetry: 2 analytics events were not delivered to the collector at {url} "
        "(http_401: 2); your program is unaffected"
    ]
    assert "sekrit" not in caplog.text
    assert client.stats().notices == {"events_dropped:http_401": 1}


def test_the_exit_line_with_a_dead_collector_names_it_and_counts_dropped_facts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/logs"
    # Without the spool: with it, the undelivered event is kept for the next run instead.
    client = Telemetry(load_settings(otlp__endpoint=url, spool__enabled=False))
    with caplog.at_level(logging.INFO, logger="codex_telemetry"):
        client.track_fact(SkillInvoked(tracking=TRACKING, invocations=[]))
        client.track_fact(app_used("c1"))
        assert client.shutdown(1.0) is False
    assert messages(caplog, logging.WARNING) == [
        "codex_telemetry: a SkillInvoked or AppMentioned fact with an empty list was "
        "dropped: it makes no event; your program is unaffected",
        f"codex_telemetry: 1 events could not be delivered to the collector at {url} "
        "(unreachable) after retrying: check that it is running and reachable; your "
        "program is unaffected",
        f"codex_telemetry: 1 analytics events were not delivered to the collector at {url} "
        "(unreachable: 1), and 1 facts were dropped (empty: 1); your program is unaffected",
    ]


# --- why collection is off ----------------------------------------------------------------


@pytest.mark.usefixtures("no_default_client")
@pytest.mark.parametrize(
    ("environment", "arguments", "reason"),
    [
        ({"DO_NOT_TRACK": "1"}, {}, "DO_NOT_TRACK=1 opts out"),
        ({"OTEL_SDK_DISABLED": "true"}, {}, "OTEL_SDK_DISABLED=true opts out"),
        ({}, {"enabled": False}, "enabled is false (argument)"),
        ({"CODEX_TELEMETRY_ENABLED": "0"}, {}, "enabled is false (CODEX_TELEMETRY_ENABLED)"),
        ({}, {"exporter": "none"}, "exporter is 'none' (argument)"),
        (
            {"CODEX_TELEMETRY_EXPORTER": "none"},
            {},
            "exporter is 'none' (CODEX_TELEMETRY_EXPORTER)",
        ),
    ],
)
def test_init_says_why_collection_is_off(
    environment: dict[str, str],
    arguments: dict[str, object],
    reason: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.INFO, logger="codex_telemetry"):
        client = codex_telemetry.init(**arguments)  # type: ignore[arg-type]
    assert client.enabled is False
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "INFO",
            f"codex_telemetry: collection is off ({reason}): facts are counted as dropped "
            "'disabled' and nothing is sent",
        )
    ]


@pytest.mark.usefixtures("no_default_client")
def test_init_says_nothing_when_collecting(
    tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="codex_telemetry"):
        codex_telemetry.init(exporter="console")
    assert caplog.records == []


# --- debug ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_default_client")
def test_debug_is_chosen_once_when_the_client_is_built(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CODEX_TELEMETRY_DEBUG", "true")
    with caplog.at_level(logging.DEBUG, logger="codex_telemetry"):
        client = codex_telemetry.init(exporter="console", general_analytics=True)
        for fact in (initialize(), thread_response(connection_id=9)):
            codex_telemetry.track_fact(fact)
        assert client.flush(5)
    assert type(client._worker.reducer) is DebugReducer
    assert [m for m in messages(caplog, logging.DEBUG) if "Initialize" in m or "9" in m] == [
        "codex_telemetry: Initialize(connection_id=7): recorded, no event yet",
        "codex_telemetry: Response(ThreadStartResponse connection_id=9 request_id=1): "
        "no event: its connection is unknown (no Initialize was tracked for it, or it was "
        "evicted)",
    ]


@pytest.mark.usefixtures("no_default_client")
def test_debug_says_each_fact_the_flag_filtered(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="codex_telemetry"):
        client = codex_telemetry.init(exporter="console", debug=True)
        codex_telemetry.track_fact(initialize())
        client.track_fact(thread_response())
        stats = client.stats()
    assert messages(caplog, logging.DEBUG) == [
        "codex_telemetry: Initialize(connection_id=7): filtered: general_analytics is off "
        "(thread, turn, steer, sub-agent and compaction facts need it)",
        "codex_telemetry: Response(ThreadStartResponse connection_id=7 request_id=1): "
        "filtered: general_analytics is off (thread, turn, steer, sub-agent and compaction "
        "facts need it)",
    ]
    assert stats.facts_filtered == 2


def test_without_debug_the_plain_reducer_runs() -> None:
    with capture_events() as capture:
        codex_telemetry.track_fact(initialize())
        assert capture.telemetry.flush(5)
        assert type(capture.telemetry._worker.reducer) is AnalyticsReducer


# --- stats() explains the missing events --------------------------------------------------


def test_stats_say_which_facts_a_turn_still_waits_for() -> None:
    with capture_events() as capture:
        for fact in (
            initialize(),
            thread_response(),
            thread_response(connection_id=9),  # never initialized
            turn_start_request(),
            turn_start_response(),
            token_usage(),
            turn_completed(),  # no TurnResolvedConfig: the turn waits
        ):
            codex_telemetry.track_fact(fact)
        assert capture.telemetry.flush(5)
        stats = capture.telemetry.stats()
    assert [event["event_type"] for event in capture.dicts()] == ["codex_thread_initialized"]
    assert stats.facts_without_event == {
        "unknown_connection": 1,
        "unknown_thread": 0,
        "no_pending_request": 0,
        "after_emission": 0,
        "turn_evicted": 0,
    }
    assert stats.turns_waiting == {
        "turn_start_response": 0,
        "resolved_config": 1,
        "completion": 0,
        "initialize": 0,
        "thread_response": 0,
    }
    assert repr(stats) == (
        "TelemetryStats(facts_accepted=7, facts_without_event={'unknown_connection': 1}, "
        "turns_waiting={'resolved_config': 1}, events_produced=1, events_exported=1)"
    )
