"""One bounded state table for the reducer and the observer.

Both keep state that the protocol may never close (a request never answered, a turn that
never completes), so every table of theirs needs the same four things: a count limit,
eviction of entries left idle, counters of what was evicted, and a preference in what
goes first. :class:`BoundedTable` holds them once, so that the code using it says only
which entries exist and which ones others need.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["BoundedTable", "Now"]

K = TypeVar("K")
V = TypeVar("V")


class Now:
    """The current time of a group of tables, set by their owner (one clock read per step)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0


class BoundedTable(Generic[K, V]):
    """A mapping of at most ``capacity`` entries, ordered from least to most recently used.

    Eviction policy, the same for every table:

    - *Full*: adding a new key to a full table first evicts one entry: the oldest one
      marked a dead end (:meth:`mark_dead_end`: state that can never be used again), else
      the least recently used entry that nothing holds (:meth:`hold`), else, when every
      entry is held, the least recently used one anyway. Held entries passed over count
      as used.
    - *Idle*: :meth:`evict_idle` evicts entries unused since a deadline, oldest first; a
      held entry is never evicted for idleness, it counts as used instead.
    - Every eviction is counted in :attr:`evictions`; removing an entry with :meth:`pop`
      is not an eviction. ``on_remove`` sees every value that leaves the table, however it
      leaves, so that what the value held can be released.

    Holds are counted per key and may name keys not (or no longer) in the table: an entry
    added later under a held key is protected at once.
    """

    __slots__ = (
        "_dead_ends",
        "_entries",
        "_holds",
        "_now",
        "_on_remove",
        "_used",
        "capacity",
        "evictions",
    )

    def __init__(
        self,
        capacity: int,
        *,
        now: Now | None = None,
        on_remove: Callable[[V], object] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("a bounded table holds at least one entry")
        self.capacity = capacity
        self.evictions = 0
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._used: dict[K, float] = {}
        self._holds: dict[K, int] = {}
        self._dead_ends: dict[K, None] = {}
        self._now = now if now is not None else Now()
        self._on_remove = on_remove

    # --- reading ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)

    def get(self, key: K) -> V | None:
        """The entry of ``key``, without counting it as used."""
        return self._entries.get(key)

    def values(self) -> Iterator[V]:
        """The entries, least recently used first."""
        return iter(self._entries.values())

    def held(self) -> dict[K, int]:
        """How many holds each held key has."""
        return dict(self._holds)

    def dead_ends(self) -> list[K]:
        """The keys marked dead ends, oldest mark first."""
        return list(self._dead_ends)

    # --- writing ---------------------------------------------------------------------

    def put(self, key: K, value: V) -> None:
        """Set ``key``'s entry (as most recently used); a new key may evict one first."""
        entries = self._entries
        if key in entries:
            old = entries[key]
            entries[key] = value
            entries.move_to_end(key)
            self._dead_ends.pop(key, None)
            if self._on_remove is not None and old is not value:
                self._on_remove(old)
        else:
            if len(entries) >= self.capacity:
                self._make_room()
            entries[key] = value
        self._used[key] = self._now.value

    def use(self, key: K) -> V | None:
        """The entry of ``key``, now counted as most recently used; None if absent."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
            self._used[key] = self._now.value
        return value

    def pop(self, key: K) -> V | None:
        """Remove ``key``'s entry and return it (not an eviction); None if absent."""
        value = self._entries.pop(key, None)
        if value is not None:
            self._forget(key, value)
        return value

    def evict(self, key: K) -> None:
        """Remove ``key``'s entry, if any, as an eviction."""
        value = self._entries.pop(key, None)
        if value is not None:
            self.evictions += 1
            self._forget(key, value)

    def mark_dead_end(self, key: K) -> None:
        """``key``'s entry can never be used again: it is the first to go when full."""
        if key in self._entries:
            self._dead_ends[key] = None

    def hold(self, key: K) -> None:
        """Something still needs ``key``'s entry: protect it until :meth:`release`."""
        self._holds[key] = self._holds.get(key, 0) + 1

    def release(self, key: K) -> None:
        """Undo one :meth:`hold` of ``key``."""
        count = self._holds[key] - 1
        if count:
            self._holds[key] = count
        else:
            del self._holds[key]

    def evict_idle(self, deadline: float) -> None:
        """Evict every entry unused since ``deadline`` that nothing holds."""
        entries, used, holds = self._entries, self._used, self._holds
        while entries:
            key = next(iter(entries))
            if used[key] > deadline:
                break
            if key in holds:
                entries.move_to_end(key)
                used[key] = self._now.value
                continue
            self.evict(key)

    # --- policy ----------------------------------------------------------------------

    def _make_room(self) -> None:
        if self._dead_ends:
            self.evict(next(iter(self._dead_ends)))
            return
        entries, holds = self._entries, self._holds
        if holds:
            now = self._now.value
            for _ in range(len(entries)):
                key = next(iter(entries))
                if key not in holds:
                    self.evict(key)
                    return
                entries.move_to_end(key)
                self._used[key] = now
        self.evict(next(iter(entries)))

    def _forget(self, key: K, value: V) -> None:
        del self._used[key]
        self._dead_ends.pop(key, None)
        if self._on_remove is not None:
            self._on_remove(value)
