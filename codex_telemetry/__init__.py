"""Codex app-server product analytics for Python programs, exported over OpenTelemetry."""

from codex_telemetry import events, facts
from codex_telemetry._client import Telemetry, ashutdown, init, shutdown, track_fact
from codex_telemetry._observer import AppServerObserver
from codex_telemetry._reducer import AnalyticsReducer, ReducerLimits
from codex_telemetry._settings import ConfigurationError, TelemetrySettings
from codex_telemetry._skills import normalize_path_for_skill_id, skill_id_for_local_skill
from codex_telemetry._stats import TelemetryStats
from codex_telemetry._version import __version__
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
