"""Codex app-server product analytics for Python programs, exported over OpenTelemetry.

``import codex_telemetry`` imports almost nothing: each public name is imported the first
time it is used (``codex_telemetry.init``, ``from codex_telemetry import facts``), so a
program pays only for what it calls, when it first calls it.
"""

from __future__ import annotations

from importlib import import_module

from codex_telemetry._errors import ConfigurationError
from codex_telemetry._version import __version__

# Not ``typing.TYPE_CHECKING``: importing ``typing`` would cost more than the rest of this
# module. Type checkers treat any constant of this name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from codex_telemetry import events, facts
    from codex_telemetry._client import Telemetry, ashutdown, init, shutdown, track_fact
    from codex_telemetry._observer import AppServerObserver
    from codex_telemetry._reducer import AnalyticsReducer, ReducerLimits
    from codex_telemetry._settings import TelemetrySettings
    from codex_telemetry._skills import normalize_path_for_skill_id, skill_id_for_local_skill
    from codex_telemetry._stats import TelemetryStats
    from codex_telemetry.events import AnalyticsEvent

__all__ = [
    "AnalyticsEvent",
    "AnalyticsReducer",
    "AppServerObserver",
    "ConfigurationError",
    "ReducerLimits",
    "Telemetry",
    "TelemetrySettings",
    "TelemetryStats",
    "__version__",
    "ashutdown",
    "events",
    "facts",
    "init",
    "normalize_path_for_skill_id",
    "shutdown",
    "skill_id_for_local_skill",
    "track_fact",
]

# Public name -> the module that defines it, imported on first access.
_LAZY: dict[str, str] = {
    "AnalyticsEvent": "codex_telemetry.events",
    "AnalyticsReducer": "codex_telemetry._reducer",
    "AppServerObserver": "codex_telemetry._observer",
    "ReducerLimits": "codex_telemetry._reducer",
    "Telemetry": "codex_telemetry._client",
    "TelemetrySettings": "codex_telemetry._settings",
    "TelemetryStats": "codex_telemetry._stats",
    "ashutdown": "codex_telemetry._client",
    "init": "codex_telemetry._client",
    "normalize_path_for_skill_id": "codex_telemetry._skills",
    "shutdown": "codex_telemetry._client",
    "skill_id_for_local_skill": "codex_telemetry._skills",
    "track_fact": "codex_telemetry._client",
}
_SUBMODULES = frozenset({"events", "facts"})


def _import_lazily(name: str) -> Any:
    if name in _SUBMODULES:
        value: Any = import_module(f"codex_telemetry.{name}")
    elif name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'codex_telemetry' has no attribute {name!r}")
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


# Hidden from type checkers, which would otherwise accept any attribute of the package:
# they see the imports above instead.
if not TYPE_CHECKING:
    __getattr__ = _import_lazily


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
