"""Say it once, when it first happens: what went wrong with the user's data or setup.

Internal faults (bugs, a sink that raises) go through :mod:`._internal_errors`. This module
is for the other kind of trouble, the user's to fix: facts dropped because the queue is
full, a collector that refuses every request, protocol facts filtered while an
instrumentation is on, collection switched off. Each kind of notice is logged on the
``codex_telemetry`` logger the first time it happens, with what to do about it, then at
most once per interval, saying how many repeats were not logged in between; the lines
written are counted (``stats().notices``).

A notice can be given from any thread, a signal handler included: occurrences are counted
without a lock, and the lock that decides whether to log is never waited for.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from codex_telemetry._internal_errors import DEFAULT_INTERVAL, handle_internal_errors
from codex_telemetry._stats import count_value

if TYPE_CHECKING:
    from codex_telemetry._settings import TelemetrySettings

__all__ = [
    "Notices",
    "collection_off_reason",
    "describe_destination",
    "log_collection_off",
]

_logger = logging.getLogger(__name__)

_UNAFFECTED: Final = "; your program is unaffected"

# Reasons whose loss is said elsewhere: at exit (``shutdown``), or as an internal fault.
_SAID_ELSEWHERE: Final = frozenset({"shutdown", "encoding_error", "internal_error", "sink_error"})
_RETRIED_HTTP: Final = frozenset({429, 502, 503, 504})
_RETRIED_GRPC: Final = frozenset(
    {"unavailable", "resource_exhausted", "deadline_exceeded", "cancelled", "aborted"}
    | {"out_of_range", "data_loss"}
)
_CREDENTIAL_STATUSES: Final = frozenset({"401", "403", "unauthenticated", "permission_denied"})
_ADDRESS_STATUSES: Final = frozenset({"404", "405", "not_found", "unimplemented"})

# Answers of a collector that is there but busy or down for a while: retried, and when a
# batch's retries run out, said as such.
_BUSY: Final = {
    "http_429": "HTTP 429",
    "http_502": "HTTP 502",
    "http_503": "HTTP 503",
    "http_504": "HTTP 504",
    "grpc_resource_exhausted": "RESOURCE_EXHAUSTED",
    "grpc_unavailable": "UNAVAILABLE",
}

_FACT_DROPS: Final[dict[str, str]] = {
    "queue_full": (
        "codex_telemetry: facts are being dropped: the queue of facts waiting for the "
        "worker is full (max_queue_size=%(max_queue_size)d); raise max_queue_size "
        "(CODEX_TELEMETRY_MAX_QUEUE_SIZE) if your program tracks facts in bursts"
    ),
    "after_shutdown": (
        "codex_telemetry: a fact tracked after shutdown() was dropped; track facts before "
        "shutting down, or call init() again to start a new client"
    ),
    "empty": (
        "codex_telemetry: a SkillInvoked or AppMentioned fact with an empty list was "
        "dropped: it makes no event"
    ),
    "reentrant": (
        "codex_telemetry: a fact tracked from the SDK's own worker thread (a logging "
        "handler or a sink calling track_fact) was dropped, so that the SDK is not fed "
        "its own output"
    ),
}


def describe_destination(settings: TelemetrySettings, *, own_sink: bool = True) -> str:
    """Where the events go, for a message: ``the collector at http://...``.

    ``own_sink``: the sink was made from ``settings`` (not given by the program), so its
    address is the one in the settings.
    """
    if not own_sink:
        return "the sink"
    # Imported here: the settings are loaded by the time a client describes its sink.
    from codex_telemetry._settings import mask_url_userinfo  # noqa: PLC0415

    if settings.exporter == "otlp":
        return f"the collector at {mask_url_userinfo(settings.otlp.endpoint)}"
    if settings.exporter == "codex_backend":
        return f"the Codex backend at {mask_url_userinfo(settings.codex_backend.base_url)}"
    if settings.exporter == "file":
        return f"the file {settings.file.path}"
    return f"the {settings.exporter} sink"


class Notices:
    """The say-once notices of one client (made anew in a forked child)."""

    __slots__ = (
        "_clock",
        "_credentials",
        "_destination",
        "_endpoint_setting",
        "_interval",
        "_last_logged",
        "_lines",
        "_lock",
        "_logger",
        "_next",
        "_occurrences",
        "_values",
    )

    def __init__(
        self,
        *,
        destination: str = "the sink",
        credentials: str | None = None,
        endpoint_setting: str | None = None,
        values: Mapping[str, Any] | None = None,
        logger: logging.Logger = _logger,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._destination = destination
        self._credentials = credentials
        self._endpoint_setting = endpoint_setting
        self._values = dict(values or {})
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._occurrences: dict[str, itertools.count[int]] = {}
        self._last_logged: dict[str, int] = {}
        self._next: dict[str, float] = {}
        self._lines: dict[str, itertools.count[int]] = {}

    @classmethod
    def for_settings(cls, settings: TelemetrySettings, *, own_sink: bool = True) -> Notices:
        """The notices of a client built from ``settings``."""
        credentials = endpoint_setting = None
        if own_sink and settings.exporter == "otlp":
            credentials = "otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS)"
            endpoint_setting = (
                "otlp.endpoint (CODEX_TELEMETRY_OTLP__ENDPOINT) and otlp.protocol "
                "(CODEX_TELEMETRY_OTLP__PROTOCOL)"
            )
        elif own_sink and settings.exporter == "codex_backend":
            credentials = (
                "codex_backend.token (CODEX_TELEMETRY_CODEX_BACKEND__TOKEN) and "
                "codex_backend.account_id (CODEX_TELEMETRY_CODEX_BACKEND__ACCOUNT_ID)"
            )
            endpoint_setting = "codex_backend.base_url (CODEX_TELEMETRY_CODEX_BACKEND__BASE_URL)"
        return cls(
            destination=describe_destination(settings, own_sink=own_sink),
            credentials=credentials,
            endpoint_setting=endpoint_setting,
            values={
                "max_queue_size": settings.max_queue_size,
                "max_export_queue_size": settings.max_export_queue_size,
            },
        )

    @property
    def destination(self) -> str:
        """Where the events go, as the notices say it."""
        return self._destination

    def counts(self) -> dict[str, int]:
        """Lines logged so far, by kind."""
        return {kind: count_value(lines) for kind, lines in list(self._lines.items())}

    def say(self, kind: str, message: str, *args: object, level: int = logging.WARNING) -> bool:
        """Log ``message % args`` if ``kind`` was not logged in the last interval.

        True when a line was logged. Never raises, never waits for a lock.
        """
        occurrences = self._occurrences.get(kind)
        if occurrences is None:
            occurrences = self._occurrences.setdefault(kind, itertools.count(1))
        seen = next(occurrences)
        now = self._clock()
        if now < self._next.get(kind, now):
            return False  # the common case of a repeat: no lock taken
        if not self._lock.acquire(blocking=False):
            return False  # another thread (or the frame this handler interrupted) is at it
        try:
            if now < self._next.get(kind, now):
                return False
            self._next[kind] = now + self._interval
            skipped = seen - self._last_logged.get(kind, 0) - 1
            self._last_logged[kind] = seen
            lines = self._lines.get(kind)
            if lines is None:
                lines = self._lines[kind] = itertools.count()
            next(lines)
        finally:
            self._lock.release()
        if skipped > 0:
            message += f" ({skipped} more since the last report)"
        with contextlib.suppress(Exception):  # a broken handler is not ours to crash on
            self._logger.log(level, message, *args)
        return True

    # --- what is said --------------------------------------------------------------------

    def fact_dropped(self, reason: str) -> None:
        """A fact was dropped before the queue, for ``reason`` (``queue_full``, ...)."""
        template = _FACT_DROPS.get(reason)
        if template is None:
            template = f"codex_telemetry: facts are being dropped ({reason})"
        self.say(f"fact_dropped:{reason}", (template % self._values) + _UNAFFECTED)

    def events_dropped(self, reason: str, count: int) -> None:
        """``count`` events were given up on for ``reason`` (a sink's drop counter)."""
        if reason in _SAID_ELSEWHERE:
            return
        kind = f"events_dropped:{reason}"
        where = self._destination
        if reason == "export_queue_full":
            self.say(
                kind,
                "codex_telemetry: %d events were dropped: the queue of events waiting for "
                "%s is full (max_export_queue_size=%d); raise max_export_queue_size "
                "(CODEX_TELEMETRY_MAX_EXPORT_QUEUE_SIZE) if events come in bursts" + _UNAFFECTED,
                count,
                where,
                self._values.get("max_export_queue_size", 0),
            )
            return
        if reason == "rejected":
            self.say(
                kind,
                "codex_telemetry: %s rejected %d events (a partial success); its logs say "
                "why" + _UNAFFECTED,
                where,
                count,
            )
            return
        refusal = _refusal(reason)
        if refusal is None and reason in _BUSY:
            # Reachable, but it kept saying it is busy or down, or asked to wait past the
            # time a batch is retried: "check that it is reachable" would mislead.
            self.say(
                kind,
                "codex_telemetry: %d events could not be delivered to %s: it answered %s "
                "(busy or unavailable) until the batch's retries ran out, or asked to wait "
                "longer than they last (Retry-After); check its load and its logs" + _UNAFFECTED,
                count,
                where,
                _BUSY[reason],
            )
            return
        if refusal is None:
            self.say(
                kind,
                "codex_telemetry: %d events could not be delivered to %s (%s) after "
                "retrying: check that it is running and reachable" + _UNAFFECTED,
                count,
                where,
                reason,
            )
            return
        status, shown = refusal
        if status in _CREDENTIAL_STATUSES and self._credentials is not None:
            advice = f"check {self._credentials}"
        elif status in _ADDRESS_STATUSES and self._endpoint_setting is not None:
            advice = f"check {self._endpoint_setting}"
        else:
            advice = "its logs say why"
        self.say(
            kind,
            "codex_telemetry: %s refused %d events with %s, and will likely refuse every "
            "later request: %s" + _UNAFFECTED,
            where,
            count,
            shown,
            advice,
            level=logging.ERROR,
        )

    def filtered_while_instrumented(self, names: list[str]) -> None:
        """A protocol fact was filtered by the flag while an instrumentation is on."""
        self.say(
            "filtered_while_instrumented",
            "codex_telemetry: the %s instrumentation reports thread and turn facts, but "
            "general_analytics is off, so they are filtered and make no events; set "
            "general_analytics=True (CODEX_TELEMETRY_GENERAL_ANALYTICS=true) to collect them",
            " and ".join(repr(name) for name in names),
        )


def _refusal(reason: str) -> tuple[str, str] | None:
    """``(status, shown)`` when ``reason`` is a refusal that a retry will not change."""
    if reason.startswith("http_"):
        status = reason[5:]
        if status.isdigit() and int(status) not in _RETRIED_HTTP:
            return status, f"HTTP {status}"
    elif reason.startswith("grpc_"):
        status = reason[5:]
        if status not in _RETRIED_GRPC:
            return status, f"gRPC status {status.upper()}"
    return None


def collection_off_reason(
    settings: TelemetrySettings, overrides: Mapping[str, Any], *, own_sink: bool = True
) -> str | None:
    """Why a client built from ``settings`` (by ``init(**overrides)``) collects nothing,
    naming what switched it off (as ``codex-telemetry config`` says it); None when it
    collects."""
    if settings.enabled and (settings.exporter != "none" or not own_sink):
        return None
    from codex_telemetry._settings import setting_sources  # noqa: PLC0415 - rare path

    name = "enabled" if not settings.enabled else "exporter"
    source = None
    with handle_internal_errors("collection_off", "finding why collection is off"):
        source = setting_sources(type(settings), **overrides)[name]
    if source is not None and source.kind == "opt_out" and source.variable is not None:
        return f"{source.variable}={os.environ.get(source.variable, '')} opts out"
    where = "unknown source"
    if source is not None:
        where = source.variable or source.kind
        if source.kind == "dotenv":
            where = f".env {source.variable}"
    if name == "enabled":
        return f"enabled is false ({where})"
    return f"exporter is 'none' ({where})"


def log_collection_off(reason: str) -> None:
    """Say, at INFO, that collection is off and why (once per ``init()``)."""
    _logger.info(
        "codex_telemetry: collection is off (%s): facts are counted as dropped 'disabled' "
        "and nothing is sent",
        reason,
    )
