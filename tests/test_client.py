"""The client: the collection switch, the GeneralAnalytics gate, dedupe, the queue, stats."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest

import codex_telemetry
from codex_telemetry import _client, _gate
from codex_telemetry._client import GENERAL_ANALYTICS_FACTS, Telemetry
from codex_telemetry._reducer import AnalyticsReducer
from codex_telemetry._runtime import current_runtime
from codex_telemetry._settings import TelemetrySettings, load_settings
from codex_telemetry.events import AnalyticsEvent
from codex_telemetry.facts import (
    AppInvocation,
    AppMentioned,
    AppUsed,
    ClientInfo,
    Compaction,
    ErrorResponse,
    Fact,
    HookRun,
    Initialize,
    InitializeParams,
    JsonRpcError,
    Notification,
    PluginMetadata,
    PluginStateChanged,
    PluginUsed,
    Request,
    Response,
    SkillInvocation,
    SkillInvoked,
    SubAgentThreadStarted,
    TextInput,
    Thread,
    ThreadStartResponse,
    TokenUsage,
    TrackingContext,
    Turn,
    TurnCompletedNotification,
    TurnResolvedConfig,
    TurnStartRequest,
    TurnTokenUsage,
)
from codex_telemetry.testing import InMemorySink

# --- fact builders (shared with the other client tests) ------------------------------------


def tracking(turn_id: str = "turn-1") -> TrackingContext:
    return TrackingContext(model_slug="gpt-5", thread_id="thread-1", turn_id=turn_id)


def hook_run(turn_id: str = "turn-1") -> HookRun:
    return HookRun(
        tracking=tracking(turn_id), hook_name="Stop", hook_source="user", status="completed"
    )


def app_used(turn_id: str = "turn-1", connector_id: str | None = "gmail") -> AppUsed:
    return AppUsed(
        tracking=tracking(turn_id),
        app=AppInvocation(connector_id=connector_id, app_name="Gmail", invocation_type="explicit"),
    )


def plugin_used(turn_id: str = "turn-1", name: str = "lint") -> PluginUsed:
    return PluginUsed(
        tracking=tracking(turn_id), plugin=PluginMetadata(plugin_name=name, marketplace_name="m")
    )


def initialize(connection_id: int = 7) -> Initialize:
    return Initialize(
        connection_id=connection_id,
        params=InitializeParams(client_info=ClientInfo(name="codex-tui", version="1.0.0")),
        product_client_id="codex-tui",
        rpc_transport="stdio",
        runtime=None,
    )


def thread_started(connection_id: int = 7, thread_id: str = "thread-1") -> Response:
    return Response(
        connection_id=connection_id,
        request_id=1,
        response=ThreadStartResponse(
            thread=Thread(id=thread_id, ephemeral=False, created_at=1, source="exec"),
            model="gpt-5",
        ),
    )


def gated_facts() -> list[Fact]:
    """One fact of each type the GeneralAnalytics flag gates."""
    return [
        initialize(),
        Request(
            connection_id=7,
            request_id=3,
            request=TurnStartRequest(thread_id="thread-1", input=(TextInput(text="hi"),)),
        ),
        thread_started(),
        ErrorResponse(connection_id=7, request_id=4, error=JsonRpcError(code=-1, message="no")),
        Notification(
            notification=TurnCompletedNotification(
                thread_id="thread-1", turn=Turn(id="turn-1", status="completed")
            )
        ),
        SubAgentThreadStarted(
            thread_id="thread-9",
            parent_thread_id=None,
            product_client_id="codex-tui",
            client_name=None,
            client_version=None,
            model="gpt-5",
            ephemeral=False,
            subagent_source="review",
            created_at=5,
        ),
        TurnResolvedConfig(
            turn_id="turn-1",
            thread_id="thread-1",
            num_input_images=0,
            submission_type=None,
            ephemeral=False,
            session_source="exec",
            model="gpt-5",
            model_provider="openai",
            sandbox_policy="read_only",
            reasoning_effort=None,
            reasoning_summary=None,
            service_tier=None,
            approval_policy="never",
            approvals_reviewer="user",
            sandbox_network_access=False,
            collaboration_mode="default",
            personality=None,
            is_first_turn=True,
        ),
        TurnTokenUsage(
            turn_id="turn-1",
            thread_id="thread-1",
            token_usage=TokenUsage(
                input_tokens=1,
                cached_input_tokens=0,
                output_tokens=1,
                reasoning_output_tokens=0,
                total_tokens=2,
            ),
        ),
        Compaction(
            thread_id="thread-1",
            turn_id="turn-1",
            trigger="auto",
            reason="context_limit",
            implementation="responses",
            phase="mid_turn",
            strategy="memento",
            status="completed",
            error=None,
            active_context_tokens_before=10,
            active_context_tokens_after=5,
            started_at=1,
            completed_at=2,
            duration_ms=None,
        ),
    ]


def ungated_facts() -> list[Fact]:
    """One fact of each type the flag does not gate, each producing exactly one event."""
    return [
        SkillInvoked(
            tracking=tracking(),
            invocations=(
                SkillInvocation(
                    skill_name="doc",
                    skill_scope="user",
                    skill_path="/nonexistent/skills/doc/SKILL.md",
                    invocation_type="explicit",
                ),
            ),
        ),
        AppMentioned(
            tracking=tracking(),
            mentions=(AppInvocation(connector_id="c", app_name="C", invocation_type=None),),
        ),
        app_used(),
        plugin_used(),
        PluginStateChanged(
            plugin=PluginMetadata(plugin_name="lint", marketplace_name="m"), state="installed"
        ),
        hook_run(),
    ]


def settings(**overrides: Any) -> TelemetrySettings:
    return load_settings(**overrides)


@pytest.fixture
def make_client() -> Iterator[Callable[..., tuple[Telemetry, InMemorySink]]]:
    """Build clients with an in-memory sink; every one is shut down after the test."""
    made: list[Telemetry] = []

    def make(**overrides: Any) -> tuple[Telemetry, InMemorySink]:
        sink = InMemorySink()
        client = Telemetry(settings(**overrides), sink=sink)
        made.append(client)
        return client, sink

    yield make
    for client in made:
        client.shutdown(timeout=5)


# --- the GeneralAnalytics gate -------------------------------------------------------------


def test_gated_fact_types_are_exactly_those_of_the_spec() -> None:
    assert {type(fact) for fact in gated_facts()} == GENERAL_ANALYTICS_FACTS
    assert len(GENERAL_ANALYTICS_FACTS) == 9


def test_flag_off_filters_the_gated_families_only(
    make_client: Callable[..., tuple[Telemetry, InMemorySink]],
) -> None:
    client, sink = make_client()
    for fact in gated_facts():
        client.track_fact(fact)
    for fact in ungated_facts():
        client.track_fact(fact)
    assert client.flush(timeout=10)

    stats = client.stats()
    assert stats.facts_filtered == 9
    assert stats.facts_accepted == 6
    assert [event.event_type for event in sink.events] == [
        "skill_invocation",
        "codex_app_mentioned",
        "codex_app_used",
        "codex_plugin_used",
        "codex_plugin_installed",
        "codex_hook_run",
    ]
    assert stats.events_produced == stats.events_exported == 6


def test_flag_on_lets_the_gated_families_through(
    make_client: Callable[..., tuple[Telemetry, InMemorySink]],
) -> None:
    client, sink = make_client(general_analytics=True, runtime_version="9.9.9")
    client.track_fact(initialize())
    client.track_fact(thread_started())
    assert client.flush(timeout=10)

    assert client.stats().facts_filtered == 0
    [event] = sink.dicts()
    assert event["event_type"] == "codex_thread_initialized"
    # An Initialize without runtime gets this process's, under runtime_version.
    runtime = current_runtime("9.9.9")
    assert event["event_params"]["runtime"] == {
        "codex_rs_version": "9.9.9",
        "runtime_os": runtime.runtime_os,
        "runtime_os_version": runtime.runtime_os_version,
        "runtime_arch": runtime.runtime_arch,
    }


# --- dedupe and empty lists ----------------------------------------------------------------


def test_app_used_once_per_turn_and_connector(
    make_client: Callable[..., tuple[Telemetry, InMemorySink]],
) -> None:
    client, sink = make_client()
    for fact in [
        app_used("t1", "gmail"),
        app_used("t1", "gmail"),
        app_used("t1", "drive"),
        app_used("t2", "gmail"),
        app_used("t1", None),
        app_used("t1", None),
    ]:
        client.track_fact(fact)
    assert client.flush(timeout=10)
    assert [
        (e["event_params"]["turn_id"], e["event_params"]["connector_id"]) for e in sink.dicts()
    ] == [
        ("t1", "gmail"),
        ("t1", "drive"),
        ("t2", "gmail"),
        ("t1", None),
        ("t1", None),
    ]
    assert client.stats().facts_deduplicated == 1


def test_plugin_used_once_per_turn_and_plugin_key(
    make_client: Callable[..., tuple[Telemetry, InMemorySink]],
) -> None:
    client, sink = make_client()
    for fact in [
        plugin_used("t1", "a"),
        plugin_used("t1", "a"),
        plugin_used("t1", "b"),
        plugin_used("t2", "a"),
    ]:
        client.track_fact(fact)
    assert client.flush(timeout=10)
    assert [e["event_params"]["plugin_id"] for e in sink.dicts()] == ["a@m", "b@m", "a@m"]
    assert client.stats().facts_deduplicated == 1


def test_dedupe_keys_are_cleared_when_4096_are_held(
    make_client: Callable[..., tuple[Telemetry, InMemorySink]],
) -> None:
    client, _ = make_client()
    for index in range(4096):
        client.track_fact(app_used(f"turn-{index}"))
    client.track_fact(app_used("turn-0"))  # still held: a duplicate
    assert client.stats().facts_deduplicated == 1
    client.track_fact(app_used("turn-4096"))  # the set is full: cleared, then this key kept
    client.track_fact(app_used("turn-0"))  # forgotten by the clearing: sent again
    client.track_fact(app_used("turn-4096"))  # kept after the clearing: a duplicate
    stats = client.stats()
    assert stats.facts_deduplicated == 2
    assert stats.facts_accepted == 4096 + 2


def test_empty_skill_and_mention_lists_are_dropped(
    make_client: Callable[..., tuple[Telemetry, InMemorySink]],
) -> None:
    client, sink = make_client()
    client.track_fact(SkillInvoked(tracking=tracking(), invocations=()))
    client.track_fact(AppMentioned(tracking=tracking(), mentions=()))
    assert client.flush(timeout=10)
    stats = client.stats()
    assert stats.facts_dropped["empty"] == 2
    assert stats.facts_accepted == 0
    assert sink.events == []


# --- invalid input -------------------------------------------------------------------------


def test_strict_raises_for_a_value_that_is_not_a_fact(
    make_client: Callable[..., tuple[Telemetry, InMemorySink]],
) -> None:
    client, _ = make_client(strict=True)
    with pytest.raises(
        TypeError, match=r"takes a fact from codex_telemetry\.facts, not builtins\.dict"
    ):
        client.track_fact({"event": "nope"})  # type: ignore[arg-type]
    assert client.stats().facts_dropped["invalid"] == 1


def test_non_strict_logs_once_and_counts(
    make_client: Callable[..., tuple[Telemetry, InMemorySink]], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = make_client(strict=False)
    with caplog.at_level(logging.ERROR, logger="codex_telemetry"):
        for value in ("a", 1, None, hook_run):
            client.track_fact(value)  # type: ignore[arg-type]
    assert client.stats().facts_dropped["invalid"] == 4
    assert [record.getMessage() for record in caplog.records] == [
        "codex_telemetry: codex_telemetry.track_fact() takes a fact from "
        "codex_telemetry.facts, not builtins.str; it was dropped"
    ]


def test_strict_defaults_to_on_under_pytest(
    make_client: Callable[..., tuple[Telemetry, InMemorySink]],
) -> None:
    client, _ = make_client()
    with pytest.raises(TypeError):
        client.track_fact(object())  # type: ignore[arg-type]


# --- queue, worker, faults -----------------------------------------------------------------


class BlockingSink(InMemorySink):
    """Blocks in export until released; says when the worker got there."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def export(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> None:
        self.entered.set()
        self.release.wait()
        super().export(events, timestamp_ns)


def test_full_queue_drops_and_counts_without_blocking() -> None:
    sink = BlockingSink()
    client = Telemetry(settings(max_queue_size=5), sink=sink)
    try:
        client.track_fact(hook_run())
        assert sink.entered.wait(10)  # the worker holds that fact; the queue is empty
        for _ in range(8):
            client.track_fact(hook_run())
        stats = client.stats()
        assert stats.facts_accepted == 6
        assert stats.facts_dropped["queue_full"] == 3
        sink.release.set()
        assert client.flush(timeout=10)
        assert len(sink.events) == 6
    finally:
        sink.release.set()
        client.shutdown(timeout=5)


def test_worker_starts_with_the_first_queued_fact(
    make_client: Callable[..., tuple[Telemetry, InMemorySink]],
) -> None:
    def workers() -> int:
        return sum(t.name == "codex-telemetry-worker" for t in threading.enumerate())

    before = workers()
    client, _ = make_client()
    client.track_fact(initialize())  # filtered: no worker needed
    assert workers() == before
    client.track_fact(hook_run())
    assert workers() == before + 1
    client.track_fact(hook_run())
    assert workers() == before + 1


class _BrokenReducer(AnalyticsReducer):
    def ingest(self, fact: Fact) -> list[AnalyticsEvent]:
        if isinstance(fact, HookRun) and fact.tracking.turn_id == "boom":
            raise RuntimeError("reducer bug")
        return super().ingest(fact)


def test_internal_errors_are_counted_logged_once_and_do_not_stop_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = InMemorySink()
    client = Telemetry(settings(), sink=sink, reducer_factory=_BrokenReducer)
    try:
        with caplog.at_level(logging.ERROR, logger="codex_telemetry"):
            client.track_fact(hook_run("boom"))
            client.track_fact(hook_run("boom"))
            client.track_fact(hook_run("fine"))
            assert client.flush(timeout=10)
        assert client.stats().internal_errors == 2
        assert [event.to_dict()["event_params"]["turn_id"] for event in sink.events] == ["fine"]
        [record] = caplog.records
        assert record.getMessage() == (
            "codex_telemetry: internal error while reducing a HookRun fact; your code is unaffected"
        )
    finally:
        client.shutdown(timeout=5)


class _RaisingSink(InMemorySink):
    def export(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> None:
        raise OSError("disk full")


def test_a_sink_that_raises_counts_its_events_as_dropped() -> None:
    client = Telemetry(settings(), sink=_RaisingSink())
    try:
        client.track_fact(hook_run())
        client.flush(timeout=10)
        stats = client.stats()
        assert stats.events_produced == 1
        assert stats.events_dropped == {"sink_error": 1}
        assert stats.internal_errors == 1
    finally:
        client.shutdown(timeout=5)


def test_events_carry_the_time_they_were_produced(
    make_client: Callable[..., tuple[Telemetry, InMemorySink]],
) -> None:
    import time  # noqa: PLC0415

    client, sink = make_client()
    before = time.time_ns()
    client.track_fact(hook_run())
    assert client.flush(timeout=10)
    [stamp] = sink.timestamps_ns
    assert before <= stamp <= time.time_ns()


# --- concurrency ---------------------------------------------------------------------------


def test_eight_threads_lose_nothing_and_the_counters_add_up(
    make_client: Callable[..., tuple[Telemetry, InMemorySink]],
) -> None:
    client, sink = make_client()
    rounds = 500
    start = threading.Barrier(8)

    def report(worker: int) -> None:
        start.wait()
        for index in range(rounds):
            client.track_fact(hook_run(f"w{worker}-{index}"))  # accepted
            client.track_fact(initialize())  # filtered
            client.track_fact(app_used("shared", "gmail"))  # once overall, else deduplicated
            client.track_fact(AppMentioned(tracking=tracking(), mentions=()))  # empty
            client.stats()  # readable while others write

    threads = [threading.Thread(target=report, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.flush(timeout=30)

    total = 8 * rounds
    stats = client.stats()
    assert stats.facts_accepted == total + 1
    assert stats.facts_filtered == total
    assert stats.facts_deduplicated == total - 1
    assert stats.facts_dropped["empty"] == total
    assert stats.facts_dropped_total == total
    assert stats.events_produced == stats.events_exported == total + 1
    turn_ids = sorted(event.to_dict()["event_params"]["turn_id"] for event in sink.events)
    assert turn_ids == sorted([f"w{w}-{i}" for w in range(8) for i in range(rounds)] + ["shared"])


# --- module-level facade -------------------------------------------------------------------


@pytest.fixture
def no_default_client() -> Iterator[None]:
    previous = _client._swap_default(None)
    yield
    codex_telemetry.shutdown(timeout=5)
    _client._swap_default(previous)


@pytest.mark.usefixtures("no_default_client")
def test_track_fact_before_init_does_nothing() -> None:
    codex_telemetry.track_fact(hook_run())
    assert codex_telemetry.shutdown() is True


@pytest.mark.usefixtures("no_default_client")
def test_init_again_shuts_the_previous_client_down() -> None:
    first = codex_telemetry.init(exporter="none")
    second = codex_telemetry.init(exporter="none")
    first.track_fact(hook_run())
    second.track_fact(hook_run())
    assert first.stats().facts_dropped["after_shutdown"] == 1
    assert second.stats().facts_dropped["disabled"] == 1


@pytest.mark.usefixtures("no_default_client")
def test_init_raises_configuration_error_and_keeps_the_previous_client() -> None:
    first = codex_telemetry.init(exporter="none")
    with pytest.raises(codex_telemetry.ConfigurationError, match=r"otlp\.protocol"):
        codex_telemetry.init(otlp__protocol="xml")  # type: ignore[arg-type]
    first.track_fact(hook_run())
    assert first.stats().facts_dropped["disabled"] == 1


@pytest.mark.usefixtures("no_default_client")
def test_module_track_fact_reaches_the_default_client() -> None:
    client = codex_telemetry.init(exporter="none")
    codex_telemetry.track_fact(hook_run())
    assert client.stats().facts_dropped["disabled"] == 1
    assert codex_telemetry.shutdown() is True
    codex_telemetry.track_fact(hook_run())
    assert client.stats().facts_dropped["after_shutdown"] == 1


def test_every_fact_type_has_a_route() -> None:
    routes = _gate.routes(enabled=True, general_analytics=True)
    assert set(routes) == set(_gate.FACT_TYPES)
    assert len(routes) == 15


# --- instrumentation -----------------------------------------------------------------------


@pytest.mark.usefixtures("no_default_client")
@pytest.mark.parametrize("exporter", ["none", "console"])
def test_an_unknown_instrumentation_is_a_configuration_error(
    exporter: Literal["none", "console"],
) -> None:
    with pytest.raises(codex_telemetry.ConfigurationError) as caught:
        codex_telemetry.init(exporter=exporter, instrument=["openai_codex", "nope"])
    assert caught.value.problems == (
        "instrument: unknown instrumentation 'nope'; known: 'openai_codex'",
    )
    assert _client._default is None  # nothing changed


@pytest.mark.usefixtures("no_default_client")
def test_init_instruments_and_shutdown_uninstruments(tmp_path: Path) -> None:
    from codex_telemetry import _instrumentation  # noqa: PLC0415

    client = codex_telemetry.init(
        exporter="file", file__path=tmp_path / "events.jsonl", instrument=["openai_codex"]
    )
    assert _instrumentation.instrumented() == ("openai_codex",)
    client.shutdown(timeout=5)
    assert _instrumentation.instrumented() == ()


@pytest.mark.usefixtures("no_default_client")
def test_a_disabled_sdk_instruments_nothing() -> None:
    from codex_telemetry import _instrumentation  # noqa: PLC0415

    codex_telemetry.init(exporter="none", instrument="openai_codex")
    assert _instrumentation.instrumented() == ()


def test_the_quickstart_example_shows_its_events() -> None:
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, str(root / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=root,
    )
    assert [line.split(" ")[0] for line in result.stderr.splitlines()] == [
        "codex_thread_initialized",
        "codex_turn_steer_event",
        "skill_invocation",
        "codex_app_used",
        "codex_plugin_used",
        "codex_turn_event",
    ]
    assert result.stdout.splitlines() == [
        "delivered everything: True",
        "facts accepted 13, deduplicated 1; events produced 6, exported 6",
    ]


@pytest.mark.usefixtures("no_default_client")
def test_an_unopenable_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "missing-directory" / "events.jsonl"
    with pytest.raises(codex_telemetry.ConfigurationError) as caught:
        codex_telemetry.init(exporter="file", file__path=path)
    [problem] = caught.value.problems
    assert problem.startswith("file.path (CODEX_TELEMETRY_FILE__PATH): cannot open: [Errno 2]")


class _ReentrantSink(InMemorySink):
    """A sink that reports a fact while exporting (as a logging bridge might)."""

    client: Telemetry | None = None

    def export(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> None:
        super().export(events, timestamp_ns)
        if self.client is not None:
            self.client.track_fact(hook_run("from-inside"))


def test_facts_reported_from_inside_the_pipeline_do_not_loop() -> None:
    sink = _ReentrantSink()
    client = Telemetry(settings(), sink=sink)
    sink.client = client
    try:
        client.track_fact(hook_run("outside"))
        assert client.flush(timeout=10)
        assert [e.to_dict()["event_params"]["turn_id"] for e in sink.events] == ["outside"]
        assert client.stats().facts_dropped["reentrant"] == 1
    finally:
        client.shutdown(timeout=5)


@pytest.mark.usefixtures("no_default_client")
def test_init_builds_its_sink_with_the_settings_counters_and_logger_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.sdk._logs import LoggerProvider  # noqa: PLC0415

    from codex_telemetry._export._base import DeliveryCounters  # noqa: PLC0415

    calls: list[tuple[TelemetrySettings, DeliveryCounters, object]] = []
    sink = InMemorySink()

    def create_sink(
        settings: TelemetrySettings, delivery: DeliveryCounters, provider: object = None
    ) -> InMemorySink:
        calls.append((settings, delivery, provider))
        sink.delivery = delivery
        return sink

    monkeypatch.setattr("codex_telemetry._export._factory.create_sink", create_sink)
    provider = LoggerProvider()
    client = codex_telemetry.init(logger_provider=provider, originator="mine")
    [(given, delivery, given_provider)] = calls
    assert given is client.settings and given.originator == "mine"
    assert given_provider is provider
    client.track_fact(hook_run())
    assert client.flush(timeout=10)
    assert client.stats().events_exported == delivery.exported.value == 1


def test_stats_report_reducer_evictions(
    make_client: Callable[..., tuple[Telemetry, InMemorySink]],
) -> None:
    client, _ = make_client(general_analytics=True, reducer={"max_connections": 1})
    assert client.stats().reducer_evicted == {}
    client.track_fact(initialize(1))
    client.track_fact(initialize(2))
    assert client.flush(timeout=10)
    assert client.stats().reducer_evicted["connections"] == 1
