"""The deferred network sink: made when its first batch is due, events kept in order."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

import codex_telemetry
from codex_telemetry._export._base import DeliveryCounters, EventSink
from codex_telemetry._export._deferred import DeferredSink
from codex_telemetry._export._otlp import OTLPSink
from codex_telemetry.events import SkillInvocationEvent
from codex_telemetry.facts import SkillInvocation, SkillInvoked, TrackingContext
from codex_telemetry.testing import InMemorySink
from tests.otlp_receiver import HttpReceiver, records_of


def _event(number: int) -> SkillInvocationEvent:
    return SkillInvocationEvent(
        skill_id=f"skill-{number}",
        skill_name="doc",
        product_client_id="codex_cli_rs",
        skill_scope="user",
        repo_url=None,
        thread_id="thread-1",
        invoke_type="explicit",
        model_slug="gpt-5",
    )


class _Maker:
    """Makes one in-memory sink, counting the calls; ``fail`` raises instead."""

    def __init__(self, *, fail: bool = False) -> None:
        self.sink = InMemorySink()
        self.calls = 0
        self.made = threading.Event()
        self._fail = fail

    def __call__(self) -> EventSink:
        self.calls += 1
        self.made.set()
        if self._fail:
            raise RuntimeError("no sink today")
        return self.sink


def _deferred(maker: _Maker, *, batch_size: int = 10, interval: float = 3600.0) -> DeferredSink:
    return DeferredSink(
        maker, DeliveryCounters(), max_queue_size=100, batch_size=batch_size, interval=interval
    )


def test_nothing_is_made_until_events_wait_and_a_flush_asks() -> None:
    maker = _Maker()
    deferred = _deferred(maker)
    assert deferred.force_flush(1.0) is True
    assert maker.calls == 0

    deferred.export([_event(1), _event(2)], 10)
    deferred.export([_event(3)], 20)
    assert deferred.has_room(97)  # what is left of the queue's 100
    assert maker.calls == 0

    assert deferred.force_flush(1.0) is True
    assert maker.calls == 1
    assert maker.sink.events == [_event(1), _event(2), _event(3)]
    assert maker.sink.timestamps_ns == [10, 10, 20]
    deferred.export([_event(4)], 30)  # straight through, once made
    assert maker.sink.events[-1] == _event(4)
    assert deferred.made is maker.sink
    assert deferred.shutdown(1.0) is True
    assert maker.calls == 1


def test_more_events_than_the_queue_holds_make_the_sink_which_answers_for_room() -> None:
    maker = _Maker()
    deferred = _deferred(maker)  # a queue of 100
    assert deferred.capacity == 100
    assert deferred.has_room(100) and maker.calls == 0
    assert deferred.has_room(101)  # the in-memory sink always has room
    assert maker.calls == 1


def test_a_whole_batch_makes_the_sink_at_once() -> None:
    maker = _Maker()
    deferred = _deferred(maker, batch_size=3)
    deferred.export([_event(1), _event(2)], 10)
    assert maker.calls == 0
    deferred.export([_event(3)], 10)
    assert maker.calls == 1
    assert len(maker.sink.events) == 3


def test_the_first_batch_is_due_an_interval_after_the_first_event() -> None:
    maker = _Maker()
    deferred = _deferred(maker, interval=0.01)
    deferred.export([_event(1)], 10)
    assert maker.made.wait(30)
    assert deferred.force_flush(5.0) is True
    assert maker.sink.events == [_event(1)]
    assert maker.calls == 1


def test_shutdown_without_events_makes_nothing() -> None:
    maker = _Maker()
    deferred = _deferred(maker)
    assert deferred.shutdown(1.0) is True
    assert deferred.shutdown(1.0) is False  # later calls do nothing
    deferred.export([_event(1)], 10)
    assert maker.calls == 0
    assert deferred.delivery.dropped.snapshot() == {"shutdown": 1}


def test_a_sink_that_cannot_be_made_is_reported_and_its_events_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    maker = _Maker(fail=True)
    deferred = _deferred(maker)
    deferred.export([_event(1), _event(2)], 10)
    with caplog.at_level(logging.ERROR, logger="codex_telemetry"):
        assert deferred.force_flush(1.0) is False
    assert "internal error while creating the sink" in caplog.text
    deferred.export([_event(3)], 20)
    assert deferred.delivery.dropped.snapshot() == {"internal_error": 3}
    assert deferred.has_room(1000)
    assert maker.calls == 1


def test_with_the_spool_events_a_sink_cannot_take_stay_in_it() -> None:
    acknowledged: list[int] = []
    maker = _Maker(fail=True)
    deferred = _deferred(maker)
    assert deferred.make_durable(acknowledged.append) is True
    deferred.export([_event(1), _event(2)], 10)
    assert deferred.shutdown(1.0) is False
    assert deferred.delivery.kept.value == 2
    assert acknowledged == []  # not settled: the next process sends them


def test_init_defers_the_otlp_sink_and_flush_delivers_through_it(tmp_path: Path) -> None:
    with HttpReceiver() as receiver:
        telemetry = codex_telemetry.init(
            otlp__endpoint=receiver.url(), spool__directory=tmp_path, export_interval=3600
        )
        try:
            sink = telemetry._worker.sink
            assert isinstance(sink, DeferredSink)
            telemetry.track_fact(
                SkillInvoked(
                    tracking=TrackingContext(
                        model_slug="gpt-5", thread_id="thread-1", turn_id="turn-1"
                    ),
                    invocations=(
                        SkillInvocation(
                            skill_name="doc",
                            skill_scope="user",
                            skill_path="/skills/doc/SKILL.md",
                            invocation_type="explicit",
                        ),
                    ),
                )
            )
            assert telemetry.flush(30) is True
            assert isinstance(sink.made, OTLPSink)
            [record] = records_of(receiver.received)
            assert record.event_name == "skill_invocation"
        finally:
            codex_telemetry.shutdown(5)
