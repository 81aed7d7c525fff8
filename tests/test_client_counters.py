"""Counters read without itertools' pickle support, which Python 3.14 removes."""

from __future__ import annotations

import itertools

from codex_telemetry._client import Telemetry
from codex_telemetry._settings import load_settings
from codex_telemetry._stats import Counter
from codex_telemetry.testing import InMemorySink
from tests.test_client import gated_facts


class _CountWithoutPickle(itertools.count):  # type: ignore[type-arg]
    """An itertools.count as Python 3.14 has it (3.12 and 3.13 warn on __reduce__)."""

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("itertools objects no longer support pickling")


def test_a_counter_is_read_without_pickle_support() -> None:
    counter = Counter()
    counter._count = _CountWithoutPickle()
    counter.increment()
    counter.add(2)
    assert counter.value == 3


def test_stats_are_read_without_pickle_support() -> None:
    client = Telemetry(load_settings(strict=False), sink=InMemorySink())
    try:
        client._filtered = _CountWithoutPickle()
        for fact in gated_facts()[:2]:
            client.track_fact(fact)
        assert client.stats().facts_filtered == 2
    finally:
        client.shutdown()
