"""Facts derived from the JSON-RPC traffic of one Codex app-server connection.

A program that drives ``codex app-server`` itself (over stdio) sees every message the
analytics need: the ``initialize`` handshake, thread and turn requests with their
responses, and the turn notifications. :class:`AppServerObserver` watches that traffic
from the client's side and turns it into the facts of ``codex_telemetry.facts``, which it
hands to ``track`` (``codex_telemetry.track_fact`` unless told otherwise).

Some values the app-server's own analytics know are not visible on the wire (the
``submission_type`` of a turn, a personality or reasoning summary set in the server's
``config.toml``): the observer reports what the client can see and documents the rest in
:class:`AppServerObserver`.

The observer sits on the client's I/O path, so it is built to be cheap and harmless:
messages it does not need are dropped after one dictionary lookup, only requests whose
answer it needs are remembered (in bounded tables), and nothing it does ever raises into
the client. A message it cannot read is counted and logged once.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from codex_telemetry._bounded import BoundedTable
from codex_telemetry._client import track_fact
from codex_telemetry._internal_errors import RateLimitedLog
from codex_telemetry._observer_facts import (
    error_response,
    initialize_fact,
    thread_response,
    turn_request,
)
from codex_telemetry._observer_rpc import (
    INITIALIZE,
    NOTIFICATIONS,
    REQUESTS,
    THREAD_METHODS,
    TOKEN_USAGE_UPDATED,
    TURN_STARTED,
    Pending,
    PendingInitialize,
    PendingSteer,
    PendingThread,
    PendingTurnStart,
    awaits_turn_start,
    remember,
)
from codex_telemetry._observer_state import (
    FollowedThreads,
)
from codex_telemetry._observer_values import (
    JsonObject,
    MalformedMessageError,
    UnknownValues,
    decode_message,
    message_params,
    read_initialize_params,
    read_turn,
    required_str,
    required_thread_id,
)
from codex_telemetry._stats import Counter
from codex_telemetry.facts import (
    Fact,
    Notification,
    Request,
    RequestId,
    Response,
    RpcTransport,
    TurnCompletedNotification,
    TurnStartedNotification,
    TurnStartResponse,
    TurnSteerResponse,
    TurnTokenUsage,
)

__all__ = ["AppServerObserver", "Direction", "ObserverStats"]

_logger = logging.getLogger(__name__)

Direction: TypeAlias = Literal["sent", "received"]
"""``"sent"``: client → app-server. ``"received"``: app-server → client."""

# Process-wide, so that two observers feeding one SDK client never share a connection id.
_connection_ids = itertools.count(1)

# Indexes of the counters in ``AppServerObserver._counts``, after ``messages``.
_FACTS, _MALFORMED, _UNRECOGNIZED, _TRACK_ERRORS = range(4)


@dataclass(frozen=True, slots=True)
class ObserverStats:
    """A snapshot of what one :class:`AppServerObserver` has seen."""

    messages: int
    """Messages observed, in both directions."""
    facts: int
    """Facts handed to ``track``."""
    malformed: int
    """Messages that were not JSON-RPC, or that the observer needed and could not read."""
    unrecognized: int
    """Turns whose configuration lacked a value the analytics need, or held one that is
    neither a string nor a tagged object (no resolved config)."""
    evicted: int
    """Remembered requests, threads or turns dropped to keep the tables bounded, and
    requests replaced by a later request with the same id."""
    track_errors: int
    """Calls to ``track`` that raised."""
    unknown_values: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """Values this release does not know, by field (``sandbox_policy``,
    ``approval_policy``, ``turn_status``, ``codex_error_info``, ``session_source``,
    ``input_item``, ...). Each was reported as the server sent it; none cost a fact."""


class AppServerObserver:
    """Derives analytics facts from one Codex app-server JSON-RPC connection.

    Create one observer per connection (per ``codex app-server`` process) and show it
    every message, in the order the client sent or received them::

        observer = AppServerObserver()
        observer.observe_sent(request)        # client -> app-server
        observer.observe_received(message)    # app-server -> client

    A message is a decoded JSON object (a ``dict``) or one raw JSON line (``str`` or
    ``bytes``). Facts go to ``track`` (default ``codex_telemetry.track_fact``), in the
    order they happen; the observer never raises, whatever it is shown.

    Derived facts: ``Initialize`` (from the ``initialize`` request and its response; the
    ``product_client_id`` is the originator in the server's user agent, the runtime is the
    app-server's), thread responses (``thread/start``, ``thread/resume``,
    ``thread/fork``), ``turn/start`` and ``turn/steer`` requests with their responses or
    errors (a refused steer is classified), ``turn/started`` and ``turn/completed``
    notifications, and per turn a ``TurnResolvedConfig`` (when the ``turn/start``
    response arrives) and a ``TurnTokenUsage`` (just before the turn's completion).

    A value this release does not know (a newer app-server's sandbox type, turn status,
    error info, ...) never costs a fact: it is carried as sent (an ``UnknownValue`` in an
    enum field), counted in ``stats().unknown_values`` and logged once per field.

    What the client cannot see, and what is reported instead:

    - ``submission_type`` is None;
    - ``reasoning_summary`` and ``personality`` are None unless a ``turn/start`` set them
      (a value from the server's configuration file is not on the wire);
    - ``collaboration_mode`` is ``"default"`` unless a thread response or a ``turn/start``
      named one;
    - a turn's token usage is the growth of the thread's running total during the turn
      (its ``thread/tokenUsage/updated`` notifications): zero for a turn with no usage
      notification (one that failed before the model answered), and, as the app-server
      reports it, none at all for an interrupted turn;
    - only turns started by this connection's ``turn/start`` are followed: other turns
      (reviews, compactions, sub-agents) cannot produce a turn event.

    Args:
        track: where facts go; ``codex_telemetry.track_fact`` by default.
        connection_id: the connection's id in the facts; a fresh process-wide number by
            default.
        rpc_transport: how the client talks to the app-server.
        max_pending: requests remembered while their answer is awaited.
        max_threads: threads whose configuration is remembered.
        max_turns: turns followed at once.
    """

    __slots__ = (
        "_connection_id",
        "_counts",
        "_lock",
        "_log",
        "_messages",
        "_pending",
        "_rpc_transport",
        "_threads",
        "_track",
        "_unknown",
    )

    def __init__(
        self,
        *,
        track: Callable[[Fact], object] | None = None,
        connection_id: int | None = None,
        rpc_transport: RpcTransport = "stdio",
        max_pending: int = 1024,
        max_threads: int = 1024,
        max_turns: int = 1024,
    ) -> None:
        if min(max_pending, max_threads, max_turns) < 1:
            raise ValueError("max_pending, max_threads and max_turns must be at least 1")
        self._track: Callable[[Fact], object] = track if track is not None else track_fact
        self._connection_id = connection_id if connection_id is not None else next(_connection_ids)
        self._rpc_transport: RpcTransport = rpc_transport
        self._pending: BoundedTable[RequestId, Pending] = BoundedTable(max_pending)
        self._threads = FollowedThreads(max_threads, max_turns)
        # Counted without the lock, from any thread; the others are counted under it.
        self._messages = Counter()
        self._counts = [0, 0, 0, 0]
        # Each kind of problem is logged once, then at most once per interval.
        self._log = RateLimitedLog(_logger)
        self._unknown = UnknownValues()
        # The client may write from several threads while one thread reads: a request
        # must be seen before its response, and facts must reach ``track`` in order.
        self._lock = threading.Lock()

    @property
    def connection_id(self) -> int:
        """The connection id carried by this observer's facts."""
        return self._connection_id

    def stats(self) -> ObserverStats:
        """A snapshot of this observer's counters."""
        with self._lock:
            facts, malformed, unrecognized, track_errors = self._counts
            return ObserverStats(
                messages=self._messages.value,
                facts=facts,
                malformed=malformed,
                unrecognized=unrecognized,
                evicted=self._pending.evictions + self._threads.evictions,
                track_errors=track_errors,
                unknown_values=dict(self._unknown.counts),
            )

    def observe_sent(self, message: JsonObject | str | bytes) -> None:
        """Observe a message the client sent to the app-server."""
        self.observe(message, "sent")

    def observe_received(self, message: JsonObject | str | bytes) -> None:
        """Observe a message the client received from the app-server."""
        self.observe(message, "received")

    def observe(self, message: JsonObject | str | bytes, direction: Direction) -> None:
        """Observe one message crossing the connection in ``direction``. Never raises."""
        try:
            self._messages.increment()
            if type(message) is not dict:
                message = decode_message(message)
            # Most traffic is streaming notifications: drop what cannot become a fact
            # before taking the lock. Reading the pending table unlocked is safe: a
            # request is remembered before it is written, so before its answer exists.
            method: Any = message.get("method")
            if direction == "received":
                if method is None:
                    response_id = message.get("id")
                    if type(response_id) is not int and type(response_id) is not str:
                        if response_id is None:
                            return  # an error about a message the server could not read
                        # Checked before the lookup: True or 1.0 would find request 1.
                        raise MalformedMessageError("a JSON-RPC id must be an integer or a string")
                    if response_id not in self._pending:
                        return
                elif method not in NOTIFICATIONS or "id" in message:
                    return  # uninteresting, or a request from the server
            elif method not in REQUESTS or "id" not in message:
                return
            with self._lock:
                if direction == "sent":
                    self._on_sent(method, message)
                else:
                    self._on_received(method, message)
        except Exception as exc:  # the client's I/O must never fail because of telemetry
            with self._lock:
                self._counts[_MALFORMED] += 1
                self._log.log(
                    logging.WARNING,
                    "malformed",
                    "codex_telemetry could not read a JSON-RPC message (%s: %s); it is "
                    "skipped, your code is unaffected. Repeats are counted, and logged at most "
                    "once a minute.",
                    type(exc).__name__,
                    exc,
                )

    # --- requests --------------------------------------------------------------------

    def _on_sent(self, method: str, message: JsonObject) -> None:
        request_id = message["id"]
        if method in THREAD_METHODS:
            remember(self._pending, request_id, PendingThread(method))
            return
        params = message_params(message)
        if method == INITIALIZE:
            initialize = PendingInitialize(read_initialize_params(params))
            remember(self._pending, request_id, initialize)
            return
        if required_str(params, "threadId") not in self._threads:
            return  # no thread response seen here: the turn could never make an event
        pending, request = turn_request(method, params, self._unknown)
        remember(self._pending, request_id, pending)
        self._emit(Request(self._connection_id, request_id, request))

    # --- responses -------------------------------------------------------------------

    def _on_received(self, method: str | None, message: JsonObject) -> None:
        if method is not None:
            params = message_params(message)
            if method == TOKEN_USAGE_UPDATED:
                self._threads.record_usage(params)
            else:
                self._on_turn_notification(params, completed=method != TURN_STARTED)
            return
        pending = self._pending.pop(message.get("id"))  # type: ignore[arg-type]
        if pending is None:
            return
        request_id: RequestId = message["id"]
        error = message.get("error")
        if error is not None:
            if isinstance(pending, PendingTurnStart | PendingSteer):  # else no fact
                steer = isinstance(pending, PendingSteer)
                self._emit(error_response(self._connection_id, request_id, error, steer=steer))
            return
        result = message.get("result")
        if not isinstance(result, Mapping):
            raise MalformedMessageError("a response without a result object")
        if isinstance(pending, PendingTurnStart):
            self._on_turn_start_result(request_id, pending, result)
        elif isinstance(pending, PendingSteer):
            turn_id = required_str(result, "turnId")
            self._emit(Response(self._connection_id, request_id, TurnSteerResponse(turn_id)))
        elif isinstance(pending, PendingThread):
            response, state = thread_response(pending.method, result, self._unknown)
            self._threads.add(response.thread.id, state)
            self._emit(Response(self._connection_id, request_id, response))
        else:
            connection, transport = self._connection_id, self._rpc_transport
            self._emit(initialize_fact(connection, transport, pending.params, result))

    def _on_turn_start_result(
        self, request_id: RequestId, pending: PendingTurnStart, result: JsonObject
    ) -> None:
        raw_turn = result.get("turn")
        if not isinstance(raw_turn, Mapping):
            raise MalformedMessageError("a turn/start result without a turn")
        turn = read_turn(raw_turn, self._unknown)
        self._emit(Response(self._connection_id, request_id, TurnStartResponse(turn)))
        outcome = self._threads.start_turn(pending, turn.id, self._unknown)
        if isinstance(outcome, list):
            self._counts[_UNRECOGNIZED] += 1
            self._log.log(
                logging.WARNING,
                "unrecognized",
                "codex_telemetry could not name the %s of a turn's configuration; the turn "
                "is not reported. Repeats are counted, and logged at most once a minute.",
                ", ".join(outcome),
            )
        elif outcome is not None:
            self._emit(outcome)

    # --- notifications ---------------------------------------------------------------

    def _on_turn_notification(self, params: JsonObject, *, completed: bool) -> None:
        raw_turn = params.get("turn")
        if not isinstance(raw_turn, Mapping):
            raise MalformedMessageError("a turn notification without a turn")
        turn_id = raw_turn.get("id")
        thread_id = params.get("threadId")
        if not completed:
            # A turn/started that overtakes its turn/start response still counts: the
            # reducer joins the two whichever comes first.
            if self._threads.follows(turn_id) or awaits_turn_start(self._pending, thread_id):
                started = read_turn(raw_turn, self._unknown)
                thread_id = required_thread_id(thread_id)
                self._emit(Notification(TurnStartedNotification(thread_id, started)))
            return
        followed = self._threads.complete_turn(turn_id)
        if followed is None:
            return
        thread_id = required_thread_id(thread_id)
        turn = read_turn(raw_turn, self._unknown)
        usage = followed.final_usage(turn.status)
        if usage is not None:
            self._emit(TurnTokenUsage(turn.id, thread_id, usage))
        self._emit(Notification(TurnCompletedNotification(thread_id, turn)))

    # --- output ----------------------------------------------------------------------

    def _emit(self, fact: Fact) -> None:
        self._counts[_FACTS] += 1
        try:
            self._track(fact)
        except Exception as exc:
            self._counts[_TRACK_ERRORS] += 1
            self._log.log(
                logging.WARNING,
                "track",
                "codex_telemetry could not track a fact (%s: %s); your code is unaffected. "
                "Repeats are counted, and logged at most once a minute.",
                type(exc).__name__,
                exc,
            )
