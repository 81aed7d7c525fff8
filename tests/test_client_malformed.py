"""Facts built around validation reach track_fact's caller-side checks: never a raise."""

from __future__ import annotations

import pytest

from codex_telemetry._client import Telemetry
from codex_telemetry._settings import load_settings
from codex_telemetry.facts import AppMentioned, AppUsed, PluginUsed, SkillInvoked
from codex_telemetry.testing import InMemorySink


@pytest.mark.parametrize("fact_type", [AppUsed, PluginUsed, SkillInvoked, AppMentioned])
def test_a_fact_missing_its_fields_is_counted_invalid_not_raised(fact_type: type) -> None:
    client = Telemetry(load_settings(strict=False), sink=InMemorySink())
    try:
        broken: object = object.__new__(fact_type)  # skips the dataclass's own validation
        client.track_fact(broken)  # type: ignore[arg-type]
        assert client.stats().facts_dropped["invalid"] == 1
        assert client.stats().facts_accepted == 0
    finally:
        client.shutdown()


def test_strict_mode_raises_type_error_for_a_malformed_fact() -> None:
    client = Telemetry(load_settings(strict=True), sink=InMemorySink())
    try:
        with pytest.raises(TypeError, match=r"not a malformed codex_telemetry\.facts\.AppUsed"):
            client.track_fact(object.__new__(AppUsed))
    finally:
        client.shutdown()
