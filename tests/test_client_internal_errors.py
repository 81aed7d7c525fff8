"""The internal-error policy: once per kind, rate limited, counted, raised only in strict mode."""

from __future__ import annotations

import logging
import platform
import threading
from collections.abc import Iterator, Sequence

import pytest

from codex_telemetry import _runtime
from codex_telemetry._client import Telemetry
from codex_telemetry._export._base import DeliveryCounters, EventSink
from codex_telemetry._internal_errors import (
    PACKAGE_ERRORS,
    InternalErrors,
    RateLimitedLog,
    current,
    handle_internal_errors,
    log_internal_error,
)
from codex_telemetry._settings import load_settings
from codex_telemetry.events import AnalyticsEvent
from codex_telemetry.testing import InMemorySink
from tests.test_client import hook_run, initialize, thread_started

_LOGGER = "tests.internal_errors"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Captures the test logger and the codex_telemetry loggers at every level."""
    caplog.set_level(logging.DEBUG, logger=_LOGGER)
    caplog.set_level(logging.DEBUG, logger="codex_telemetry")
    yield caplog


def _policy(clock: _Clock, *, strict: bool = False) -> InternalErrors:
    log = RateLimitedLog(logging.getLogger(_LOGGER), interval=60.0, clock=clock)
    return InternalErrors(strict=strict, log=log)


def _fail(errors: InternalErrors, kind: str, message: str = "boom") -> None:
    try:
        raise RuntimeError(message)
    except RuntimeError:
        errors.report(kind, f"testing {kind}")


# --- once per kind, counted ----------------------------------------------------------------


def test_each_kind_is_logged_once_and_every_fault_is_counted(
    clock: _Clock, logged: pytest.LogCaptureFixture
) -> None:
    errors = _policy(clock)
    for _ in range(3):
        _fail(errors, "sink")
    _fail(errors, "reducer")
    _fail(errors, "sink")
    assert errors.count == 5
    assert [(r.levelno, r.getMessage()) for r in logged.records] == [
        (
            logging.ERROR,
            "codex_telemetry: internal error while testing sink; your code is unaffected",
        ),
        (
            logging.ERROR,
            "codex_telemetry: internal error while testing reducer; your code is unaffected",
        ),
    ]
    # The fault's traceback goes with the line.
    assert logged.records[0].exc_info is not None
    assert str(logged.records[0].exc_info[1]) == "boom"


def test_a_kind_is_logged_again_after_the_interval_with_the_repeats_it_suppressed(
    clock: _Clock, logged: pytest.LogCaptureFixture
) -> None:
    errors = _policy(clock)
    _fail(errors, "sink")  # t = 0: logged
    clock.now += 10.0
    _fail(errors, "sink")  # suppressed
    clock.now += 49.9
    _fail(errors, "sink")  # t = 59.9: still suppressed
    clock.now += 0.1
    _fail(errors, "sink")  # t = 60: logged, saying 2 were suppressed
    clock.now += 1.0
    _fail(errors, "sink")  # suppressed again
    assert errors.count == 5
    assert [r.getMessage() for r in logged.records] == [
        "codex_telemetry: internal error while testing sink; your code is unaffected",
        "codex_telemetry: internal error while testing sink; your code is unaffected "
        "(2 similar reports suppressed)",
    ]
    assert errors._log.suppressed("sink") == 1


def test_notices_share_the_rate_limit_but_are_not_faults(
    clock: _Clock, logged: pytest.LogCaptureFixture
) -> None:
    errors = _policy(clock, strict=True)
    errors.notice("invalid", "codex_telemetry: %s was dropped", "a str")
    errors.notice("invalid", "codex_telemetry: %s was dropped", "an int")
    assert errors.count == 0
    assert [(r.levelno, r.getMessage()) for r in logged.records] == [
        (logging.WARNING, "codex_telemetry: a str was dropped")
    ]


# --- strict mode -----------------------------------------------------------------------------


def test_strict_mode_re_raises_the_fault_after_counting_and_logging_it(
    clock: _Clock, logged: pytest.LogCaptureFixture
) -> None:
    errors = _policy(clock, strict=True)
    with pytest.raises(RuntimeError, match="boom"):
        _fail(errors, "sink")
    with pytest.raises(RuntimeError, match="again"), errors.handling("sink", "testing sink"):
        raise RuntimeError("again")
    assert errors.count == 2
    assert len(logged.records) == 1


def test_outside_strict_mode_nothing_is_raised(clock: _Clock) -> None:
    errors = _policy(clock)
    _fail(errors, "sink")
    with errors.handling("sink", "testing sink"):
        raise RuntimeError("swallowed")
    assert errors.count == 2


def test_strict_mode_never_raises_on_code_the_sdk_runs_in_its_own_charge(clock: _Clock) -> None:
    errors = _policy(clock, strict=True)
    with errors.in_charge():
        _fail(errors, "worker")
        with handle_internal_errors("worker", "testing the worker"):
            raise RuntimeError("on the worker")
    assert errors.count == 2
    with pytest.raises(RuntimeError):  # out of its charge, strict again
        _fail(errors, "worker")


def test_faults_of_code_that_does_not_know_its_client_go_to_the_policy_in_charge(
    clock: _Clock,
) -> None:
    errors = _policy(clock, strict=True)
    before = PACKAGE_ERRORS.count
    with errors.in_charge():
        try:
            raise ValueError("in a reducer")
        except ValueError:
            log_internal_error("repo_lookup", "looking up a repository")
    assert errors.count == 1
    # Outside any client's charge: the package's policy, which is never strict.
    try:
        raise ValueError("alone")
    except ValueError:
        log_internal_error("repo_lookup", "looking up a repository")
    assert PACKAGE_ERRORS.count == before + 1
    assert errors.count == 1


# --- logging that fails or comes back ------------------------------------------------------


class _RaisingHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        raise OSError("the log disk is full")


class _ReenteringHandler(logging.Handler):
    def __init__(self, errors: InternalErrors) -> None:
        super().__init__()
        self.errors = errors
        self.seen = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.seen += 1
        _fail(self.errors, f"from the handler {self.seen}")


@pytest.mark.parametrize("handler_type", ["raising", "reentering"])
def test_a_logging_handler_that_raises_or_comes_back_is_survived(
    clock: _Clock, handler_type: str
) -> None:
    logger = logging.getLogger(f"{_LOGGER}.{handler_type}")
    errors = InternalErrors(log=RateLimitedLog(logger, clock=clock))
    handler: logging.Handler = (
        _RaisingHandler() if handler_type == "raising" else _ReenteringHandler(errors)
    )
    logger.addHandler(handler)
    logger.propagate = False
    try:
        _fail(errors, "sink")
    finally:
        logger.removeHandler(handler)
    if isinstance(handler, _ReenteringHandler):
        assert handler.seen == 1  # its own report was counted, not logged again
        assert errors.count == 2
    else:
        assert errors.count == 1


# --- through a client ------------------------------------------------------------------------


class _FlushRaisingSink(InMemorySink):
    def force_flush(self, timeout: float) -> bool:
        raise OSError("flush failed")


@pytest.mark.parametrize("strict", [True, False])
def test_a_fault_on_the_hosts_call_is_raised_only_in_strict_mode(strict: bool) -> None:
    client = Telemetry(load_settings(strict=strict), sink=_FlushRaisingSink())
    try:
        client.track_fact(hook_run())
        if strict:
            with pytest.raises(OSError, match="flush failed"):
                client.flush(timeout=10)
        else:
            assert client.flush(timeout=10) is False
        assert client.stats().internal_errors == 1
    finally:
        client.shutdown(timeout=5)


class _ExportRaisingSink(InMemorySink):
    def export(self, events: Sequence[AnalyticsEvent], timestamp_ns: int) -> None:
        raise OSError("disk full")


def test_a_strict_client_counts_a_fault_on_its_worker_and_keeps_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Telemetry(load_settings(strict=True), sink=_ExportRaisingSink())
    try:
        with caplog.at_level(logging.ERROR, logger="codex_telemetry"):
            for index in range(3):
                client.track_fact(hook_run(str(index)))
            assert client.flush(timeout=10) is False
        stats = client.stats()
        assert stats.internal_errors == 3
        assert stats.events_dropped == {"sink_error": 3}
        assert [r.getMessage() for r in caplog.records] == [
            "codex_telemetry: internal error while handing events to the sink; "
            "your code is unaffected"
        ]
    finally:
        client.shutdown(timeout=5)


def test_a_failing_runtime_probe_is_counted_on_the_client_whose_worker_met_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> str:
        raise OSError("no /etc")

    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(_runtime, "_linux_version_id", broken)
    _runtime.current_runtime.cache_clear()
    sink = InMemorySink()
    settings = load_settings(strict=True, general_analytics=True, runtime_version="7.7.7")
    client = Telemetry(settings, sink=sink)
    try:
        with caplog.at_level(logging.ERROR, logger="codex_telemetry"):
            client.track_fact(initialize())  # without a runtime: the process's is probed
            client.track_fact(thread_started())
            assert client.flush(timeout=10) is True
        assert client.stats().internal_errors == 1
        [event] = sink.dicts()
        assert event["event_params"]["runtime"]["runtime_os_version"] == "Unknown"
        assert [r.getMessage() for r in caplog.records] == [
            "codex_telemetry: internal error while reading the OS version "
            "(reported as Unknown); your code is unaffected"
        ]
    finally:
        client.shutdown(timeout=5)
        _runtime.current_runtime.cache_clear()


class _ThreadedSink(InMemorySink):
    """A sink with a thread of its own, as the batching sinks have."""

    def __init__(self, delivery: DeliveryCounters) -> None:
        super().__init__()
        self.delivery = delivery
        self.errors = current()  # the policy of the client making it

    def fail_on_own_thread(self) -> None:
        def run() -> None:
            with self.errors.in_charge(), handle_internal_errors("batch", "sending a batch"):
                raise OSError("connection reset")

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()


def test_a_sink_made_by_a_client_reports_the_faults_of_its_own_threads_to_it() -> None:
    made: list[_ThreadedSink] = []

    def factory(delivery: DeliveryCounters) -> EventSink:
        made.append(_ThreadedSink(delivery))
        return made[-1]

    client = Telemetry(load_settings(strict=True), sink_factory=factory)
    try:
        [sink] = made
        assert sink.errors is not PACKAGE_ERRORS
        sink.fail_on_own_thread()  # strict, yet not raised: no host call to raise into
        assert client.stats().internal_errors == 1
    finally:
        client.shutdown(timeout=5)
