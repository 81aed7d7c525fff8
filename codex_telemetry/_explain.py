"""The ``debug`` setting: a reducer that logs, per fact, what it did or why it waits.

Chosen once, when the client is built: without ``debug`` the plain
:class:`~codex_telemetry._reducer.AnalyticsReducer` runs and this module is never
imported, so the setting costs nothing when off. The lines go to the ``codex_telemetry``
logger at DEBUG and name only ids and types, never a fact's content.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from codex_telemetry._reducer import AnalyticsReducer
from codex_telemetry.events import AnalyticsEvent
from codex_telemetry.facts import (
    Fact,
    Notification,
    Request,
    Response,
    TurnResolvedConfig,
    TurnStartResponse,
    TurnSteerResponse,
    TurnTokenUsage,
)

__all__ = ["DebugReducer", "describe_fact", "log_filtered", "show_debug_lines", "turn_id_of"]

_logger = logging.getLogger(__name__)
_PACKAGE_LOGGER: Final = "codex_telemetry"


def show_debug_lines() -> None:
    """Make the debug lines visible unless the program configured logging itself.

    A ``codex_telemetry`` logger with no level of its own gets DEBUG; with no handler
    anywhere on its way to the root, it gets one that writes to standard error.
    """
    logger = logging.getLogger(_PACKAGE_LOGGER)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.DEBUG)
    if not logger.hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)


_WHY: Final[dict[str, str]] = {
    "unknown_connection": (
        "no event: its connection is unknown (no Initialize was tracked for it, or it was evicted)"
    ),
    "unknown_thread": (
        "no event: its thread is unknown (no thread/start, thread/resume or thread/fork "
        "response was tracked for it, or it was evicted)"
    ),
    "no_pending_request": (
        "no event: no matching request is pending (its Request fact was not tracked, was "
        "answered already, or was evicted)"
    ),
    "after_emission": "no event: the turn's event was already sent; this fact came too late",
    "turn_evicted": "a turn still waiting for facts was evicted to make room",
}

_IDS: Final = ("connection_id", "request_id", "thread_id", "turn_id")


def turn_id_of(fact: Any) -> str | None:
    """The turn a fact is about, when it is one of the facts a turn event joins."""
    if isinstance(fact, TurnResolvedConfig | TurnTokenUsage):
        return fact.turn_id
    if isinstance(fact, Notification):
        return fact.notification.turn.id
    if isinstance(fact, Response):
        response = fact.response
        if isinstance(response, TurnStartResponse):
            return response.turn.id
        if isinstance(response, TurnSteerResponse):
            return response.turn_id
    return None


def describe_fact(fact: Any) -> str:
    """``Response(TurnStartResponse connection_id=1 request_id=2 turn_id='t')``: the
    fact's type and ids, no content."""
    name = type(fact).__name__
    inner = getattr(fact, "request", None) if isinstance(fact, Request) else None
    if isinstance(fact, Response):
        inner = fact.response
    elif isinstance(fact, Notification):
        inner = fact.notification
    parts = [type(inner).__name__] if inner is not None else []
    for key in _IDS:
        value = getattr(fact, key, None)
        if value is None and inner is not None:
            value = getattr(inner, key, None)
        if value is not None:
            parts.append(f"{key}={value!r}")
    turn_id = turn_id_of(fact)
    if turn_id is not None and getattr(fact, "turn_id", None) is None:
        parts.append(f"turn_id={turn_id!r}")
    return f"{name}({' '.join(parts)})"


def log_filtered(fact: object) -> None:
    """The debug line of a fact filtered by the GeneralAnalytics flag, before the queue."""
    _logger.debug(
        "codex_telemetry: %s: filtered: general_analytics is off (thread, turn, steer, "
        "sub-agent and compaction facts need it)",
        describe_fact(fact),
    )


class DebugReducer(AnalyticsReducer):
    """An :class:`AnalyticsReducer` that logs each fact's outcome at DEBUG."""

    def ingest(self, fact: Fact) -> list[AnalyticsEvent]:
        """Apply one fact, then say what came of it."""
        if not _logger.isEnabledFor(logging.DEBUG):
            return super().ingest(fact)
        before = self.no_event
        events = super().ingest(fact)
        outcome = self._outcome(fact, events, before)
        _logger.debug("codex_telemetry: %s: %s", describe_fact(fact), outcome)
        return events

    def _outcome(self, fact: Fact, events: list[AnalyticsEvent], before: dict[str, int]) -> str:
        if events:
            return "made " + ", ".join(event.event_type for event in events)
        after = self.no_event
        lost = [reason for reason, count in after.items() if count > before.get(reason, 0)]
        if lost:
            return "; ".join(_WHY[reason] for reason in lost)
        turn_id = turn_id_of(fact)
        if turn_id is not None:
            waiting = self.waiting_for(turn_id)
            if waiting:
                return f"turn {turn_id!r} waits for: {', '.join(waiting)}"
        return "recorded, no event yet"
