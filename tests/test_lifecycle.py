"""Lifecycle: flush and shutdown timeouts, the exit hook, fork, and a disabled SDK."""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

import codex_telemetry
from codex_telemetry import _client, _gate
from codex_telemetry._client import Telemetry
from codex_telemetry._export._base import DeliveryCounters, EventSink
from codex_telemetry._settings import load_settings
from codex_telemetry.events import AnalyticsEvent
from codex_telemetry.testing import InMemorySink
from tests.test_client import BlockingSink, gated_facts, hook_run, ungated_facts

# The spec promises exit within shutdown_timeout "plus a small margin"; this bound is
# generous so that a loaded machine does not make the test flaky.
_MARGIN = 1.5


# --- flush and shutdown --------------------------------------------------------------------


def test_flush_is_true_once_everything_queued_was_exported() -> None:
    sink = InMemorySink()
    client = Telemetry(load_settings(), sink=sink)
    try:
        for index in range(100):
            client.track_fact(hook_run(str(index)))
        assert client.flush(timeout=10) is True
        assert len(sink.events) == 100
        assert client.stats().events_exported == 100
    finally:
        client.shutdown()


def test_flush_gives_up_after_its_timeout() -> None:
    sink = BlockingSink()
    client = Telemetry(load_settings(), sink=sink)
    try:
        client.track_fact(hook_run())
        assert sink.entered.wait(10)
        started = time.monotonic()
        assert client.flush(timeout=0.2) is False
        assert time.monotonic() - started < 0.2 + _MARGIN
    finally:
        sink.release.set()
        client.shutdown(timeout=5)


def test_shutdown_returns_within_its_timeout_when_export_blocks_forever() -> None:
    sink = BlockingSink()
    client = Telemetry(load_settings(), sink=sink)
    try:
        client.track_fact(hook_run())
        assert sink.entered.wait(10)
        client.track_fact(hook_run())
        started = time.monotonic()
        assert client.shutdown(timeout=0.3) is False
        assert time.monotonic() - started < 0.3 + _MARGIN
        # Idempotent: the same answer, at once.
        started = time.monotonic()
        assert client.shutdown(timeout=30) is False
        assert time.monotonic() - started < _MARGIN
    finally:
        sink.release.set()


class _HangingShutdownSink(InMemorySink):
    def __init__(self) -> None:
        super().__init__()
        self.forever = threading.Event()

    def shutdown(self, timeout: float) -> bool:
        self.forever.wait()
        return True


def test_shutdown_returns_within_its_timeout_when_the_sink_ignores_it() -> None:
    sink = _HangingShutdownSink()
    client = Telemetry(load_settings(), sink=sink)
    client.track_fact(hook_run())
    started = time.monotonic()
    try:
        assert client.shutdown(timeout=0.3) is False
        assert time.monotonic() - started < 0.3 + _MARGIN
        assert len(sink.events) == 1  # drained before the sink was asked to stop
    finally:
        sink.forever.set()


def test_shutdown_delivers_everything_queued_before_it() -> None:
    sink = InMemorySink()
    client = Telemetry(load_settings(), sink=sink)
    for index in range(50):
        client.track_fact(hook_run(str(index)))
    assert client.shutdown(timeout=10) is True
    assert len(sink.events) == 50
    assert client.flush() is True


def test_facts_after_shutdown_are_counted_not_raised() -> None:
    client = Telemetry(load_settings(strict=True), sink=InMemorySink())
    client.track_fact(hook_run())
    client.shutdown(timeout=10)
    for fact in [*gated_facts(), *ungated_facts()]:
        client.track_fact(fact)
    stats = client.stats()
    assert stats.facts_dropped["after_shutdown"] == 15
    assert stats.facts_accepted == 1


# --- the exit hook -------------------------------------------------------------------------


def test_exit_hook_is_registered_with_the_worker_and_removed_by_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registered: list[Callable[..., Any]] = []
    unregistered: list[Callable[..., Any]] = []
    monkeypatch.setattr(atexit, "register", registered.append)
    monkeypatch.setattr(atexit, "unregister", unregistered.append)
    client = Telemetry(load_settings(), sink=InMemorySink())
    assert registered == []
    client.track_fact(hook_run())
    assert len(registered) == 1
    client.shutdown(timeout=10)
    assert registered[0] in unregistered


_EXIT_SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
from codex_telemetry._client import Telemetry
from codex_telemetry._settings import load_settings
from tests.test_client import BlockingSink, hook_run

sink = BlockingSink()  # a collector that hangs: export never returns
client = Telemetry(load_settings(shutdown_timeout=0.5), sink=sink)
for index in range(3):
    client.track_fact(hook_run(str(index)))
assert sink.entered.wait(10)
print("ready", flush=True)
"""


def test_a_process_with_a_hung_sink_exits_within_shutdown_timeout_and_says_so() -> None:
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_EXIT_SCRIPT)],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    started = time.monotonic()
    _, stderr = process.communicate(timeout=30)
    elapsed = time.monotonic() - started
    assert process.returncode == 0, stderr
    assert elapsed < 0.5 + _MARGIN
    lines = [line for line in stderr.splitlines() if "not delivered" in line]
    assert lines == [
        "codex_telemetry._telemetry codex_telemetry: 1 analytics events were not delivered "
        "before exit, and 2 facts were not processed (shutdown_timeout 0.5 s reached); "
        "your program is unaffected"
    ]


# --- a disabled SDK starts nothing ---------------------------------------------------------


def _open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
@pytest.mark.parametrize(
    ("environment", "overrides"),
    [
        ({}, {"enabled": False}),
        ({"CODEX_TELEMETRY_ENABLED": "0"}, {}),
        ({"DO_NOT_TRACK": "1"}, {"enabled": True}),
        ({"OTEL_SDK_DISABLED": "true"}, {}),
        ({}, {"exporter": "none"}),
    ],
)
def test_a_disabled_sdk_starts_no_thread_opens_nothing_registers_no_exit_hook(
    environment: dict[str, str], overrides: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    registered: list[object] = []
    monkeypatch.setattr(atexit, "register", lambda *args, **kwargs: registered.append(args))

    def no_sink(*args: object) -> EventSink:
        raise AssertionError("a disabled SDK must not build a sink")

    monkeypatch.setattr("codex_telemetry._export._factory.create_sink", no_sink)
    previous = _client._swap_default(None)
    threads = threading.active_count()
    descriptors = _open_descriptors()
    try:
        client = codex_telemetry.init(**overrides)
        for fact in [*gated_facts(), *ungated_facts()]:
            codex_telemetry.track_fact(fact)
        assert client.flush() is True
        assert threading.active_count() == threads
        assert _open_descriptors() == descriptors
        assert registered == []
        assert client.enabled is False
        assert client.stats().facts_dropped["disabled"] == 15
        assert client.stats().facts_accepted == 0
        assert codex_telemetry.shutdown() is True
    finally:
        _client._swap_default(previous)


def test_the_disabled_check_above_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same measurements on an enabled SDK see its worker and its exit hook."""
    registered: list[object] = []
    monkeypatch.setattr(atexit, "register", lambda *args, **kwargs: registered.append(args))
    threads = threading.active_count()
    client = Telemetry(load_settings(), sink=InMemorySink())
    try:
        client.track_fact(hook_run())
        assert threading.active_count() == threads + 1
        assert len(registered) == 1
    finally:
        client.shutdown(timeout=10)


# --- fork ----------------------------------------------------------------------------------


class _JsonLinesSink:
    """Writes each event at once to ``<directory>/<pid>.jsonl``; in the parent, waits
    for ``gate`` first, so that facts are still queued when the test forks."""

    def __init__(
        self, directory: Path, delivery: DeliveryCounters, gate: threading.Event, parent: int
    ) -> None:
        self._path = directory / f"{os.getpid()}.jsonl"
        self.delivery = delivery
        self._gate = gate
        self._parent = parent

    def export(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> None:
        if os.getpid() == self._parent:
            self._gate.wait()
        with self._path.open("a") as file:
            for event in events:
                file.write(json.dumps(event.to_dict()) + "\n")
        self.delivery.exported.add(len(events))

    def force_flush(self, timeout: float) -> bool:
        return True

    def shutdown(self, timeout: float) -> bool:
        return True


def _turn_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["event_params"]["turn_id"] for line in path.read_text().splitlines()]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_client_and_resends_nothing(tmp_path: Path) -> None:
    gate = threading.Event()
    parent = os.getpid()

    def factory(delivery: DeliveryCounters) -> EventSink:
        return _JsonLinesSink(tmp_path, delivery, gate, parent)

    client = Telemetry(load_settings(), sink_factory=factory)
    try:
        client.track_fact(hook_run("parent-0"))  # the parent's worker blocks on it
        client.track_fact(hook_run("parent-1"))  # queued in the parent at fork time
        client.track_fact(hook_run("parent-2"))
        client.track_fact(ungated_facts()[2])  # AppUsed for turn-1/gmail, before the fork
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                stats = client.stats()
                client.track_fact(hook_run("child-0"))
                client.track_fact(ungated_facts()[2])  # fresh dedupe keys in the child
                ok = client.flush(timeout=10) and client.shutdown(timeout=10)
                after = client.stats()
                code = 0 if ok and stats.facts_accepted == 0 and after.facts_accepted == 2 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        gate.set()
        assert client.flush(timeout=10)
    finally:
        gate.set()
        client.shutdown(timeout=10)

    assert _turn_ids(tmp_path / f"{parent}.jsonl") == ["parent-0", "parent-1", "parent-2", "turn-1"]
    assert _turn_ids(tmp_path / f"{child}.jsonl") == ["child-0", "turn-1"]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [f"{parent}.jsonl", f"{child}.jsonl"]
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_with_the_file_exporter_sends_each_event_once(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    client = Telemetry(load_settings(exporter="file", file__path=path))
    try:
        client.track_fact(hook_run("before-fork"))
        assert client.flush(timeout=10)
        client.track_fact(hook_run("parent-after-fork"))
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                client.track_fact(hook_run("child"))
                code = 0 if client.shutdown(timeout=10) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert client.flush(timeout=10)
    finally:
        client.shutdown(timeout=10)
    assert sorted(_turn_ids(path)) == ["before-fork", "child", "parent-after-fork"]


def test_a_second_shutdown_waits_for_the_first_and_shares_its_result() -> None:
    sink = BlockingSink()
    client = Telemetry(load_settings(), sink=sink)
    try:
        client.track_fact(hook_run())
        assert sink.entered.wait(10)
        results: list[bool] = []
        first = threading.Thread(target=lambda: results.append(client.shutdown(timeout=0.3)))
        first.start()
        while client.enabled and client._routes is not _gate.AFTER_SHUTDOWN_ROUTES:
            time.sleep(0.001)
        started = time.monotonic()
        assert client.flush(timeout=30) is False  # waits for the shutdown, not 30 s
        assert client.shutdown(timeout=30) is False
        assert time.monotonic() - started < 0.3 + _MARGIN
        first.join()
        assert results == [False]
    finally:
        sink.release.set()


@pytest.mark.parametrize("timeout", [float("inf"), 1e300])
def test_an_unbounded_timeout_waits_as_long_as_needed_and_never_raises(timeout: float) -> None:
    sink = InMemorySink()
    client = Telemetry(load_settings(), sink=sink)
    client.track_fact(hook_run())
    assert client.flush(timeout) is True
    assert client.shutdown(timeout) is True
    assert client.shutdown(timeout) is True
    assert len(sink.events) == 1
