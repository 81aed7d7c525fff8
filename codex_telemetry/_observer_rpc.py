"""Matching JSON-RPC answers to the requests the observer remembers.

Only the requests whose answer becomes a fact are remembered, with what their answer
will need; every other message is recognised by its method and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

from codex_telemetry._bounded import BoundedTable
from codex_telemetry._observer_values import JsonObject, MalformedMessageError
from codex_telemetry.facts import InitializeParams, RequestId

__all__ = [
    "INITIALIZE",
    "NOTIFICATIONS",
    "REQUESTS",
    "THREAD_FORK",
    "THREAD_METHODS",
    "THREAD_RESUME",
    "THREAD_START",
    "TOKEN_USAGE_UPDATED",
    "TURN_START",
    "TURN_STARTED",
    "TURN_STEER",
    "Pending",
    "PendingInitialize",
    "PendingSteer",
    "PendingThread",
    "PendingTurnStart",
    "awaits_turn_start",
    "remember",
]

# Requests whose answer becomes a fact; every other request is not remembered at all.
INITIALIZE = "initialize"
THREAD_START = "thread/start"
THREAD_RESUME = "thread/resume"
THREAD_FORK = "thread/fork"
TURN_START = "turn/start"
TURN_STEER = "turn/steer"
THREAD_METHODS = frozenset({THREAD_START, THREAD_RESUME, THREAD_FORK})
REQUESTS = frozenset({INITIALIZE, TURN_START, TURN_STEER, *THREAD_METHODS})
# Notifications that become (or shape) a fact.
TOKEN_USAGE_UPDATED = "thread/tokenUsage/updated"
TURN_STARTED = "turn/started"
TURN_COMPLETED = "turn/completed"
NOTIFICATIONS = frozenset({TOKEN_USAGE_UPDATED, TURN_STARTED, TURN_COMPLETED})


@dataclass(frozen=True, slots=True)
class PendingInitialize:
    """An ``initialize`` request: its response completes the ``Initialize`` fact."""

    params: InitializeParams


@dataclass(frozen=True, slots=True)
class PendingThread:
    """A ``thread/start``, ``thread/resume`` or ``thread/fork`` request."""

    method: str


@dataclass(frozen=True, slots=True)
class PendingTurnStart:
    """A ``turn/start`` request, with the overrides its turn's configuration needs."""

    thread_id: str
    overrides: JsonObject
    num_input_images: int


@dataclass(frozen=True, slots=True)
class PendingSteer:
    """A ``turn/steer`` request."""


Pending: TypeAlias = PendingInitialize | PendingThread | PendingTurnStart | PendingSteer


def remember(table: BoundedTable[RequestId, Pending], request_id: Any, pending: Pending) -> None:
    """Remember a request until its answer; a full table forgets its oldest request."""
    if not isinstance(request_id, int | str) or isinstance(request_id, bool):
        raise MalformedMessageError("a JSON-RPC id must be an integer or a string")
    # An id reused before its answer: the earlier request can no longer be matched.
    table.evict(request_id)
    # The oldest request is the likeliest to have been answered out of view.
    table.put(request_id, pending)


def awaits_turn_start(table: BoundedTable[RequestId, Pending], thread_id: Any) -> bool:
    """Whether a ``turn/start`` on ``thread_id`` awaits its answer."""
    return any(
        isinstance(pending, PendingTurnStart) and pending.thread_id == thread_id
        for pending in table.values()
    )
