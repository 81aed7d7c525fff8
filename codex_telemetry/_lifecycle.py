"""The process lifecycle around a client: the exit hook, fork, and bounded waits.

- **Exit.** A client registers its exit hook when its worker starts (a disabled client
  never does) and removes it when shut down; the hook shuts down within
  ``shutdown_timeout`` and says once what was not delivered (:func:`report_at_exit`).
- **Fork.** One process-wide ``os.register_at_fork`` handler gives each live client a
  fresh start in the child: nothing the parent queued is sent twice.
- **Bounded waits.** :func:`call_with_deadline` returns after its timeout even when the
  call hangs; :func:`bounded` makes any timeout one the threading primitives accept.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from codex_telemetry._internal_errors import InternalErrors
    from codex_telemetry._stats import TelemetryStats

__all__ = [
    "SHUTDOWN_GRACE",
    "abandon_in_child",
    "bounded",
    "call_with_deadline",
    "register_exit_hook",
    "register_fork_handler",
    "report_at_exit",
    "unregister_exit_hook",
]

# Extra time granted to a sink's shutdown beyond what the caller asked, so that a sink
# that honours its timeout exactly is not reported as hung. It must exceed the time the
# batching sinks themselves take past their deadline (``_batching._JOIN_GRACE``, 0.1 s)
# to give up on a request still in flight and say what was lost: cut shorter, exit
# logged a second, partial count over the sink's own report.
SHUTDOWN_GRACE: Final = 0.25


def bounded(timeout: float) -> float:
    """``timeout`` as the threading primitives accept it: an infinite or huge one would
    raise ``OverflowError`` into the caller, a NaN or negative one means "do not wait".
    Half the platform's limit leaves room for the graces added on top (still years)."""
    if not timeout > 0.0:
        return 0.0
    return min(timeout, threading.TIMEOUT_MAX / 2)


def call_with_deadline(
    method: Callable[[float], bool], timeout: float, errors: InternalErrors
) -> bool:
    """Call ``method(timeout)`` but return after ``timeout`` even if it hangs.

    False when it hung, returned false or raised (reported to ``errors``).
    """
    result: list[bool] = []

    def call() -> None:
        with errors.in_charge(), errors.handling("sink_shutdown", "shutting the sink down"):
            result.append(bool(method(timeout)))

    helper = threading.Thread(target=call, name="codex-telemetry-shutdown", daemon=True)
    try:
        helper.start()
    except RuntimeError:  # no new threads during interpreter finalisation
        call()
        return bool(result and result[0])
    helper.join(timeout + SHUTDOWN_GRACE)
    return bool(result and result[0])


# --- exit -------------------------------------------------------------------------------


def register_exit_hook(hook: Callable[[], None]) -> None:
    """Run ``hook`` at interpreter exit, once however often it is registered."""
    atexit.unregister(hook)
    atexit.register(hook)


def unregister_exit_hook(hook: Callable[[], None]) -> None:
    """Forget ``hook``; harmless while the interpreter is finalising."""
    with contextlib.suppress(Exception):  # the interpreter may be finalising
        atexit.unregister(hook)


def report_at_exit(
    stats: TelemetryStats, processed: int, shutdown_timeout: float, logger: logging.Logger
) -> None:
    """Say once what the exit's shutdown left undelivered, if anything.

    The sink reports, once, the events it was given but could not deliver; this adds only
    what it cannot know: events it never finished taking, and facts the worker had not
    reduced yet when the time was up.
    """
    # Events kept in the spool are not lost (the worker said where they are); events a
    # previous process left are exported or dropped here besides those produced. Events
    # whose request was unanswered at the deadline may have arrived: the sink said so,
    # and they are not counted here as not delivered.
    stuck = (
        stats.events_produced
        + stats.events_replayed
        - stats.events_exported
        - stats.events_in_flight_at_exit
        - stats.events_dropped_total
        - stats.events_kept
    )
    unreduced = stats.facts_accepted - processed
    if stuck <= 0 and unreduced <= 0:
        return
    # A sink that did not finish its shutdown has not reported what it dropped either:
    # count every event not delivered, so that this one line is the total.
    undelivered = stuck + stats.events_dropped_total if stuck > 0 else 0
    if undelivered <= 0:
        # The sink said what it lost, if anything: a second "not delivered" line (of 0
        # events) would only contradict it.
        logger.warning(
            "codex_telemetry: %d facts were not processed before exit "
            "(shutdown_timeout %.1f s reached); your program is unaffected",
            unreduced,
            shutdown_timeout,
        )
        return
    logger.warning(
        "codex_telemetry: %d analytics events were not delivered before exit, and "
        "%d facts were not processed (shutdown_timeout %.1f s reached); "
        "your program is unaffected",
        undelivered,
        max(unreduced, 0),
        shutdown_timeout,
    )


# --- fork -------------------------------------------------------------------------------


class _Forkable(Protocol):
    def _after_fork_in_child(self) -> None: ...


_forkable: weakref.WeakSet[_Forkable] = weakref.WeakSet()
# Sinks a forked child inherited: kept referenced, never closed, since collecting one
# could flush the parent's buffered output a second time from the child.
_abandoned_in_child: list[object] = []
_fork_handler_registered = False


def _after_fork_in_child() -> None:
    for client in list(_forkable):
        client._after_fork_in_child()


def register_fork_handler(client: _Forkable) -> None:
    """Start ``client`` over in every forked child while it lives."""
    global _fork_handler_registered  # noqa: PLW0603 - one process-wide hook
    _forkable.add(client)
    if not _fork_handler_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_handler_registered = True


def abandon_in_child(sink: object) -> None:
    """Keep the parent's ``sink`` alive, unused, in a forked child."""
    _abandoned_in_child.append(sink)
