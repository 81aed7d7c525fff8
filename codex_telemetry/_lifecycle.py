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
import dataclasses
import json
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    from codex_telemetry._internal_errors import InternalErrors
    from codex_telemetry._stats import TelemetryStats

__all__ = [
    "INHERITED_INIT_VARIABLE",
    "SHUTDOWN_GRACE",
    "InheritedInit",
    "abandon_in_child",
    "bounded",
    "call_with_deadline",
    "child_still_starting",
    "claim_orphaned_events",
    "forget_init_for_children",
    "inherited_init",
    "record_init_for_children",
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

    from codex_telemetry._threads import start_thread  # noqa: PLC0415 - at shutdown only

    try:
        helper = start_thread(call, "codex-telemetry-shutdown")
    except RuntimeError:  # no new threads during interpreter finalisation
        call()
        return bool(result and result[0])
    helper.join(timeout + SHUTDOWN_GRACE)
    return bool(result and result[0])


# --- exit -------------------------------------------------------------------------------


def register_exit_hook(hook: Callable[[], None], timeout: float = 1.0) -> None:
    """Run ``hook`` at interpreter exit, once however often it is registered; in a child
    of multiprocessing, also at the end of the child (which skips ``atexit``). ``timeout``
    is the most the hook waits (the client's ``shutdown_timeout``)."""
    global _longest_exit_hook  # noqa: PLW0603 - one process-wide bound
    _longest_exit_hook = max(_longest_exit_hook, timeout)
    atexit.unregister(hook)
    atexit.register(hook)
    _register_child_exit_hook(hook)


def unregister_exit_hook(hook: Callable[[], None]) -> None:
    """Forget ``hook``; harmless while the interpreter is finalising."""
    with contextlib.suppress(Exception):  # the interpreter may be finalising
        atexit.unregister(hook)
        _unregister_child_exit_hook(hook)


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
    # A child of multiprocessing clears the finalizers it inherited; its clients register
    # their own when their workers start.
    _child_exit_hooks.clear()
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


# --- processes started by multiprocessing ----------------------------------------------

# multiprocessing ends its children with ``os._exit`` right after
# ``multiprocessing.util._exit_function``, so ``atexit`` hooks never run there; that
# function runs the finalizers registered with an ``exitpriority``, the stdlib's own way to
# clean up in a child. Below zero: they run after the pools and daemonic processes of the
# child itself were terminated, so that their spooled events can be claimed.
_CHILD_EXIT_PRIORITY: Final = -1
_child_exit_hooks: dict[Callable[[], None], Any] = {}


def _multiprocessing_parent_pid() -> int | None:
    """The pid of the process that started this one through ``multiprocessing``, if any.

    Read without importing ``multiprocessing``: a child of it has imported it already.
    """
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is None:
        return None
    try:
        parent = multiprocessing.parent_process()
    except Exception:  # an unusual multiprocessing state is no reason to fail
        return None
    return None if parent is None else parent.pid


def _register_child_exit_hook(hook: Callable[[], None]) -> None:
    if hook in _child_exit_hooks or _multiprocessing_parent_pid() is None:
        return
    from multiprocessing import util  # noqa: PLC0415 - already imported in such a child

    _child_exit_hooks[hook] = util.Finalize(
        None, _run_child_exit_hook, args=(hook,), exitpriority=_CHILD_EXIT_PRIORITY
    )
    _handle_sigterm_in_child()


def _unregister_child_exit_hook(hook: Callable[[], None]) -> None:
    finalizer = _child_exit_hooks.pop(hook, None)
    if finalizer is not None:
        finalizer.cancel()


# A pool ends its workers with SIGTERM (``Pool.__exit__``, ``terminate()``), often while
# they run the exit hook above: with the default action, what they had not delivered
# would be lost. So in a child of multiprocessing whose SIGTERM still has its default
# action (nobody installed a handler: a program's own handler is never replaced), the
# first client to start installs one that runs the exit hooks, bounded by
# ``shutdown_timeout``, then ends the process by the default action as before. A SIGTERM
# that arrives while the hooks run waits for them. Installed from the main thread only
# (the only one that may).
_exit_hooks_running = False
_sigterm_deferred = False
# The longest shutdown_timeout of the clients whose hooks may run on SIGTERM, and the
# margin past it after which the process is killed outright: the exit hooks bound their
# own waits, and this is the backstop that makes a SIGTERM end the process whatever
# they run into (a lock the interrupted main thread held, say).
_longest_exit_hook = 1.0
_SIGTERM_BACKSTOP_MARGIN: Final = 3.0


def _run_child_exit_hook(hook: Callable[[], None]) -> None:
    global _exit_hooks_running  # noqa: PLW0603 - one process-wide state
    program_handler = _hold_program_sigterm()
    _exit_hooks_running = True
    try:
        hook()
    finally:
        _exit_hooks_running = False
        if program_handler is not None:
            _release_program_sigterm(program_handler)
        elif _sigterm_deferred:
            _terminate_by_default_action()


# A pool sends SIGTERM to a worker that may already be running the exit hooks (the pool
# first asks it to stop, then terminates it). A program's own handler that raises there
# (``SystemExit``, as is common) would cut the hooks short and lose what they were
# delivering. So while they run, the program's handler is set aside: a SIGTERM waits, as
# with the SDK's own handler, and is sent again once the hooks end, to the program's
# handler, which then runs as it would have (only later, by at most shutdown_timeout).
def _hold_program_sigterm() -> Any:
    """Set the program's SIGTERM handler aside for the exit hooks; it, or None when the
    program has none (or this is not the main thread, where handlers live)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    with contextlib.suppress(Exception):  # no signal module, or an exotic platform
        import signal  # noqa: PLC0415

        handler = signal.getsignal(signal.SIGTERM)
        if callable(handler) and handler is not _on_sigterm_in_child:
            signal.signal(signal.SIGTERM, _on_sigterm_in_child)
            return handler
    return None


def _release_program_sigterm(handler: Any) -> None:
    """Give SIGTERM back to the program's ``handler``, and send it again if one came."""
    global _sigterm_deferred  # noqa: PLW0603 - one process-wide state
    import signal  # noqa: PLC0415

    signal.signal(signal.SIGTERM, handler)
    if _sigterm_deferred:
        _sigterm_deferred = False
        os.kill(os.getpid(), signal.SIGTERM)


def _handle_sigterm_in_child() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    with contextlib.suppress(Exception):  # no signal module, or an exotic platform
        import signal  # noqa: PLC0415

        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm_in_child)


def _on_sigterm_in_child(signum: int, frame: object) -> None:
    global _sigterm_deferred  # noqa: PLW0603 - one process-wide state
    if _exit_hooks_running:
        _sigterm_deferred = True  # the hooks are running below this frame: let them end
        return
    _start_sigterm_backstop(len(_child_exit_hooks) * _longest_exit_hook + _SIGTERM_BACKSTOP_MARGIN)
    for hook in list(_child_exit_hooks):
        _run_child_exit_hook(hook)
    _terminate_by_default_action()


def _start_sigterm_backstop(seconds: float) -> None:
    """End the process with SIGKILL if it is still alive ``seconds`` from now: what the
    exit hooks had spooled stays for the next process; only waiting is cut short."""
    import signal  # noqa: PLC0415

    from codex_telemetry._threads import start_thread  # noqa: PLC0415

    def kill() -> None:
        time.sleep(seconds)
        os.kill(os.getpid(), signal.SIGKILL)

    with contextlib.suppress(RuntimeError):  # no new threads while finalising
        start_thread(kill, "codex-telemetry-sigterm-backstop")


def _terminate_by_default_action() -> None:
    import signal  # noqa: PLC0415

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


# --- init() in children that do not inherit the parent's memory --------------------------

# Children started with the spawn or forkserver method run a fresh interpreter: the
# parent's client is not there. init() leaves its arguments in this variable, which those
# children inherit with the rest of the environment; the module-level ``track_fact`` of such
# a child, finding no client, makes one from them. The name starts with an underscore so
# that the settings never take it for a ``CODEX_TELEMETRY_*`` setting.
INHERITED_INIT_VARIABLE: Final = "_CODEX_TELEMETRY_INIT"
_SECRET_SETTINGS: Final = frozenset({("otlp", "headers"), ("codex_backend", "token")})
_URL_SETTINGS: Final = frozenset({("otlp", "endpoint"), ("codex_backend", "base_url")})


def _has_credentials(url: object) -> bool:
    """True for a URL that names a user or password (``https://user:pass@host``)."""
    from urllib.parse import urlsplit  # noqa: PLC0415

    try:
        parts = urlsplit(str(url))
        return parts.username is not None or parts.password is not None
    except ValueError:
        return True  # unreadable: kept out, to be safe


@dataclasses.dataclass(frozen=True)
class InheritedInit:
    """What a child needs to repeat its parent's ``init()``, or why it cannot."""

    arguments: dict[str, Any]
    instrument: tuple[str, ...]
    withheld: tuple[str, ...]
    """Arguments that are not passed to children (secrets, a logger provider)."""
    parent_pid: int


def record_init_for_children(
    overrides: Mapping[str, Any], instrument: Sequence[str], *, logger_provider_given: bool
) -> None:
    """Leave ``init()``'s arguments where children started by multiprocessing find them.

    Secrets (``otlp.headers``, ``codex_backend.token``) are never written: a child whose
    parent gave one as an argument says so once and stays without a client; given through
    the environment, they reach the child as every variable does.
    """
    withheld: list[str] = ["logger_provider"] if logger_provider_given else []
    try:
        arguments = _arguments_for_children(overrides, withheld)
        text = json.dumps(
            {
                "pid": os.getpid(),
                "arguments": arguments,
                "instrument": list(instrument),
                "withheld": sorted(set(withheld)),
            }
        )
    except Exception:  # a value with no JSON form: the child is told to call init()
        text = json.dumps({"pid": os.getpid(), "withheld": ["an argument that is not JSON"]})
    os.environ[INHERITED_INIT_VARIABLE] = text


def _arguments_for_children(overrides: Mapping[str, Any], withheld: list[str]) -> Any:
    """``overrides`` as JSON values, one group a dict, with the secrets moved to
    ``withheld`` (by name)."""
    import pydantic_core  # noqa: PLC0415 - init() has pydantic loaded already

    arguments: dict[str, Any] = {}
    for key, given in overrides.items():
        if given is None:
            continue
        value = given.model_dump(exclude_unset=True) if hasattr(given, "model_dump") else given
        group, _, field = key.partition("__")
        if field:
            value = {field: value}
        if isinstance(value, Mapping):
            value = {name: item for name, item in value.items() if item is not None}
            for name in list(value):
                if (group, name) in _SECRET_SETTINGS or (
                    (group, name) in _URL_SETTINGS and _has_credentials(value[name])
                ):
                    withheld.append(f"{group}.{name}")
                    del value[name]
            existing = arguments.get(group)
            if isinstance(existing, dict):
                existing.update(value)
                continue
        arguments[group] = value
    return pydantic_core.to_jsonable_python(arguments)


def forget_init_for_children() -> None:
    """After the default client's shutdown, children start without one."""
    text = os.environ.get(INHERITED_INIT_VARIABLE)
    if text is not None and _recorded_pid(text) == os.getpid():
        del os.environ[INHERITED_INIT_VARIABLE]


def _recorded_pid(text: str) -> int | None:
    try:
        pid = json.loads(text).get("pid")
    except (ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) else None


def child_still_starting() -> bool:
    """True while a spawned child of multiprocessing imports its parent's main module,
    before it knows its parent: too early to decide whether it inherits an ``init()``."""
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is None:
        return False
    try:
        return bool(getattr(multiprocessing.current_process(), "_inheriting", False))
    except Exception:  # an unusual multiprocessing state: decide now
        return False


def inherited_init() -> InheritedInit | None:
    """The parent's ``init()``, when this process was started by multiprocessing from the
    process that recorded it (never in an unrelated program that inherited the variable)."""
    text = os.environ.get(INHERITED_INIT_VARIABLE)
    if text is None:
        return None
    parent_pid = _multiprocessing_parent_pid()
    if parent_pid is None:
        return None
    try:
        record = json.loads(text)
        if record.get("pid") != parent_pid:
            return None
        return InheritedInit(
            arguments=dict(record.get("arguments", {})),
            instrument=tuple(record.get("instrument", ())),
            withheld=tuple(record.get("withheld", ())),
            parent_pid=parent_pid,
        )
    except (ValueError, TypeError, AttributeError):
        return None


# --- spooled events of processes that ended ------------------------------------------------


def claim_orphaned_events(worker: object) -> None:
    """Take over what processes that ended left undelivered in the spool this client
    sends to (a pool worker terminated with ``SIGTERM``, a child killed), so that this
    process delivers it. Called at every flush and shutdown; does nothing without a spool.
    """
    spool = getattr(worker, "spool", None)
    claim = getattr(spool, "claim_orphans", None)
    if claim is not None:
        claim()
