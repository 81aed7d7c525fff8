"""Switch instrumentations of other libraries on and off by name.

``codex_telemetry.init(instrument=["openai_codex"])`` calls :func:`instrument` for each
name; ``Telemetry.shutdown()`` calls :func:`uninstrument`. Each instrumentation lives in
its own module, imported only when asked for, so that the package never imports (or
requires) the library it instruments.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Protocol

from codex_telemetry.facts import Fact

__all__ = ["FactTracker", "check_name", "instrument", "instrumented", "uninstrument"]

_logger = logging.getLogger(__name__)

# name -> the module that implements it (``instrument(tracker)``, ``uninstrument()``,
# ``is_instrumented()``).
_MODULES = {"openai_codex": "codex_telemetry._instrument_openai_codex"}


class FactTracker(Protocol):
    """Where an instrumentation sends facts: a ``Telemetry`` client, for one."""

    def track_fact(self, fact: Fact) -> None:
        """Report one fact; must not block nor raise."""


def check_name(name: str) -> str:
    """The module implementing instrumentation ``name``, without importing it.

    Raises:
        ValueError: ``name`` is unknown; the message lists the known names.
    """
    module_name = _MODULES.get(name)
    if module_name is None:
        known = ", ".join(repr(known) for known in sorted(_MODULES))
        raise ValueError(f"unknown instrumentation {name!r}; known: {known}")
    return module_name


def _module_for(name: str) -> _Instrumentation:
    module: _Instrumentation = importlib.import_module(check_name(name))
    return module


class _Instrumentation(Protocol):
    def instrument(self, tracker: FactTracker) -> None: ...

    def uninstrument(self) -> None: ...

    def is_instrumented(self) -> bool: ...


def instrument(name: str, telemetry: FactTracker) -> None:
    """Switch the instrumentation ``name`` on, sending its facts to ``telemetry``.

    Idempotent: instrumenting again only redirects the facts to the new ``telemetry``.

    Raises:
        ValueError: ``name`` is unknown, or the library it instruments is not installed
            or has a shape this version cannot hook.
    """
    _module_for(name).instrument(telemetry)
    _logger.debug("instrumentation %r is on", name)


def uninstrument(name: str) -> None:
    """Switch the instrumentation ``name`` off, restoring the library exactly as it was.

    Does nothing when it is not on.
    """
    _module_for(name).uninstrument()
    _logger.debug("instrumentation %r is off", name)


def instrumented() -> tuple[str, ...]:
    """The names of the instrumentations that are on, sorted."""
    names = []
    for name, module_name in sorted(_MODULES.items()):
        # A module never imported was never switched on (and must not be imported now).
        module = sys.modules.get(module_name)
        if module is not None and module.is_instrumented():
            names.append(name)
    return tuple(names)
