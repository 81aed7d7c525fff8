"""Instrumentation of the ``openai-codex`` SDK: every app-server message crosses an observer.

``openai_codex.client.CodexClient`` owns one ``codex app-server`` process and is the
only place that talks to it: ``_write_message`` writes each JSON-RPC message to the
process's stdin and ``_read_message`` reads each one from its stdout. The synchronous
``Codex`` and the asynchronous ``AsyncCodex``/``AsyncCodexClient`` all go through it, so
wrapping those two methods on the class sees every message of every client the program
creates. Each app-server process gets its own :class:`AppServerObserver` (its own
connection id); a restarted client is a new process, so a new connection.

The wrappers observe a request *before* writing it, so that its response can never be
seen first, and a message *after* reading it. They never raise: the observer swallows
and counts its own faults. ``uninstrument()`` puts the original functions back on the
class, the very same objects.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

from codex_telemetry._instrumentation import FactTracker
from codex_telemetry._observer import AppServerObserver
from codex_telemetry.facts import Fact

__all__ = ["instrument", "is_instrumented", "observer_for", "uninstrument"]

_logger = logging.getLogger(__name__)

_WRITE = "_write_message"
_READ = "_read_message"


class _Hook:
    """The process-wide hook, like the class it patches."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (the class, its original write, its original read) while instrumented.
        self.originals: tuple[type, Any, Any] | None = None
        self.tracker: FactTracker | None = None


_hook = _Hook()
# One observer per app-server process, keyed by the process object's id and forgotten
# when that object is collected (a finalizer runs before its id can be reused). A plain
# dict keeps the lookup on every message at half the cost of a WeakKeyDictionary.
_observers: dict[int, AppServerObserver] = {}


def _track(fact: Fact) -> None:
    # Looked up per fact: instrumenting again redirects the facts of live connections too.
    tracker = _hook.tracker
    if tracker is not None:
        tracker.track_fact(fact)


def _observer(process: Any) -> AppServerObserver | None:
    if process is None or _hook.tracker is None:  # a read that outlived uninstrument()
        return None
    observer = _observers.get(id(process))
    if observer is not None:
        return observer
    with _hook.lock:
        observer = _observers.get(id(process))
        if observer is None:
            try:
                weakref.finalize(process, _observers.pop, id(process), None)
            except TypeError:  # cannot be weakly referenced: not a process we know
                return None
            observer = AppServerObserver(track=_track, rpc_transport="stdio")
            _observers[id(process)] = observer
    return observer


def observer_for(client: Any) -> AppServerObserver | None:
    """The observer of an ``openai_codex`` client's current app-server process, if any.

    ``client`` is a ``CodexClient``, ``AsyncCodexClient``, ``Codex`` or ``AsyncCodex``.
    """
    inner = getattr(client, "_client", client)  # Codex, AsyncCodex
    inner = getattr(inner, "_sync", inner)  # AsyncCodexClient
    process = getattr(inner, "_proc", None)
    return None if process is None else _observers.get(id(process))


def _wrap_write(original: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    @functools.wraps(original)
    def _write_message(self: Any, payload: Any) -> None:
        observer = _observer(getattr(self, "_proc", None))
        if observer is not None:
            observer.observe_sent(payload)
        original(self, payload)

    return _write_message


def _wrap_read(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    @functools.wraps(original)
    def _read_message(self: Any) -> Any:
        # Found before the read, from the process being read. No local may hold the
        # process across the read: when the transport closes, the SDK keeps the error,
        # whose traceback keeps this frame, which would keep the process and its observer.
        observer = _observer(getattr(self, "_proc", None))
        message = original(self)
        if observer is not None:
            observer.observe_received(message)
        return message

    return _read_message


def instrument(tracker: FactTracker) -> None:
    """Hook ``openai_codex``'s transport; facts go to ``tracker``. Idempotent.

    Raises:
        ValueError: ``openai-codex`` is not installed, or its client has no
            ``_write_message``/``_read_message`` to hook.
    """
    try:
        from openai_codex.client import CodexClient  # noqa: PLC0415 - an optional extra
    except ImportError as error:
        raise ValueError(
            "'openai_codex' needs the openai-codex package: "
            "pip install 'codex-telemetry[openai-codex]'"
        ) from error
    with _hook.lock:
        _hook.tracker = tracker
        if _hook.originals is not None:
            return
        write = CodexClient.__dict__.get(_WRITE)
        read = CodexClient.__dict__.get(_READ)
        if not callable(write) or not callable(read):
            raise ValueError(
                "this openai-codex version cannot be instrumented: "
                f"CodexClient.{_WRITE} or CodexClient.{_READ} is missing"
            )
        _hook.originals = (CodexClient, write, read)
        type.__setattr__(CodexClient, _WRITE, _wrap_write(write))
        type.__setattr__(CodexClient, _READ, _wrap_read(read))
    _logger.debug("openai_codex.client.CodexClient is instrumented")


def uninstrument() -> None:
    """Put ``CodexClient``'s own methods back. Does nothing when not instrumented."""
    with _hook.lock:
        originals, _hook.originals, _hook.tracker = _hook.originals, None, None
        _observers.clear()
        if originals is None:
            return
        cls, write, read = originals
        type.__setattr__(cls, _WRITE, write)
        type.__setattr__(cls, _READ, read)


def is_instrumented() -> bool:
    """Whether ``CodexClient`` is hooked now."""
    return _hook.originals is not None
