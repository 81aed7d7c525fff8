"""``before_send`` and the event type filter: what the program decides before events leave.

Every sink sees what the hook returned: the in-memory sink, the file's lines, the OTLP
records (decoded by a real loopback receiver) and the Codex backend's request body.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import marshal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

import codex_telemetry
from benchmarks import _workload
from codex_telemetry import _client, _spool
from codex_telemetry._client import Telemetry
from codex_telemetry._export._codex_backend import encode_events
from codex_telemetry._export._console import format_event
from codex_telemetry._export._file import event_line
from codex_telemetry._export._json import JsonRecordWriter
from codex_telemetry._export._wire import RecordWriter
from codex_telemetry._hooks import EventHooks
from codex_telemetry._internal_errors import InternalErrors
from codex_telemetry._settings import load_settings
from codex_telemetry._spool import SpooledEvent
from codex_telemetry.events import AnalyticsEvent, PluginUsedEvent, TurnEvent, WireEvent
from codex_telemetry.facts import (
    ClientInfo,
    HookRun,
    Initialize,
    InitializeParams,
    Response,
    RuntimeMetadata,
    SkillInvocation,
    SkillInvoked,
    Thread,
    ThreadStartResponse,
    TrackingContext,
)
from codex_telemetry.testing import capture_events
from tests.otlp_receiver import HttpReceiver, HttpReply, plain_records
from tests.test_export_codex_backend import Backend

RUNTIME = RuntimeMetadata("0.1.0", "linux", "12.0.0", "x86_64")
TRACKING = TrackingContext(model_slug="gpt-5", thread_id="thread-1", turn_id="turn-1")


def initialize() -> Initialize:
    return Initialize(
        connection_id=7,
        params=InitializeParams(client_info=ClientInfo(name="codex-tui", version="1.0.0")),
        product_client_id="codex-tui",
        rpc_transport="stdio",
        runtime=RUNTIME,
    )


def thread_started() -> Response:
    return Response(
        connection_id=7,
        request_id=1,
        response=ThreadStartResponse(
            thread=Thread(id="thread-1", ephemeral=False, created_at=1, source="exec"),
            model="gpt-5",
        ),
    )


def hook_run() -> HookRun:
    return HookRun(tracking=TRACKING, hook_name="Stop", hook_source="user", status="completed")


def skill_invoked() -> SkillInvoked:
    return SkillInvoked(
        tracking=TRACKING,
        invocations=[
            SkillInvocation(
                skill_name="doc",
                skill_scope="user",
                skill_path="/home/me/.codex/skills/doc/SKILL.md",
                invocation_type="explicit",
            )
        ],
    )


def redact_model_drop_hooks(event: dict[str, Any]) -> dict[str, Any] | None:
    """The README's example: redact ``model``, drop every ``codex_hook_run``."""
    if event["event_type"] == "codex_hook_run":
        return None
    if "model" in event["event_params"]:
        event["event_params"]["model"] = "redacted"
    return event


THREAD_REDACTED: dict[str, Any] = {
    "event_type": "codex_thread_initialized",
    "event_params": {
        "thread_id": "thread-1",
        "app_server_client": {
            "product_client_id": "codex-tui",
            "client_name": "codex-tui",
            "client_version": "1.0.0",
            "rpc_transport": "stdio",
            "experimental_api_enabled": None,
        },
        "runtime": {
            "codex_rs_version": "0.1.0",
            "runtime_os": "linux",
            "runtime_os_version": "12.0.0",
            "runtime_arch": "x86_64",
        },
        "model": "redacted",
        "ephemeral": False,
        "thread_source": "user",
        "initialization_mode": "new",
        "subagent_source": None,
        "parent_thread_id": None,
        "created_at": 1,
    },
}
SKILL: dict[str, Any] = {
    "event_type": "skill_invocation",
    "skill_id": "5bc517ec8f1b05d17d2b3928ad95807550108bdd",
    "skill_name": "doc",
    "event_params": {
        "product_client_id": "codex_cli_rs",
        "skill_scope": "user",
        "repo_url": None,
        "thread_id": "thread-1",
        "invoke_type": "explicit",
        "model_slug": "gpt-5",
    },
}


def report_session() -> None:
    for fact in (initialize(), thread_started(), hook_run(), skill_invoked()):
        codex_telemetry.track_fact(fact)


@pytest.fixture
def no_default_client() -> Iterator[None]:
    previous = _client._swap_default(None)
    try:
        yield
    finally:
        codex_telemetry.shutdown()
        _client._swap_default(previous)


def test_before_send_changes_and_drops_events() -> None:
    with capture_events(before_send=redact_model_drop_hooks) as capture:
        report_session()
        assert capture.dicts() == [THREAD_REDACTED, SKILL]
        stats = capture.telemetry.stats()
    assert stats.events_produced == 2
    assert stats.events_exported == 2
    assert stats.events_dropped_by_before_send == 1
    assert stats.before_send_errors == 0
    assert stats.internal_errors == 0


def test_a_before_send_that_returns_its_argument_keeps_the_very_event() -> None:
    seen: list[dict[str, Any]] = []

    def keep(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(json.loads(json.dumps(event)))
        return event

    with capture_events(before_send=keep) as capture:
        report_session()
        events = capture.events
    assert [event.to_dict() for event in events] == seen
    assert seen[0]["event_params"]["model"] == "gpt-5"
    assert [type(event).__name__ for event in events] == [
        "ThreadInitializedEvent",
        "HookRunEvent",
        "SkillInvocationEvent",
    ]


def test_a_changed_shape_is_sent_as_returned() -> None:
    def reshape(event: dict[str, Any]) -> dict[str, Any]:
        params = event["event_params"]
        if event["event_type"] == "codex_hook_run":
            del params["model_slug"]
            params["team"] = "blue"
        if event["event_type"] == "skill_invocation":
            del event["skill_id"]
        return {**event, "event_params": params}

    with capture_events(before_send=reshape) as capture:
        codex_telemetry.track_fact(hook_run())
        codex_telemetry.track_fact(skill_invoked())
        assert capture.dicts() == [
            {
                "event_type": "codex_hook_run",
                "event_params": {
                    "thread_id": "thread-1",
                    "turn_id": "turn-1",
                    "hook_name": "Stop",
                    "hook_source": "user",
                    "status": "completed",
                    "team": "blue",
                },
            },
            {
                "event_type": "skill_invocation",
                "skill_name": "doc",
                "event_params": SKILL["event_params"],
            },
        ]


@pytest.mark.parametrize(
    ("returned", "problem"),
    [
        (["not", "a", "dict"], "before_send returned list, not a dict or None"),
        ({"event_type": "codex_hook_run"}, "without a string event_type and an event_params"),
        ({"event_type": 1, "event_params": {}}, "without a string event_type"),
        ({"event_type": "x", "event_params": {"bad key": 1}}, "'bad key' is not a Python"),
    ],
)
def test_a_hook_that_returns_no_wire_event_is_counted_and_the_event_kept(
    returned: Any, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    with capture_events(before_send=lambda event: returned) as capture:
        codex_telemetry.track_fact(hook_run())
        [event] = capture.dicts()
    assert event["event_type"] == "codex_hook_run"
    assert event["event_params"]["model_slug"] == "gpt-5"
    stats = capture.telemetry.stats()
    assert (stats.before_send_errors, stats.internal_errors) == (1, 1)
    [record] = [r for r in caplog.records if "before_send" in r.getMessage()]
    assert record.getMessage() == (
        "codex_telemetry: before_send failed on a codex_hook_run event, which was sent "
        "unchanged: the fault is in the hook"
    )
    assert record.exc_info is not None and problem in str(record.exc_info[1])


def test_a_hook_that_raises_is_logged_once_counted_and_the_events_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: dict[str, Any]) -> dict[str, Any]:
        event["event_params"]["model_slug"] = "half-changed"
        raise RuntimeError("bug in the hook")

    with capture_events(before_send=broken) as capture:
        for turn in ("turn-1", "turn-2", "turn-3"):
            codex_telemetry.track_fact(
                HookRun(
                    tracking=TrackingContext(model_slug="gpt-5", thread_id="t", turn_id=turn),
                    hook_name="Stop",
                    hook_source="user",
                    status="completed",
                )
            )
        events = capture.dicts()
    assert [event["event_params"]["model_slug"] for event in events] == ["gpt-5"] * 3
    stats = capture.telemetry.stats()
    assert (stats.before_send_errors, stats.internal_errors, stats.events_exported) == (3, 3, 3)
    lines = [r for r in caplog.records if "before_send" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.ERROR


@pytest.mark.parametrize("raised", [SystemExit(3), KeyboardInterrupt()], ids=repr)
def test_a_hook_that_raises_system_exit_keeps_the_worker_and_the_events(
    raised: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    """A library calling ``sys.exit`` inside the hook would end the worker's thread, and
    with it every event after this one, silently."""
    calls = 0

    def exits_once(event: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise raised
        return event

    with capture_events(before_send=exits_once) as capture:
        for turn in ("turn-1", "turn-2"):
            codex_telemetry.track_fact(
                HookRun(
                    tracking=TrackingContext(model_slug="gpt-5", thread_id="t", turn_id=turn),
                    hook_name="Stop",
                    hook_source="user",
                    status="completed",
                )
            )
        assert capture.telemetry.flush(10)
        events = capture.dicts()
        stats = capture.telemetry.stats()
    assert [event["event_params"]["turn_id"] for event in events] == ["turn-1", "turn-2"]
    assert (stats.before_send_errors, stats.events_exported) == (1, 2)
    [record] = [r for r in caplog.records if "before_send failed" in r.getMessage()]
    assert record.exc_info is not None and record.exc_info[1] is raised


def test_a_value_the_file_cannot_write_is_dropped_saying_before_send_may_be_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def add_bytes(event: dict[str, Any]) -> dict[str, Any]:
        event["event_params"]["raw"] = b"\x00"
        return event

    telemetry = Telemetry(
        load_settings(exporter="file", file__path=tmp_path / "events.jsonl", before_send=add_bytes)
    )
    telemetry.track_fact(hook_run())
    assert telemetry.shutdown(10) is False
    assert telemetry.stats().events_dropped == {"encoding_error": 1}
    [line] = [r.getMessage() for r in caplog.records if "could not be written" in r.getMessage()]
    assert line == (
        "codex_telemetry: 1 events could not be written as UTF-8 JSON (TypeError); dropped. "
        "Most likely cause: a string with a lone surrogate (a file name), or a value other "
        "than JSON values returned by before_send"
    )


def test_event_types_exclude_and_include() -> None:
    with capture_events(event_types__exclude=["codex_hook_run"]) as capture:
        report_session()
        assert capture.event_types() == ["codex_thread_initialized", "skill_invocation"]
        assert capture.telemetry.stats().events_filtered_by_type == 1
    with capture_events(event_types={"include": ("skill_invocation", "codex_hook_run")}) as capture:
        report_session()
        assert capture.event_types() == ["codex_hook_run", "skill_invocation"]
        assert capture.telemetry.stats().events_filtered_by_type == 1
    # Both: only the included types, less the excluded ones; filtered before before_send.
    seen: list[str] = []

    def record(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event["event_type"])
        return event

    with capture_events(
        event_types__include=["skill_invocation", "codex_hook_run"],
        event_types__exclude=["codex_hook_run"],
        before_send=record,
    ) as capture:
        report_session()
        assert capture.event_types() == ["skill_invocation"]
        assert seen == ["skill_invocation"]
        assert capture.telemetry.stats().events_filtered_by_type == 2


@pytest.mark.parametrize(
    "value",
    ['["codex_hook_run", "codex_thread_initialized"]', "codex_hook_run, codex_thread_initialized"],
)
@pytest.mark.usefixtures("no_default_client")
def test_the_exclusion_comes_from_the_environment_into_the_file(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CODEX_TELEMETRY_EVENT_TYPES__EXCLUDE", value)
    path = tmp_path / "events.jsonl"
    telemetry = codex_telemetry.init(
        exporter="file",
        file__path=path,
        general_analytics=True,
        before_send=redact_model_drop_hooks,
    )
    report_session()
    assert telemetry.shutdown(10)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [{k: v for k, v in line.items() if k != "timestamp"} for line in lines] == [SKILL]
    assert telemetry.stats().events_filtered_by_type == 2


def test_an_unknown_event_type_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_TELEMETRY_EVENT_TYPES__EXCLUDE", "codex_turn,codex_hook_run")
    with pytest.raises(codex_telemetry.ConfigurationError) as caught:
        codex_telemetry.init()
    assert caught.value.problems == (
        "event_types.exclude (CODEX_TELEMETRY_EVENT_TYPES__EXCLUDE): 'codex_turn,codex_hook_run' "
        "holds an unknown event type 'codex_turn'; known: codex_app_mentioned, codex_app_used, "
        "codex_compaction_event, codex_hook_run, codex_plugin_disabled, codex_plugin_enabled, "
        "codex_plugin_installed, codex_plugin_uninstalled, codex_plugin_used, "
        "codex_thread_initialized, codex_turn_event, codex_turn_steer_event, skill_invocation",
    )


def test_an_empty_include_list_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """It would send nothing, with no line saying why."""
    monkeypatch.setenv("CODEX_TELEMETRY_EVENT_TYPES__INCLUDE", "[]")
    with pytest.raises(codex_telemetry.ConfigurationError) as caught:
        codex_telemetry.init()
    assert caught.value.problems == (
        "event_types.include (CODEX_TELEMETRY_EVENT_TYPES__INCLUDE): '[]' is empty, which "
        "would send no event: leave it unset to send every type, or set enabled=false to "
        "send nothing",
    )


def test_before_send_is_set_in_code_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_TELEMETRY_BEFORE_SEND", "my_module.redact")
    with pytest.raises(codex_telemetry.ConfigurationError) as caught:
        codex_telemetry.init()
    assert caught.value.problems == (
        "before_send (CODEX_TELEMETRY_BEFORE_SEND): 'my_module.redact' is not callable; "
        "before_send is set in code only",
    )


@pytest.mark.usefixtures("no_default_client")
def test_the_otlp_records_are_what_before_send_returned() -> None:
    with HttpReceiver() as receiver:
        telemetry = codex_telemetry.init(
            exporter="otlp",
            otlp__endpoint=receiver.url(),
            general_analytics=True,
            before_send=redact_model_drop_hooks,
        )
        report_session()
        assert telemetry.shutdown(10)
    records = [record for received in receiver.received for record in plain_records(received)]
    assert [(record.event_name, record.attributes) for record in records] == [
        ("codex_thread_initialized", THREAD_REDACTED["event_params"]),
        (
            "skill_invocation",
            {"skill_id": SKILL["skill_id"], "skill_name": "doc", **SKILL["event_params"]},
        ),
    ]


@pytest.mark.usefixtures("no_default_client")
def test_the_codex_backend_receives_what_before_send_returned() -> None:
    backend = Backend()
    telemetry = codex_telemetry.init(
        exporter="codex_backend",
        codex_backend__base_url=backend.base_url,
        codex_backend__token="t",
        general_analytics=True,
        before_send=redact_model_drop_hooks,
    )
    report_session()
    assert telemetry.shutdown(10)
    [(_, _, body)] = backend.requests
    assert json.loads(body) == {"events": [THREAD_REDACTED, SKILL]}


def test_a_client_without_hooks_has_no_hook_stage() -> None:
    with capture_events() as capture:
        assert capture.telemetry._worker.hooks is None
    with capture_events(event_types__exclude=[]) as capture:
        assert capture.telemetry._worker.hooks is None


def reshape_and_redact_runtime(event: dict[str, Any]) -> dict[str, Any]:
    params = event["event_params"]
    params["runtime"]["runtime_os_version"] = None  # a nested value, changed in place
    del params["created_at"]
    params["team"] = "blue"
    return event


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
@pytest.mark.usefixtures("no_default_client")
def test_the_otlp_encoders_send_a_changed_shape_and_nested_value(
    protocol: Literal["http/protobuf", "http/json"],
) -> None:
    with HttpReceiver() as receiver:
        telemetry = codex_telemetry.init(
            exporter="otlp",
            otlp__endpoint=receiver.url(),
            otlp__protocol=protocol,
            general_analytics=True,
            event_types__include=["codex_thread_initialized"],
            before_send=reshape_and_redact_runtime,
        )
        report_session()
        assert telemetry.shutdown(10)
    [record] = [record for received in receiver.received for record in plain_records(received)]
    expected: dict[str, Any] = dict(THREAD_REDACTED["event_params"])
    del expected["created_at"]
    expected["model"] = "gpt-5"
    expected["runtime"] = {**expected["runtime"], "runtime_os_version": None}
    expected["team"] = "blue"
    assert (record.event_name, record.attributes) == ("codex_thread_initialized", expected)


# --- what arrives: exactly what the hook returned, or, unchanged, what no hook sends -------


def reshape_and_redact(event: dict[str, Any]) -> dict[str, Any] | None:
    """Drops hook runs; redacts a nested value, removes a key and adds one to threads."""
    if event["event_type"] == "codex_hook_run":
        return None
    if event["event_type"] == "codex_thread_initialized":
        return reshape_and_redact_runtime(event)
    return event


THREAD_RESHAPED: dict[str, Any] = {
    "event_type": "codex_thread_initialized",
    "event_params": {
        "thread_id": "thread-1",
        "app_server_client": {
            "product_client_id": "codex-tui",
            "client_name": "codex-tui",
            "client_version": "1.0.0",
            "rpc_transport": "stdio",
            "experimental_api_enabled": None,
        },
        "runtime": {
            "codex_rs_version": "0.1.0",
            "runtime_os": "linux",
            "runtime_os_version": None,
            "runtime_arch": "x86_64",
        },
        "model": "gpt-5",
        "ephemeral": False,
        "thread_source": "user",
        "initialization_mode": "new",
        "subagent_source": None,
        "parent_thread_id": None,
        "team": "blue",
    },
}


@pytest.mark.usefixtures("no_default_client")
def test_the_file_holds_what_before_send_returned(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "events.jsonl"
    telemetry = codex_telemetry.init(
        exporter="file", file__path=path, general_analytics=True, before_send=reshape_and_redact
    )
    report_session()
    assert telemetry.shutdown(10)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [next(iter(line)) for line in lines] == ["timestamp", "timestamp"]
    assert [{k: v for k, v in line.items() if k != "timestamp"} for line in lines] == [
        THREAD_RESHAPED,
        SKILL,
    ]


@pytest.mark.usefixtures("no_default_client")
def test_the_console_shows_what_before_send_returned(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    telemetry = codex_telemetry.init(
        exporter="console", general_analytics=True, before_send=reshape_and_redact
    )
    report_session()
    assert telemetry.shutdown(10)
    lines = capsys.readouterr().err.splitlines()
    shown = [(line.split(" ", 2)[0], json.loads(line.split(" ", 2)[2])) for line in lines]
    assert shown == [
        ("codex_thread_initialized", THREAD_RESHAPED["event_params"]),
        (
            "skill_invocation",
            {"skill_id": SKILL["skill_id"], "skill_name": "doc", **SKILL["event_params"]},
        ),
    ]


def test_a_reshaped_event_spooled_then_replayed_arrives_as_returned(tmp_path: Path) -> None:
    settings: dict[str, Any] = {
        "general_analytics": True,
        "spool__directory": tmp_path / "spool",
        "before_send": reshape_and_redact,
        "event_types__include": ["codex_thread_initialized"],
    }
    # The collector is down for the first process: the event stays in the spool.
    with HttpReceiver(default=HttpReply(status=503)) as down:
        port = down.port
        first = Telemetry(load_settings(otlp__endpoint=down.url(), **settings))
        for fact in (initialize(), thread_started()):
            first.track_fact(fact)
        assert first.shutdown(0.5) is False
    assert first.stats().events_kept == 1
    [segment] = (tmp_path / "spool").rglob("*.jsonl")
    [line] = segment.read_text().splitlines()
    assert json.loads(line)["event"] == THREAD_RESHAPED
    # The next process sends it, without running the hook again.
    with HttpReceiver(port=port) as up:
        second = Telemetry(load_settings(otlp__endpoint=up.url(), **settings))
        assert second.flush(30)
        assert second.shutdown(5)
    assert second.stats().events_replayed == 1
    records = [record for received in up.received for record in plain_records(received)]
    assert [(record.event_name, record.attributes) for record in records] == [
        ("codex_thread_initialized", THREAD_RESHAPED["event_params"])
    ]


def _workload_events() -> list[AnalyticsEvent]:
    workload = _workload.Workload()
    reducer = _workload.new_reducer()
    facts = [*_workload.setup_facts(workload), *_workload.turn_facts(workload, 40)]
    facts += [initialize(), thread_started(), hook_run(), skill_invoked()]
    events = [event for fact in facts for event in reducer.ingest(fact)]
    first_of_each = {event.event_type: event for event in reversed(events)}
    return [first_of_each[kind] for kind in sorted(first_of_each)]


WORKLOAD_EVENTS = _workload_events()


@pytest.mark.parametrize("event", WORKLOAD_EVENTS, ids=lambda event: event.event_type)
def test_an_unchanged_event_is_sent_byte_for_byte_as_without_a_hook(
    event: AnalyticsEvent,
) -> None:
    hooks = EventHooks(
        before_send=lambda wire: wire, include=None, exclude=frozenset(), errors=InternalErrors()
    )
    [hooked] = hooks.apply([event])
    if event.top_level_fields:  # written out as the hook returned it
        assert type(hooked) is WireEvent
        assert hooked.wire == event.to_dict()
    else:  # a new event of its class, holding what the hook returned
        assert type(hooked) is type(event)
        assert hooked == event
        assert hooked is not event
    timestamp = 1_795_580_000_123_456_789

    def sent(item: AnalyticsEvent) -> list[bytes]:
        protobuf = RecordWriter(b"\n\x0b", b"\n\x04test").request([(item, timestamp)])
        otlp_json = JsonRecordWriter([("service.name", "x")], "test", "1").request(
            [(item, timestamp)]
        )
        return [
            protobuf.SerializeToString(),
            otlp_json,
            _spool._encode_event(item).encode(),
            event_line(item, timestamp).encode(),
            format_event(item, timestamp).encode(),
            encode_events([item]),
        ]

    assert sent(hooked) == sent(event)
    # ... and once read back from the spool, as the next process sends it.
    replayed = SpooledEvent(timestamp, json.loads(_spool._encode_event(hooked))).to_event()
    assert type(replayed) is type(event)
    assert sent(replayed) == sent(event)


def test_a_nested_value_replaced_by_an_equal_one_of_another_type_is_sent_as_returned() -> None:
    [event] = [e for e in WORKLOAD_EVENTS if e.event_type == "codex_turn_event"]
    assert event.to_dict()["event_params"]["app_server_client"]["experimental_api_enabled"] is False

    def zero(wire: dict[str, Any]) -> dict[str, Any]:
        wire["event_params"]["app_server_client"]["experimental_api_enabled"] = 0
        return wire

    hooks = EventHooks(before_send=zero, include=None, exclude=frozenset(), errors=InternalErrors())
    [hooked] = hooks.apply([event])
    line = json.loads(_spool._encode_event(hooked))
    assert line["event_params"]["app_server_client"] == {
        "product_client_id": "codex_vscode",
        "client_name": "codex_vscode",
        "client_version": "1.4.2",
        "rpc_transport": "stdio",
        "experimental_api_enabled": 0,
    }
    assert type(line["event_params"]["app_server_client"]["experimental_api_enabled"]) is int
    [record] = (
        RecordWriter(b"", b"")
        .request([(hooked, 1)])
        .message()
        .resource_logs[0]
        .scope_logs[0]
        .log_records
    )
    [client] = [kv.value for kv in record.attributes if kv.key == "app_server_client"]
    [enabled] = [
        kv.value for kv in client.kvlist_value.values if kv.key == "experimental_api_enabled"
    ]
    assert enabled.WhichOneof("value") == "int_value"
    assert enabled.int_value == 0


def test_a_hook_that_changes_a_shared_sub_object_changes_that_event_only() -> None:
    """The connection's client is shared by its events, and the hook gets a fresh copy of
    it each time: what one call changes is sent with that event and never leaks into
    the next event of the connection, nor back into the event the reducer made."""
    turns = [e for e in WORKLOAD_EVENTS if e.event_type == "codex_turn_event"]
    [event] = turns
    calls = 0

    def rename_first_client(wire: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            wire["event_params"]["app_server_client"]["client_name"] = "renamed"
        return wire

    hooks = EventHooks(
        before_send=rename_first_client, include=None, exclude=frozenset(), errors=InternalErrors()
    )
    first, second = hooks.apply([event, event])
    assert type(first) is WireEvent
    assert first.to_dict()["event_params"]["app_server_client"] == {
        "product_client_id": "codex_vscode",
        "client_name": "renamed",
        "client_version": "1.4.2",
        "rpc_transport": "stdio",
        "experimental_api_enabled": False,
    }
    assert type(second) is TurnEvent
    assert second == event
    assert second.app_server_client is event.app_server_client
    assert event.app_server_client.client_name == "codex_vscode"
    assert json.loads(_spool._encode_event(second))["event_params"]["app_server_client"] == {
        "product_client_id": "codex_vscode",
        "client_name": "codex_vscode",
        "client_version": "1.4.2",
        "rpc_transport": "stdio",
        "experimental_api_enabled": False,
    }


def test_a_changed_value_keeps_the_event_class_and_is_sent_as_returned() -> None:
    [event] = [e for e in WORKLOAD_EVENTS if isinstance(e, PluginUsedEvent)]
    assert event.connector_ids == ("connector_figma",)

    def redact(wire: dict[str, Any]) -> dict[str, Any]:
        wire["event_params"]["model_slug"] = "redacted"
        return wire

    hooks = EventHooks(
        before_send=redact, include=None, exclude=frozenset(), errors=InternalErrors()
    )
    [hooked] = hooks.apply([event])
    assert type(hooked) is PluginUsedEvent
    assert hooked == dataclasses.replace(event, model_slug="redacted")
    assert hooked.connector_ids == ("connector_figma",)  # sent as a list, kept as a tuple
    assert event.model_slug == "gpt-5.1-codex"
    assert json.loads(_spool._encode_event(hooked)) == {
        "event_type": "codex_plugin_used",
        "event_params": {
            "plugin_id": "figma@openai-curated",
            "plugin_name": "figma",
            "marketplace_name": "openai-curated",
            "has_skills": True,
            "mcp_server_count": 1,
            "connector_ids": ["connector_figma"],
            "product_client_id": "codex_cli_rs",
            "thread_id": "0199a1b2-c3d4-7e5f-8a9b-000100000001",
            "turn_id": "turn-0000000016",
            "model_slug": "redacted",
        },
    }


def test_a_renamed_event_type_is_sent_under_the_new_name() -> None:
    [event] = [e for e in WORKLOAD_EVENTS if e.event_type == "codex_app_used"]

    def rename(wire: dict[str, Any]) -> dict[str, Any]:
        wire["event_type"] = "my_app_used"
        return wire

    hooks = EventHooks(
        before_send=rename, include=None, exclude=frozenset(), errors=InternalErrors()
    )
    [hooked] = hooks.apply([event])
    assert type(hooked) is WireEvent
    assert hooked.event_type == "my_app_used"
    assert json.loads(_spool._encode_event(hooked)) == {
        **event.to_dict(),
        "event_type": "my_app_used",
    }


def test_what_the_hook_returned_stays_as_it_left_it() -> None:
    """The program may keep the dicts it returned (to audit them, or to return one again):
    the SDK never writes into them."""
    kept: list[dict[str, Any]] = []

    def audit(wire: dict[str, Any]) -> dict[str, Any]:
        kept.append(wire)
        return wire

    with capture_events(before_send=audit) as capture:
        report_session()
        sent = capture.dicts()
    assert json.loads(json.dumps(kept)) == sent
    assert [type(wire["event_params"].get("app_server_client")) for wire in kept] == [
        dict,
        type(None),
        type(None),
    ]


def test_one_dict_returned_for_two_events_is_sent_twice() -> None:
    [event] = [e for e in WORKLOAD_EVENTS if isinstance(e, PluginUsedEvent)]
    first: list[dict[str, Any]] = []

    def same_every_time(wire: dict[str, Any]) -> dict[str, Any]:
        if not first:
            first.append(wire)
        return first[0]

    hooks = EventHooks(
        before_send=same_every_time, include=None, exclude=frozenset(), errors=InternalErrors()
    )
    one, two = hooks.apply([event, event])
    timestamp = 1_795_580_000_123_456_789
    assert event_line(one, timestamp) == event_line(two, timestamp) == event_line(event, timestamp)
    assert encode_events([one, two]) == encode_events([event, event])
    assert type(first[0]["event_params"]["connector_ids"]) is list


def test_a_shared_sub_object_with_its_keys_reordered_is_sent_in_that_order() -> None:
    [event] = [e for e in WORKLOAD_EVENTS if e.event_type == "codex_turn_event"]

    def reverse_client(wire: dict[str, Any]) -> dict[str, Any]:
        client = wire["event_params"]["app_server_client"]
        wire["event_params"]["app_server_client"] = dict(reversed(client.items()))
        return wire

    hooks = EventHooks(
        before_send=reverse_client, include=None, exclude=frozenset(), errors=InternalErrors()
    )
    [hooked] = hooks.apply([event])
    reversed_keys = [
        "experimental_api_enabled",
        "rpc_transport",
        "client_version",
        "client_name",
        "product_client_id",
    ]
    lines = [
        json.loads(_spool._encode_event(hooked)),
        json.loads(event_line(hooked, 1)),
        json.loads(encode_events([hooked]))["events"][0],
    ]
    for line in lines:
        assert list(line["event_params"]["app_server_client"]) == reversed_keys


# --- whatever the hook changes, and however, is what is sent --------------------------

_TURN = next(e for e in WORKLOAD_EVENTS if isinstance(e, TurnEvent))
_PLUGIN = next(e for e in WORKLOAD_EVENTS if isinstance(e, PluginUsedEvent))
_TWO_CONNECTORS = dataclasses.replace(_PLUGIN, connector_ids=("connector_a", "connector_b"))


def _pop_and_put_back(mapping: dict[str, Any], key: str) -> None:
    mapping[key] = mapping.pop(key)  # the same value, now the last key


def _list_of(wire: dict[str, Any]) -> list[str]:
    connectors: list[str] = wire["event_params"]["connector_ids"]
    return connectors


# Each changes the wire dict the hook gets, through one of the ways a program changes a
# dict or a list. Each is also applied to a plain copy of ``to_dict()``: what the SDK
# sends must be exactly that, keys in order.
CHANGES: dict[str, tuple[AnalyticsEvent, Callable[[dict[str, Any]], object]]] = {
    "params[key] = value": (_TURN, lambda w: w["event_params"].__setitem__("model", "x")),
    "params[key] = the same value": (
        _TURN,
        lambda w: w["event_params"].__setitem__("model", w["event_params"]["model"]),
    ),
    "params: pop a key, put it back": (
        _TURN,
        lambda w: _pop_and_put_back(w["event_params"], "model"),
    ),
    "del params[key]": (_TURN, lambda w: w["event_params"].__delitem__("model")),
    "params.pop(key)": (_TURN, lambda w: w["event_params"].pop("model")),
    "params.popitem()": (_TURN, lambda w: w["event_params"].popitem()),
    "params.setdefault(new key)": (_TURN, lambda w: w["event_params"].setdefault("team", "blue")),
    "params.update(...)": (_TURN, lambda w: w["event_params"].update(model="x")),
    "params |= ...": (_TURN, lambda w: w["event_params"].__ior__({"model": "x"})),
    "params.clear()": (_TURN, lambda w: w["event_params"].clear()),
    "client[key] = value": (
        _TURN,
        lambda w: w["event_params"]["app_server_client"].__setitem__("client_name", "x"),
    ),
    "client: pop a key, put it back": (
        _TURN,
        lambda w: _pop_and_put_back(w["event_params"]["app_server_client"], "client_name"),
    ),
    "client: True to 1": (
        _TURN,
        lambda w: w["event_params"]["app_server_client"].update(experimental_api_enabled=0),
    ),
    "del runtime[key]": (_TURN, lambda w: w["event_params"]["runtime"].__delitem__("runtime_arch")),
    "event_type renamed": (_TURN, lambda w: w.__setitem__("event_type", "renamed")),
    "event_type: pop it, put it back": (_TURN, lambda w: _pop_and_put_back(w, "event_type")),
    "a top-level key added": (_TURN, lambda w: w.update(team="blue")),
    "a skill's top-level key removed": (
        next(e for e in WORKLOAD_EVENTS if e.event_type == "skill_invocation"),
        lambda w: w.pop("skill_id"),
    ),
    "list.append": (_PLUGIN, lambda w: _list_of(w).append("x")),
    "list.extend": (_PLUGIN, lambda w: _list_of(w).extend(["x"])),
    "list +=": (_PLUGIN, lambda w: _list_of(w).__iadd__(["x"])),
    "list *=": (_PLUGIN, lambda w: _list_of(w).__imul__(2)),
    "list.insert": (_PLUGIN, lambda w: _list_of(w).insert(0, "x")),
    "list.pop": (_PLUGIN, lambda w: _list_of(w).pop()),
    "list.remove": (_PLUGIN, lambda w: _list_of(w).remove("connector_figma")),
    "list.clear": (_PLUGIN, lambda w: _list_of(w).clear()),
    "list[0] = value": (_PLUGIN, lambda w: _list_of(w).__setitem__(0, "x")),
    "del list[0]": (_PLUGIN, lambda w: _list_of(w).__delitem__(0)),
    "list.sort": (_TWO_CONNECTORS, lambda w: _list_of(w).sort(reverse=True)),
    "list.reverse": (_TWO_CONNECTORS, lambda w: _list_of(w).reverse()),
}


@pytest.mark.parametrize("change", CHANGES)
def test_every_way_of_changing_the_hooks_dict_is_sent_as_changed(change: str) -> None:
    event, apply_change = CHANGES[change]
    changed = copy.deepcopy(event.to_dict())
    apply_change(changed)
    # At the top level, every sink lays a wire object out the same way: event_type first,
    # event_params last (see the README's "Shape what is sent").
    expected = {
        "event_type": changed["event_type"],
        **{
            key: value
            for key, value in changed.items()
            if key not in ("event_type", "event_params")
        },
        "event_params": changed["event_params"],
    }

    def hook(wire: dict[str, Any]) -> dict[str, Any]:
        apply_change(wire)
        return wire

    hooks = EventHooks(before_send=hook, include=None, exclude=frozenset(), errors=InternalErrors())
    [hooked] = hooks.apply([event])
    timestamp = 1_795_580_000_123_456_789
    as_sent = [
        json.loads(_spool._encode_event(hooked)),
        {k: v for k, v in json.loads(event_line(hooked, timestamp)).items() if k != "timestamp"},
        json.loads(encode_events([hooked]))["events"][0],
    ]
    for sent in as_sent:  # equal, and in the same order throughout
        assert json.dumps(sent) == json.dumps(expected)
    # Every change but two shows in what is sent.
    same = {"params[key] = the same value", "event_type: pop it, put it back"}
    assert (json.dumps(expected) == json.dumps(event.to_dict())) == (change in same)
    assert hooks.failed.value == 0


def test_the_hook_gets_plain_dicts_and_lists() -> None:
    """Exactly ``dict`` and ``list``, nested ones included: hooks written with
    ``type(value) is dict`` (a recursive scrubber, say) and serializers that accept only
    the exact types (``yaml.safe_dump``, ``marshal``) see what they expect."""
    got: list[dict[str, Any]] = []

    def keep(wire: dict[str, Any]) -> dict[str, Any]:
        got.append(wire)
        return wire

    failed = dataclasses.replace(
        _TURN, status="failed", turn_error={"httpConnectionFailed": {"httpStatusCode": 502}}
    )
    hooks = EventHooks(before_send=keep, include=None, exclude=frozenset(), errors=InternalErrors())
    hooks.apply([_TURN, failed, _PLUGIN])

    def types(value: object) -> set[type]:
        if isinstance(value, dict):
            return {type(value)}.union(*(types(item) for item in value.values()))
        if isinstance(value, list):
            return {type(value)}.union(*(types(item) for item in value))
        return set()

    turn, failed_turn, plugin = got
    assert types(turn) == types(failed_turn) == {dict}
    assert types(plugin) == {dict, list}
    for wire in got:
        assert marshal.loads(marshal.dumps(wire)) == wire


def _scrub(value: Any) -> Any:
    if type(value) is dict:
        return {k: "<redacted>" if k == "model" else _scrub(v) for k, v in value.items()}
    if type(value) is list:
        return [_scrub(item) for item in value]
    return value


def test_a_scrubber_that_checks_exact_types_redacts() -> None:
    hooks = EventHooks(
        before_send=_scrub, include=None, exclude=frozenset(), errors=InternalErrors()
    )
    [hooked] = hooks.apply([_TURN])
    assert json.loads(_spool._encode_event(hooked))["event_params"]["model"] == "<redacted>"


def test_a_dict_changed_after_the_hook_returned_does_not_change_what_is_sent() -> None:
    got: list[dict[str, Any]] = []

    def keep(wire: dict[str, Any]) -> dict[str, Any]:
        got.append(wire)
        return wire

    hooks = EventHooks(before_send=keep, include=None, exclude=frozenset(), errors=InternalErrors())
    [hooked] = hooks.apply([_TURN])
    got[0]["event_params"]["model"] = "changed later"
    got[0]["event_params"]["app_server_client"]["client_name"] = "changed later"
    assert hooked.to_dict()["event_params"]["model"] == "gpt-5.1-codex"
    assert hooked.to_dict()["event_params"]["app_server_client"]["client_name"] == "codex_vscode"


def test_a_turn_error_changed_in_place_is_sent_as_changed() -> None:
    failed = dataclasses.replace(
        _TURN, status="failed", turn_error={"httpConnectionFailed": {"httpStatusCode": 502}}
    )

    def redact_status(wire: dict[str, Any]) -> dict[str, Any]:
        wire["event_params"]["turn_error"]["httpConnectionFailed"]["httpStatusCode"] = 0
        return wire

    hooks = EventHooks(
        before_send=redact_status, include=None, exclude=frozenset(), errors=InternalErrors()
    )
    [hooked] = hooks.apply([failed])
    assert hooked.to_dict()["event_params"]["turn_error"] == {
        "httpConnectionFailed": {"httpStatusCode": 0}
    }
    assert failed.turn_error == {"httpConnectionFailed": {"httpStatusCode": 502}}
    assert json.loads(_spool._encode_event(hooked))["event_params"]["turn_error"] == {
        "httpConnectionFailed": {"httpStatusCode": 0}
    }
