"""The gate in front of the queue: what happens to a fact, decided by its type, and dedupe.

One dict lookup on the caller's thread routes a fact: accepted, filtered by the
GeneralAnalytics flag (events.md section 5), disabled, or one of the routes that look
inside the fact first (``AppUsed``/``PluginUsed`` are reported once per turn and connector
or plugin; empty skill and mention lists are dropped). Everything here is cheap: dedupe is
one atomic ``dict.setdefault``, and the gate's lock is taken only to start the worker (once)
and to close the gate.

**Signal handlers.** ``track_fact`` may be called from a signal handler, which Python runs
on the main thread between two bytecodes of whatever that thread was doing, possibly
``track_fact`` itself. Nothing here may therefore wait for something the interrupted frame
holds: dedupe takes no lock, the gate's lock is re-entrant and a call that re-enters the
worker's start is refused and counted (``reentrant``) instead of waiting for itself, and
``SimpleQueue.put`` is re-entrant by design.
"""

from __future__ import annotations

import itertools
import logging
import threading
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, get_args

from codex_telemetry._stats import Counter, count_value
from codex_telemetry.facts import (
    AppMentioned,
    AppUsed,
    Compaction,
    ErrorResponse,
    Fact,
    Initialize,
    Notification,
    PluginUsed,
    Request,
    Response,
    SkillInvoked,
    SubAgentThreadStarted,
    TurnResolvedConfig,
    TurnTokenUsage,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from codex_telemetry._internal_errors import InternalErrors
    from codex_telemetry._notices import Notices
    from codex_telemetry._worker import Worker

__all__ = [
    "ACCEPT",
    "ADMIT",
    "AFTER_SHUTDOWN",
    "AFTER_SHUTDOWN_ROUTES",
    "APP_USED",
    "DISABLED",
    "DROP_REASONS",
    "DUPLICATE",
    "EMPTY",
    "FACT_TYPES",
    "FILTER",
    "FILTER_NOTICE",
    "GENERAL_ANALYTICS_FACTS",
    "MALFORMED",
    "MENTIONS",
    "PLUGIN_USED",
    "SKILLS",
    "Dedupe",
    "Gate",
    "base_fact_type",
    "routes",
]

GENERAL_ANALYTICS_FACTS: Final[frozenset[type]] = frozenset(
    {
        Initialize,
        Request,
        Response,
        ErrorResponse,
        Notification,
        SubAgentThreadStarted,
        TurnResolvedConfig,
        TurnTokenUsage,
        Compaction,
    }
)
"""The fact types gated by the GeneralAnalytics feature flag (events.md section 5)."""

FACT_TYPES: Final[tuple[type, ...]] = get_args(Fact)

_get_ident = threading.get_ident

# What track_fact does with a fact, by its type. Small ints: the hot path compares them.
ACCEPT: Final = 0
FILTER: Final = 1
DISABLED: Final = 2
AFTER_SHUTDOWN: Final = 3
APP_USED: Final = 4
PLUGIN_USED: Final = 5
SKILLS: Final = 6
MENTIONS: Final = 7
# Filtered, and told: the first one when an instrumentation is on without the flag (the
# client then swaps the plain FILTER routes back in, so later facts cost what FILTER
# costs), or each one in debug mode.
FILTER_NOTICE: Final = 8

DROP_REASONS: Final = (
    "queue_full",
    "invalid",
    "after_shutdown",
    "empty",
    "reentrant",
    "no_worker",
)
"""Why a fact was not queued (``facts_dropped``), besides ``disabled``."""


def routes(*, enabled: bool, general_analytics: bool) -> dict[type, int]:
    """The route of every fact type, for a client that collects (or not) with the flag."""
    if not enabled:
        return dict.fromkeys(FACT_TYPES, DISABLED)
    table = dict.fromkeys(FACT_TYPES, ACCEPT)
    if not general_analytics:
        table.update(dict.fromkeys(GENERAL_ANALYTICS_FACTS, FILTER))
    table[AppUsed] = APP_USED
    table[PluginUsed] = PLUGIN_USED
    table[SkillInvoked] = SKILLS
    table[AppMentioned] = MENTIONS
    return table


AFTER_SHUTDOWN_ROUTES: Final = dict.fromkeys(FACT_TYPES, AFTER_SHUTDOWN)
"""The routes of a client that was shut down; compared by identity."""


def base_fact_type(value: object, table: dict[type, int]) -> type | None:
    """The fact type ``value`` is an instance of a subclass of, if any."""
    return next((cls for cls in type(value).__mro__ if cls in table), None)


# What Dedupe.admit says about a fact of a looking-inside route.
ADMIT: Final = 0
DUPLICATE: Final = 1
EMPTY: Final = 2
MALFORMED: Final = 3

_DEDUPE_CAPACITY: Final = 4096


class Dedupe:
    """Admits ``AppUsed`` once per turn and connector, ``PluginUsed`` once per turn and
    plugin, and no empty skill or mention list; bounded, safe from any thread and from a
    signal handler (it takes no lock)."""

    __slots__ = ("_app_keys", "_plugin_keys", "deduplicated")

    def __init__(self) -> None:
        self._app_keys: dict[tuple[str, str], object] = {}
        self._plugin_keys: dict[tuple[str, str], object] = {}
        self.deduplicated = Counter()
        """Facts already reported for their turn."""

    def admit(self, fact: Any, route: int) -> int:
        """``ADMIT``, ``DUPLICATE`` (counted), ``EMPTY`` or ``MALFORMED`` for ``fact``.

        The fields read here are the caller's value, read on the caller's thread: a fact
        that lacks them (built around validation) is ``MALFORMED``, never raised on.
        """
        try:
            if route == APP_USED:
                connector_id = fact.app.connector_id
                key = None if connector_id is None else (fact.tracking.turn_id, connector_id)
            elif route == PLUGIN_USED:
                key = (fact.tracking.turn_id, fact.plugin.key)
            else:
                empty = not (fact.invocations if route == SKILLS else fact.mentions)
                return EMPTY if empty else ADMIT
            hash(key)
        except Exception:  # any malformed value, whatever it raises, is the caller's
            return MALFORMED
        if key is None:
            return ADMIT
        return self._first_time(self._app_keys if route == APP_USED else self._plugin_keys, key)

    def _first_time(self, keys: dict[tuple[str, str], object], key: tuple[str, str]) -> int:
        # No lock: a signal handler may run this between two bytecodes of the same call on
        # the same thread. ``setdefault`` is one atomic step for keys of plain strings: of
        # two racing callers, only the one whose token went in admits the fact.
        if key not in keys:
            if len(keys) >= _DEDUPE_CAPACITY:
                keys.clear()  # racing clears only forget more keys; the bound holds
            token = object()
            if keys.setdefault(key, token) is token:
                return ADMIT
        self.deduplicated.increment()
        return DUPLICATE


class Gate:
    """The caller's side of a client: routes, counters, dedupe, and the way into the queue.

    A base class of ``Telemetry`` rather than a member of it: ``track_fact`` then reads
    each piece of state it needs with one attribute load, which keeps a filtered or
    disabled fact near 100 ns. The subclass sets ``_routes``, ``_max_queue`` and
    ``_strict``, calls :meth:`_reset_gate`, and is told when the worker starts
    (:meth:`_on_worker_start`, under the gate's lock).
    """

    _routes: dict[type, int]
    _max_queue: int
    _strict: bool
    _notices: Notices

    def _reset_gate(self, worker: Worker, errors: InternalErrors) -> None:
        """Fresh lock, dedupe keys and counters, in front of ``worker``."""
        # Re-entrant: a signal handler that tracks a fact while its own thread holds the
        # lock (closing the gate, starting the worker) gets in instead of waiting forever.
        self._lock = threading.RLock()
        self._starting = False
        self._worker = worker
        # The worker's state the hot path reads, kept here so that it costs one
        # attribute load each; set once, under the lock, when the worker starts.
        self._queue = worker.queue
        self._worker_started = False
        self._worker_ident: int | None = None
        self._errors = errors
        self._dedupe = Dedupe()
        # The counters the hot path bumps are bare itertools.count objects: next()
        # on one is a single C call, atomic under the GIL (see _stats.Counter).
        self._accepted = itertools.count()
        self._filtered = itertools.count()
        self._disabled = itertools.count()
        self._dropped = {reason: Counter() for reason in DROP_REASONS}

    def track_fact(self, fact: Fact) -> None:
        """Report one fact. Never blocks, never does I/O, never raises (except strict mode).

        A value that is not a fact is counted and logged, or raises ``TypeError`` when
        ``strict`` is on (the default under pytest).
        """
        # codex_telemetry.track_fact repeats this body, to cost one Python call.
        try:  # free unless it raises (zero-cost exceptions, Python 3.11+)
            route = self._routes.get(type(fact))
        except Exception:  # a type whose metaclass's __hash__ raises or is None
            route = None
        if route == FILTER:
            next(self._filtered)
        elif route == DISABLED:
            next(self._disabled)
        elif route == ACCEPT:
            # _enqueue's common case, inline: one Python call fewer per fact.
            queue = self._queue
            if (
                self._worker_started
                and queue.qsize() < self._max_queue
                and self._worker_ident != _get_ident()
            ):
                next(self._accepted)
                queue.put(fact)
            else:
                self._enqueue(fact)
        else:
            self._track_special(fact, route)

    def _close(self) -> bool:
        """Route every later fact to ``after_shutdown``; True for the first call."""
        with self._lock:
            first = self._routes is not AFTER_SHUTDOWN_ROUTES
            self._routes = AFTER_SHUTDOWN_ROUTES
        return first

    def _fact_counts(self, stranded: int) -> tuple[int, int, int, Mapping[str, int]]:
        """Facts accepted, filtered, deduplicated and dropped by reason, for the stats;
        ``stranded`` facts were queued after the worker stopped, so dropped after all."""
        dropped = {
            **{reason: counter.value for reason, counter in self._dropped.items()},
            "after_shutdown": self._dropped["after_shutdown"].value + stranded,
            "disabled": count_value(self._disabled),
        }
        return (
            count_value(self._accepted) - stranded,
            count_value(self._filtered),
            self._dedupe.deduplicated.value,
            MappingProxyType(dropped),
        )

    def _track_special(self, fact: Any, route: int | None) -> None:
        if route is None:
            try:
                base = base_fact_type(fact, self._routes)
            except Exception:  # see track_fact: a type that cannot be hashed
                base = None
            if base is None:
                self._refuse(fact)
                return
            route = self._routes[base]  # a subclass of a fact type: treat it as its base
            if route == FILTER:
                next(self._filtered)
                return
            if route == DISABLED:
                next(self._disabled)
                return
            if route == ACCEPT:
                self._enqueue(fact)
                return
        if route == FILTER_NOTICE:
            next(self._filtered)
            self._on_filtered(fact)
            return
        if route == AFTER_SHUTDOWN:
            self._dropped["after_shutdown"].increment()
            self._notices.fact_dropped("after_shutdown")
            return
        verdict = self._dedupe.admit(fact, route)
        if verdict == ADMIT:
            self._enqueue(fact)
        elif verdict == EMPTY:
            self._dropped["empty"].increment()
            self._notices.fact_dropped("empty")
        elif verdict == MALFORMED:
            self._refuse(fact, "a malformed ")

    def _refuse(self, value: object, malformed: str = "") -> None:
        self._dropped["invalid"].increment()
        try:
            name = f"{type(value).__module__}.{type(value).__qualname__}"
        except Exception:  # any type, however odd, is the caller's: never raised on
            name = "an object of an unnamed type"
        message = (
            "codex_telemetry.track_fact() takes a fact from codex_telemetry.facts, "
            f"not {malformed}{name}"
        )
        if self._strict:
            raise TypeError(message)
        self._errors.notice(
            "invalid", "codex_telemetry: %s; it was dropped", message, level=logging.ERROR
        )

    def _enqueue(self, fact: Fact) -> None:
        # qsize() then put() may overshoot the bound by the number of racing threads;
        # that keeps the hot path lock-free and the queue still bounded.
        if self._queue.qsize() >= self._max_queue:
            self._dropped["queue_full"].increment()
            self._notices.fact_dropped("queue_full")
            return
        if not self._worker_started and not self._start_worker():
            return
        if self._worker_ident == _get_ident():
            # Tracked from inside the pipeline (a logging handler or a sink): looping
            # it back would feed the SDK its own output.
            self._dropped["reentrant"].increment()
            self._notices.fact_dropped("reentrant")
            return
        next(self._accepted)
        self._queue.put(fact)

    def _start_worker(self) -> bool:
        with self._lock:
            if self._starting:
                # Only the thread that holds the lock gets here: a signal handler that
                # interrupted this very start. Waiting for it would wait for itself.
                self._dropped["reentrant"].increment()
                return False
            # Set before anything is checked: a handler that runs before this line finds
            # nothing started and does the whole start itself; one that runs after it is
            # refused above; and the checks below see what such a handler did.
            self._starting = True
            try:
                if self._routes is AFTER_SHUTDOWN_ROUTES:
                    self._dropped["after_shutdown"].increment()
                    return False
                if self._worker_started:
                    return True
                try:
                    ident = self._worker.start()
                except Exception:  # e.g. no new threads while the interpreter shuts down
                    self._dropped["no_worker"].increment()
                    self._errors.report("worker_start", "starting the worker")
                    return False
                self._worker_ident = ident
                self._worker_started = True
                self._on_worker_start()
                return True
            finally:
                self._starting = False

    def _on_worker_start(self) -> None:
        """Called once, under the lock, when the worker has started."""

    def _on_filtered(self, fact: object) -> None:
        """Called for a fact of a ``FILTER_NOTICE`` route (counted already)."""
