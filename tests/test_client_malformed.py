"""Facts built around validation reach track_fact's caller-side checks: never a raise."""

from __future__ import annotations

import pytest

import codex_telemetry
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


class _RaisingHashMeta(type):
    def __hash__(cls) -> int:
        raise RuntimeError("no hash for you")


class _UnhashableMeta(type):
    __hash__ = None  # type: ignore[assignment]


class _RaisingHash(metaclass=_RaisingHashMeta):
    pass


class _Unhashable(metaclass=_UnhashableMeta):
    pass


ODD_VALUES = [_RaisingHash(), _Unhashable()]


@pytest.mark.parametrize("value", ODD_VALUES, ids=["hash_raises", "hash_none"])
@pytest.mark.parametrize("enabled", [True, False])
def test_a_value_whose_type_cannot_be_hashed_is_counted_invalid_not_raised(
    value: object, enabled: bool
) -> None:
    client = Telemetry(load_settings(strict=False, enabled=enabled), sink=InMemorySink())
    try:
        client.track_fact(value)  # type: ignore[arg-type]
        assert client.stats().facts_dropped["invalid"] == 1
        assert client.stats().facts_accepted == 0
    finally:
        client.shutdown()


@pytest.mark.parametrize("value", ODD_VALUES, ids=["hash_raises", "hash_none"])
def test_the_module_track_fact_never_raises_for_a_value_whose_type_cannot_be_hashed(
    value: object,
) -> None:
    client = codex_telemetry.init(strict=False, exporter="none")
    try:
        codex_telemetry.track_fact(value)  # type: ignore[arg-type]
        assert client.stats().facts_dropped["invalid"] == 1
    finally:
        codex_telemetry.shutdown()


@pytest.mark.parametrize("value", ODD_VALUES, ids=["hash_raises", "hash_none"])
def test_strict_mode_raises_type_error_for_a_value_whose_type_cannot_be_hashed(
    value: object,
) -> None:
    client = Telemetry(load_settings(strict=True), sink=InMemorySink())
    try:
        with pytest.raises(TypeError, match=r"takes a fact from codex_telemetry\.facts"):
            client.track_fact(value)  # type: ignore[arg-type]
    finally:
        client.shutdown()
