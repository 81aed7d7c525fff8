"""The bounded state table shared by the reducer and the observer."""

from __future__ import annotations

import pytest

from codex_telemetry._bounded import BoundedTable, Now


def filled(capacity: int, *keys: str, now: Now | None = None) -> BoundedTable[str, int]:
    table: BoundedTable[str, int] = BoundedTable(capacity, now=now)
    for value, key in enumerate(keys):
        table.put(key, value)
    return table


def test_a_full_table_evicts_the_least_recently_used_entry() -> None:
    table = filled(3, "a", "b", "c")
    assert table.use("a") == 0
    table.put("d", 3)
    assert list(table) == ["c", "a", "d"]
    assert table.evictions == 1


def test_replacing_an_entry_evicts_nothing_and_makes_it_the_newest() -> None:
    table = filled(2, "a", "b")
    table.put("a", 9)
    assert list(table) == ["b", "a"]
    assert (table.get("a"), table.evictions) == (9, 0)


def test_get_does_not_count_as_use_and_pop_is_no_eviction() -> None:
    table = filled(2, "a", "b")
    assert table.get("a") == 0
    assert table.use("missing") is None
    assert table.pop("a") == 0
    assert table.pop("a") is None
    assert (list(table), table.evictions) == (["b"], 0)


def test_dead_ends_go_first() -> None:
    table = filled(3, "a", "b", "c")
    table.mark_dead_end("c")
    table.mark_dead_end("missing")  # not in the table: no mark
    table.put("d", 3)
    assert list(table) == ["a", "b", "d"]
    assert table.dead_ends() == []


def test_held_entries_are_passed_over_and_count_as_used() -> None:
    table = filled(3, "a", "b", "c")
    table.hold("a")
    table.put("d", 3)
    assert list(table) == ["c", "a", "d"]
    table.release("a")
    assert table.held() == {}


def test_when_every_entry_is_held_the_oldest_goes_anyway() -> None:
    table = filled(2, "a", "b")
    table.hold("a")
    table.hold("b")
    table.put("c", 2)
    assert list(table) == ["b", "c"]
    assert table.evictions == 1


def test_a_hold_may_come_before_its_entry() -> None:
    table: BoundedTable[str, int] = BoundedTable(1)
    table.hold("a")
    table.hold("a")
    table.release("a")
    assert table.held() == {"a": 1}
    table.put("a", 0)
    table.put("b", 1)  # a is held, but it is the only entry: it goes anyway
    assert list(table) == ["b"]


def test_idle_entries_are_evicted_oldest_first_unless_held() -> None:
    now = Now()
    table = filled(10, "a", "b", now=now)
    now.value = 5.0
    table.put("c", 2)
    table.hold("b")
    now.value = 100.0
    table.evict_idle(deadline=3.0)
    assert list(table) == ["c", "b"]
    assert table.evictions == 1
    # The held entry counted as used at 100: it outlives a later deadline.
    table.release("b")
    table.evict_idle(deadline=50.0)
    assert list(table) == ["b"]


def test_every_value_that_leaves_is_seen_once() -> None:
    removed: list[int] = []
    table: BoundedTable[str, int] = BoundedTable(2, on_remove=removed.append)
    table.put("a", 0)
    table.put("b", 1)
    table.put("a", 2)  # replaced: the old value left
    table.put("c", 3)  # full: b goes
    table.pop("a")
    table.evict("c")
    assert removed == [0, 1, 2, 3]
    assert table.evictions == 2


def test_a_table_holds_at_least_one_entry() -> None:
    with pytest.raises(ValueError, match="at least one"):
        BoundedTable(0)
