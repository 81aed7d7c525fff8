"""The SDK's threads, started with the host program's signals blocked in them.

A signal sent to a process (``kill``, a pool terminating its workers, Ctrl-C) is handled
by whichever thread the kernel picks. Python runs its handlers only in the main thread,
and a main thread blocked in a lock or a semaphore wakes up for them only when the
signal came to it: one that lands in another thread leaves the handler waiting for as
long as the main thread sleeps. A ``multiprocessing`` pool worker whose main thread
waits for its task queue, terminated with ``SIGTERM`` while the SDK handles that signal
(see :mod:`codex_telemetry._lifecycle`), then never exits, and the pool's parent waits
for it forever. So every thread the SDK starts blocks the signals programs handle, and
they all reach the main thread (or a thread of the program's own). The mask is set in
the starting thread around ``start()``, which the new thread inherits from its first
instruction (and so do the threads it starts, such as gRPC's), then restored.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Final

__all__ = ["start_thread"]

# The asynchronous signals programs install handlers for; synchronous ones (SIGSEGV,
# SIGFPE, ...) go to the thread that caused them whatever its mask.
_HOST_SIGNALS: Final = frozenset(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM")
    if hasattr(signal, name)
)


def start_thread(target: Callable[[], object], name: str) -> threading.Thread:
    """Start ``target`` in a daemon thread named ``name`` that blocks the host's signals.

    Raises what ``Thread.start`` raises (``RuntimeError`` during interpreter shutdown).
    """
    thread = threading.Thread(target=target, name=name, daemon=True)
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no per-thread signal masks
        thread.start()
        return thread
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HOST_SIGNALS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return thread
