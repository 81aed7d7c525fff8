"""Delivery rules shared by the network sinks: retry, back off, split, give up, count.

A transport makes one attempt and classifies its outcome as an :class:`Attempt`;
:func:`deliver` decides what happens next. Transient failures (connection errors,
timeouts, HTTP 429/502/503/504, gRPC UNAVAILABLE/RESOURCE_EXHAUSTED) are retried with
capped, jittered exponential backoff that honours ``Retry-After`` and gRPC ``RetryInfo``;
a batch refused as too large is split in halves; anything else is permanent. Every item
ends counted as exported or dropped with a reason, and no retry outlives the deadline.
"""

from __future__ import annotations

import enum
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

__all__ = [
    "Attempt",
    "Outcome",
    "RetryPolicy",
    "Settlement",
    "StopSignal",
    "deliver",
    "parse_retry_after",
]

T = TypeVar("T")


class Outcome(enum.Enum):
    """What one attempt tells the delivery loop to do next."""

    OK = "ok"
    RETRY = "retry"
    TOO_LARGE = "too_large"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Attempt:
    """The classified result of sending one batch once.

    ``reason`` names the failure as counted when items are dropped (``http_503``,
    ``unreachable``, ``grpc_invalid_argument``, ...). ``retry_after`` is the delay the
    server asked for, in seconds. ``rejected`` counts items the server accepted the
    request for but refused (OTLP partial success).
    """

    outcome: Outcome
    reason: str = ""
    retry_after: float | None = None
    rejected: int = 0

    @classmethod
    def ok(cls, rejected: int = 0) -> Attempt:
        """The batch was accepted (``rejected`` of its items were refused)."""
        return cls(Outcome.OK, rejected=rejected)

    @classmethod
    def retry(cls, reason: str, retry_after: float | None = None) -> Attempt:
        """A transient failure: try again later."""
        return cls(Outcome.RETRY, reason, retry_after)

    @classmethod
    def too_large(cls, reason: str) -> Attempt:
        """The server refused the batch as too large: split it."""
        return cls(Outcome.TOO_LARGE, reason)

    @classmethod
    def fail(cls, reason: str) -> Attempt:
        """A permanent failure: do not try again."""
        return cls(Outcome.FAIL, reason)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long and how often to retry one batch.

    The n-th retry waits ``min(max_backoff, initial_backoff * 2**n)`` seconds, scaled by a
    random factor in ``[1 - jitter, 1 + jitter]``, unless the server named a delay. A
    batch is given up after ``max_elapsed`` seconds of trying.
    """

    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    jitter: float = 0.2
    max_elapsed: float = 60.0

    def backoff(self, retry: int) -> float:
        """The delay before retry number ``retry`` (0-based)."""
        base = min(self.max_backoff, self.initial_backoff * (2.0 ** min(retry, 62)))
        return base * random.uniform(1.0 - self.jitter, 1.0 + self.jitter)


class StopSignal:
    """Shared by a sink's worker and its ``shutdown``: the deadline no retry may pass.

    Until ``stop`` is called the deadline is infinite. A retry sleeping in
    ``sleep_until`` wakes when ``stop`` brings the deadline before its resume time.
    """

    __slots__ = ("_condition", "_deadline")

    def __init__(self) -> None:
        self._deadline = math.inf
        self._condition = threading.Condition(threading.Lock())

    @property
    def deadline(self) -> float:
        """The ``time.monotonic()`` instant by which all delivery must end."""
        return self._deadline

    @property
    def stopping(self) -> bool:
        """True once ``stop`` was called."""
        return self._deadline != math.inf

    def stop(self, deadline: float) -> None:
        """Bring the deadline forward to ``deadline`` and wake the retries it cuts short."""
        with self._condition:
            self._deadline = min(self._deadline, deadline)
            self._condition.notify_all()

    def wait_for(self, done: Callable[[], bool]) -> bool:
        """Wait until ``done()`` (checked whenever :meth:`wake` is called) or the deadline;
        True when done."""
        with self._condition:
            while not done():
                left = self._deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(None if left == math.inf else left)
            return True

    def wake(self) -> None:
        """Make :meth:`wait_for` check its condition again."""
        with self._condition:
            self._condition.notify_all()

    def sleep_until(self, resume: float) -> bool:
        """Sleep until ``resume`` (monotonic); False if the deadline now falls before it."""
        with self._condition:
            while True:
                if resume >= self._deadline:
                    return False
                left = resume - time.monotonic()
                if left <= 0:
                    return True
                self._condition.wait(left)


class Settlement(Protocol):
    """Where :func:`deliver` reports what became of the items."""

    def exported(self, count: int) -> None:
        """``count`` items were delivered."""
        ...

    def dropped(self, count: int, reason: str) -> None:
        """``count`` items were given up on, for ``reason``."""
        ...


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from an HTTP ``Retry-After`` value (delay-seconds or HTTP-date).

    Returns None for a missing or malformed value, never a negative delay.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def deliver(
    items: Sequence[T],
    send: Callable[[Sequence[T], float], Attempt],
    settlement: Settlement,
    *,
    policy: RetryPolicy,
    request_timeout: float,
    stop: StopSignal,
    started: float | None = None,
) -> None:
    """Deliver ``items`` through ``send(items, timeout)``, retrying and splitting as needed.

    Each attempt's timeout is ``request_timeout`` capped by what is left before the
    deadline: ``started + policy.max_elapsed`` or the stop deadline, whichever comes first.
    Items never attempted because the deadline passed are dropped as ``shutdown``;
    items whose last attempt failed are dropped with that attempt's reason.
    """
    if not items:
        return
    start = time.monotonic() if started is None else started
    batch_deadline = start + policy.max_elapsed
    retry = 0
    last_reason = ""
    while True:
        deadline = min(batch_deadline, stop.deadline)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            settlement.dropped(
                len(items), last_reason or ("shutdown" if stop.stopping else "timeout")
            )
            return
        attempt = send(items, min(request_timeout, remaining))
        if attempt.outcome is Outcome.OK:
            rejected = min(max(attempt.rejected, 0), len(items))
            settlement.exported(len(items) - rejected)
            settlement.dropped(rejected, "rejected")
            return
        if attempt.outcome is Outcome.FAIL:
            settlement.dropped(len(items), attempt.reason)
            return
        if attempt.outcome is Outcome.TOO_LARGE:
            if len(items) == 1:
                settlement.dropped(1, attempt.reason)
                return
            middle = len(items) // 2
            for half in (items[:middle], items[middle:]):
                deliver(
                    half,
                    send,
                    settlement,
                    policy=policy,
                    request_timeout=request_timeout,
                    stop=stop,
                    started=start,
                )
            return
        last_reason = attempt.reason
        delay = policy.backoff(retry) if attempt.retry_after is None else attempt.retry_after
        retry += 1
        resume = time.monotonic() + delay
        # Giving up at once when the server asks for more time than is left, rather than
        # sleeping into the deadline, keeps exit prompt.
        if resume >= batch_deadline or not stop.sleep_until(resume):
            settlement.dropped(len(items), last_reason)
            return
