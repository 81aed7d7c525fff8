"""One policy for the SDK's own faults: say it once, count it, raise only in strict mode.

A fault inside the SDK (a bug, a sink that raises, a thread that cannot be started) must
never reach the host program. Every place that catches one hands it to an
:class:`InternalErrors`, which

- logs it with "your code is unaffected": the first time for its kind, then at most once
  per interval for that kind, saying how many repeats were suppressed in between;
- counts it (``Telemetry.stats().internal_errors``);
- re-raises it in strict mode (the default under pytest), so that a test sees the bug,
  but only on the host's own call: on the SDK's own threads and hooks (the worker, the exit
  hook, ...) nobody would receive it and the thread would die, so there it is logged and
  counted only. Such code runs inside :meth:`InternalErrors.in_charge`.

Code that does not know its client (the reducer, the runtime probe, a sink) reports through
:func:`log_internal_error` / :func:`handle_internal_errors`: on a thread a client is in
charge of, the fault goes to that client's policy; elsewhere to a package-wide one that is
never strict (strictness is a client's setting). A client makes its sink in its charge, so
a sink that starts threads of its own keeps :func:`current` when it is made and runs them
in ``errors.in_charge()``: their faults then count on that client too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Final

from codex_telemetry._stats import Counter

__all__ = [
    "DEFAULT_INTERVAL",
    "PACKAGE_ERRORS",
    "InternalErrors",
    "RateLimitedLog",
    "current",
    "handle_internal_errors",
    "log_internal_error",
]

_logger = logging.getLogger(__name__)

DEFAULT_INTERVAL: Final = 60.0
"""Seconds between two log lines of the same kind."""


class RateLimitedLog:
    """Logs each kind of message the first time, then at most once per ``interval``.

    A repeat inside the interval is only counted; the next line of its kind says how many
    were suppressed. A thread-local guard keeps a logging handler that calls back into the
    SDK from recursing into another report, and a broken handler is never raised on.
    """

    def __init__(
        self,
        logger: logging.Logger = _logger,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        # Re-entrant: a fact refused from a signal handler is logged on the thread the
        # handler interrupted, possibly inside this lock; it must not wait for itself.
        self._lock = threading.RLock()
        self._next: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._guard = threading.local()

    def log(
        self, level: int, kind: str, message: str, *args: object, exc_info: bool = False
    ) -> bool:
        """Log ``message % args`` unless ``kind`` was logged less than an interval ago.

        True when a line was written (or handed to a handler that failed).
        """
        if getattr(self._guard, "active", False):
            return False
        now = self._clock()
        with self._lock:
            if now < self._next.get(kind, now):
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return False
            self._next[kind] = now + self._interval
            suppressed = self._suppressed.pop(kind, 0)
        if suppressed:
            message += f" ({suppressed} similar reports suppressed)"
        self._guard.active = True
        try:
            self._logger.log(level, message, *args, exc_info=exc_info)
        except Exception:  # a broken logging handler is not ours to crash on
            pass
        finally:
            self._guard.active = False
        return True

    def reset_lock(self) -> None:
        """A fresh lock, in a forked child (the parent's may have been held at the fork)."""
        self._lock = threading.RLock()

    def suppressed(self, kind: str) -> int:
        """Repeats of ``kind`` not logged since its last line."""
        with self._lock:
            return self._suppressed.get(kind, 0)


_in_charge = threading.local()


class InternalErrors:
    """The internal-error policy of one client (or of the package, see :data:`PACKAGE_ERRORS`).

    ``strict``: re-raise a reported fault into the host's call (never on the SDK's own
    threads). ``log``: where the lines go (one :class:`RateLimitedLog` per client, so that
    its kinds are its own).
    """

    __slots__ = ("_count", "_log", "strict")

    def __init__(self, *, strict: bool = False, log: RateLimitedLog | None = None) -> None:
        self.strict = strict
        self._log = log if log is not None else RateLimitedLog()
        self._count = Counter()

    @property
    def count(self) -> int:
        """Faults reported so far."""
        return self._count.value

    def report(
        self,
        kind: str,
        doing: str,
        *,
        template: str = "codex_telemetry: internal error while %s; your code is unaffected",
    ) -> None:
        """Report the fault being handled; call it from an ``except`` block.

        ``kind`` is what the rate limit counts by (``"reducer"``, ``"sink"``, ...);
        ``doing`` completes ``template`` ("internal error while ..."; a fault of the
        program's own hook says so instead). Re-raises the fault in strict mode unless the
        SDK's own code is running (see :meth:`in_charge`).
        """
        self._count.increment()
        self._log.log(logging.ERROR, kind, template, doing, exc_info=True)
        if self.strict and getattr(_in_charge, "errors", None) is None:
            raise  # noqa: PLE0704 - re-raises the exception its caller is handling

    @contextlib.contextmanager
    def handling(self, kind: str, doing: str) -> Iterator[None]:
        """Run the block; a fault in it is reported (see :meth:`report`), not raised."""
        try:
            yield
        except Exception:
            self.report(kind, doing)

    def notice(self, kind: str, message: str, *args: object, level: int = logging.WARNING) -> None:
        """Say ``message % args`` once per kind and interval; not a fault, not counted."""
        self._log.log(level, kind, message, *args)

    @contextlib.contextmanager
    def in_charge(self) -> Iterator[None]:
        """Run the block as the SDK's own code on behalf of this policy's client.

        Faults reported inside it, through this policy or through
        :func:`log_internal_error`, are counted here and never re-raised: there is no host
        call to raise into. The SDK's threads run their whole life inside it.
        """
        previous = getattr(_in_charge, "errors", None)
        _in_charge.errors = self
        try:
            yield
        finally:
            _in_charge.errors = previous


PACKAGE_ERRORS: Final = InternalErrors()
"""The policy of code running outside any client's charge (a reducer or an observer used
on its own, or a host thread): logged and counted, never raised."""

if hasattr(os, "register_at_fork"):  # each client makes its own policy anew after a fork
    os.register_at_fork(after_in_child=PACKAGE_ERRORS._log.reset_lock)


def current() -> InternalErrors:
    """The policy in charge of the calling thread, else :data:`PACKAGE_ERRORS`."""
    errors: InternalErrors | None = getattr(_in_charge, "errors", None)
    return errors if errors is not None else PACKAGE_ERRORS


def log_internal_error(kind: str, doing: str) -> None:
    """Report the fault being handled to the policy in charge of this thread.

    See :meth:`InternalErrors.report`; call it from an ``except`` block.
    """
    current().report(kind, doing)


@contextlib.contextmanager
def handle_internal_errors(kind: str, doing: str) -> Iterator[None]:
    """Run the block; a fault in it goes to the policy in charge, never to the caller
    outside strict mode."""
    try:
        yield
    except Exception:
        current().report(kind, doing)
