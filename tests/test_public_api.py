"""The package's public face: exactly the documented names, each with a docstring."""

from __future__ import annotations

import inspect

import codex_telemetry
from codex_telemetry import testing

DOCUMENTED = [
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


def test_all_is_the_documented_names_sorted() -> None:
    assert codex_telemetry.__all__ == DOCUMENTED


def test_every_public_name_exists_and_explains_itself() -> None:
    for name in codex_telemetry.__all__:
        value = getattr(codex_telemetry, name)
        if name != "__version__":
            assert inspect.getdoc(value), f"codex_telemetry.{name} has no docstring"


def test_the_sdk_spec_names_are_all_public() -> None:
    # sdk.md section 1.
    for name in (
        "init",
        "track_fact",
        "shutdown",
        "TelemetrySettings",
        "AnalyticsReducer",
        "skill_id_for_local_skill",
        "normalize_path_for_skill_id",
        "facts",
    ):
        assert name in codex_telemetry.__all__
    client_methods = ("track_fact", "flush", "shutdown", "stats")
    for method in client_methods:
        assert callable(getattr(codex_telemetry.Telemetry, method))


def test_the_testing_helpers_are_public() -> None:
    assert testing.__all__ == ["EventCapture", "InMemorySink", "capture_events"]


def test_every_fact_type_is_exported_from_facts() -> None:
    for name in codex_telemetry.facts.__all__:
        assert hasattr(codex_telemetry.facts, name), name
