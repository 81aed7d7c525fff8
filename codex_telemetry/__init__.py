"""Codex app-server product analytics for Python programs, exported over OpenTelemetry."""

from codex_telemetry import events, facts
from codex_telemetry._stats import TelemetryStats
from codex_telemetry._version import __version__
from codex_telemetry.events import AnalyticsEvent

__all__ = [
    "AnalyticsEvent",
    "TelemetryStats",
    "__version__",
    "events",
    "facts",
]
