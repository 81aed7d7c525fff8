"""flush() and shutdown() say False when an event handed to the sink was lost."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import codex_telemetry
from codex_telemetry import _client
from codex_telemetry._client import Telemetry
from codex_telemetry._settings import load_settings
from codex_telemetry.testing import InMemorySink
from tests.otlp_receiver import HttpReceiver, HttpReply
from tests.test_client import _RaisingSink, hook_run


def test_flush_is_false_when_the_sink_raised_on_an_event_and_true_again_after() -> None:
    sink = _RaisingSink()
    client = Telemetry(load_settings(strict=False), sink=sink)
    try:
        client.track_fact(hook_run())
        assert client.flush(timeout=10) is False
        assert client.stats().events_dropped == {"sink_error": 1}
        # Nothing was lost since: the next flush is clean, as the export sinks' flushes are.
        assert client.flush(timeout=10) is True
    finally:
        assert client.shutdown(timeout=5) is False


def test_shutdown_is_true_when_every_event_reached_the_sink() -> None:
    client = Telemetry(load_settings(strict=False), sink=InMemorySink())
    client.track_fact(hook_run())
    assert client.shutdown(timeout=5) is True


@contextlib.contextmanager
def _default_client_facing_a_hung_collector() -> Iterator[tuple[Telemetry, HttpReceiver]]:
    """``init()``'s client, with one fact tracked, sending to a collector that never
    answers; the previous default client is put back afterwards."""
    previous = _client._swap_default(None)
    try:
        with HttpReceiver(default=HttpReply(hang=True)) as collector:
            telemetry = codex_telemetry.init(
                otlp__endpoint=collector.url(), otlp__timeout=30, strict=False
            )
            telemetry.track_fact(hook_run())
            yield telemetry, collector
    finally:
        _client._swap_default(previous)


def test_aflush_and_ashutdown_keep_the_event_loop_serving_while_a_collector_hangs() -> None:
    with _default_client_facing_a_hung_collector() as (telemetry, collector):

        async def program() -> tuple[bool, bool, int]:
            flushing = asyncio.create_task(telemetry.aflush(timeout=2))
            served = 0
            for _ in range(3):  # other work, while the flush waits on the collector
                await asyncio.sleep(0)
                assert not flushing.done()
                served += 1
            flushed = await flushing
            shutting_down = asyncio.create_task(codex_telemetry.ashutdown(timeout=0.5))
            await asyncio.sleep(0)
            assert not shutting_down.done()
            return flushed, await shutting_down, served

        flushed, shut_down, served = asyncio.run(program())
    assert (flushed, shut_down, served) == (False, False, 3)
    assert collector.attempts >= 1


def test_ashutdown_without_a_client_is_true() -> None:
    previous = _client._swap_default(None)
    try:
        assert asyncio.run(codex_telemetry.ashutdown()) is True
    finally:
        _client._swap_default(previous)


def test_a_cancelled_aflush_does_not_hold_the_programs_exit() -> None:
    """``asyncio.run`` joins the loop's default executor on the way out: a flush running
    there, cancelled by ``wait_for``, kept a program waiting on a dead collector for the
    whole flush timeout. The flush runs in a thread of its own, which exit does not wait
    for."""
    with _default_client_facing_a_hung_collector() as (telemetry, _):

        async def program() -> None:
            try:
                await asyncio.wait_for(telemetry.aflush(timeout=30), 0.2)
            except TimeoutError:
                return
            raise AssertionError("the flush ended against a hanging collector")

        asyncio.run(program())
        # asyncio.run returned while the flush still waits on the collector.
        flushing = [t for t in threading.enumerate() if t.name == "codex-telemetry-aflush"]
        assert [t.is_alive() for t in flushing] == [True]
        assert telemetry.shutdown(timeout=0.5) is False
