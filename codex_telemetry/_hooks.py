"""What the program decides about its events before they leave: ``before_send`` and the
event type filter.

The worker hands each batch the reducer produced to :meth:`EventHooks.apply`, before any
sink sees it. An event whose type is excluded (``event_types.exclude``, or not in
``event_types.include``) is dropped and counted. ``before_send`` then receives the
event's wire dict, a fresh one it may change in place, made of :class:`HookDict` and
:class:`HookList`, which note being changed; what it returns is sent, and None drops it.
The dict it got, returned with nothing in it changed, sends the event itself. Any other
result with the event's own type and keys, in order, travels on as a new event of the
event's class holding the returned values (its shared sub-objects the event's own while
the hook left them equal), so that every sink encodes it exactly as it would the event;
any other result travels as a :class:`~codex_telemetry.events.WireEvent`, which every
sink encodes from that dict (the OTLP record, the file line, the backend request, the
spool's line). A hook that raises, or returns something that is not a wire event, is
counted and logged through the client's internal-error policy, and the event is sent
unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from codex_telemetry import events as _events
from codex_telemetry._stats import Counter
from codex_telemetry.events import (
    AnalyticsEvent,
    AppServerClient,
    WireEvent,
    field_names,
    own_dict_layout,
    params_fields,
    to_wire,
    wire_event,
    wire_shape,
)
from codex_telemetry.facts import RuntimeMetadata

if TYPE_CHECKING:
    from codex_telemetry._internal_errors import InternalErrors

__all__ = ["EVENT_TYPES", "EventHooks", "HookDict", "HookList", "wire_dict"]


def _event_types() -> frozenset[str]:
    names: set[str] = set()
    pending: list[type[AnalyticsEvent]] = [AnalyticsEvent]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        event_type = cls.__dict__.get("event_type")
        if isinstance(event_type, str) and cls.__module__ == _events.__name__:
            names.add(event_type)
    return frozenset(names)


EVENT_TYPES: Final = _event_types()
"""Every ``event_type`` the SDK produces."""

# Sub-objects a connection shares between its events. The hook gets a fresh dict of each;
# one it leaves as it was is sent as the event's own object again, whose encoding every
# sink keeps, so an unchanged event costs the encoders what it costs without a hook.
_SHARED: Final = (AppServerClient, RuntimeMetadata)

# Annotations of the event fields that hold a plain value, which ``to_wire`` returns as it
# is (a str enum member included): such a field is copied into the wire dict directly.
_SCALAR_ANNOTATIONS: Final = frozenset(
    {"str", "int", "bool", "float", "None", "ThreadSource", "InitializationMode", "RpcTransport"}
)


def _holds_scalar(annotation: object) -> bool:
    if not isinstance(annotation, str):
        return False
    return all(
        part.strip() in _SCALAR_ANNOTATIONS or part.strip().startswith("Literal[")
        for part in annotation.split("|")
    )


def _holds_scalar_tuple(annotation: object) -> bool:
    """Whether the field holds a tuple of plain values, or None (sent as a list)."""
    if not isinstance(annotation, str):
        return False
    parts = [part.strip() for part in annotation.split("|")]
    tuples = [part for part in parts if part.startswith("tuple[") and part.endswith(", ...]")]
    return (
        len(tuples) == 1
        and all(part == "None" for part in parts if part not in tuples)
        and _holds_scalar(tuples[0][len("tuple[") : -len(", ...]")])
    )


def _shared_class(annotation: object) -> type | None:
    """The shared sub-object class a field holds, when all of its fields are plain values."""
    for cls in _SHARED:
        if annotation == cls.__name__ and all(
            _holds_scalar(f.type) for f in dataclasses.fields(cls)
        ):
            return cls
    return None


def _other(result: Any, event: AnalyticsEvent) -> WireEvent:
    """What a hook returned, when it is not the event's own shape: any wire event."""
    if not isinstance(result, dict):
        raise TypeError(f"before_send returned {type(result).__name__}, not a dict or None")
    if type(result.get("event_type")) is not str or not isinstance(
        result.get("event_params"), dict
    ):
        raise TypeError(
            "before_send returned a dict without a string event_type and an event_params dict"
        )
    return wire_event(result)


# A connection's shared sub-objects as wire dicts, by id: (object, dict). The hook gets a
# copy of the dict, never the dict itself; holding the object keeps its id from being
# reused while the entry lives.
_SHARED_LIMIT: Final = 1024
_canonical: dict[int, tuple[object, dict[str, Any] | None]] = {}


def _canonical_of(value: object) -> tuple[object, dict[str, Any] | None]:
    """``value``'s entry in the cache of shared sub-objects; ``(value, None)`` when it is
    not one (it is then converted on its own each time)."""
    if type(value) not in _SHARED:
        return (value, None)
    if len(_canonical) >= _SHARED_LIMIT:
        _canonical.clear()
    entry = _canonical[id(value)] = (value, to_wire(value))
    return entry


class HookDict(dict):  # type: ignore[type-arg]
    """The dicts ``before_send`` receives: plain dicts that note being changed.

    Every method that changes a dict marks it ``changed`` first, so that an event whose
    dicts come back unchanged is sent as the event itself, with nothing compared, copied
    or rebuilt. ``changed`` only ever errs towards True: a dict the flag calls changed is
    checked as any other result is. What is not seen is a write that bypasses the
    dict's own methods: ``dict.__setitem__(params, ...)``, ``params.__init__(...)``, or
    a C extension's ``PyDict_SetItem``.
    """

    changed = False
    """True once any method that changes the dict ran on it (set on the instance)."""

    def __setitem__(self, key: Any, value: Any) -> None:
        self.changed = True
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        self.changed = True
        dict.__delitem__(self, key)

    def __ior__(self, other: Any) -> HookDict:  # type: ignore[misc]
        self.changed = True
        dict.update(self, other)
        return self

    def clear(self) -> None:
        self.changed = True
        dict.clear(self)

    def pop(self, *args: Any) -> Any:
        self.changed = True
        return dict.pop(self, *args)

    def popitem(self) -> tuple[Any, Any]:
        self.changed = True
        return dict.popitem(self)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self.changed = True
        return dict.setdefault(self, key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.changed = True
        dict.update(self, *args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy or a pickle of the hook's dict is a plain dict: the flag is the SDK's.
        return (dict, (dict(self),))


class HookList(list):  # type: ignore[type-arg]
    """The lists ``before_send`` receives (a plugin's ``connector_ids``): plain lists
    that note being changed, as :class:`HookDict` does."""

    changed = False
    """True once any method that changes the list ran on it (set on the instance)."""

    def __setitem__(self, index: Any, value: Any) -> None:
        self.changed = True
        list.__setitem__(self, index, value)

    def __delitem__(self, index: Any) -> None:
        self.changed = True
        list.__delitem__(self, index)

    def __iadd__(self, other: Any) -> HookList:  # type: ignore[misc]
        self.changed = True
        list.extend(self, other)
        return self

    def __imul__(self, count: Any) -> HookList:  # type: ignore[misc]
        self.changed = True
        list.__imul__(self, count)
        return self

    def append(self, value: Any) -> None:
        self.changed = True
        list.append(self, value)

    def extend(self, values: Any) -> None:
        self.changed = True
        list.extend(self, values)

    def insert(self, index: Any, value: Any) -> None:
        self.changed = True
        list.insert(self, index, value)

    def pop(self, *args: Any) -> Any:
        self.changed = True
        return list.pop(self, *args)

    def remove(self, value: Any) -> None:
        self.changed = True
        list.remove(self, value)

    def clear(self) -> None:
        self.changed = True
        list.clear(self)

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self.changed = True
        list.sort(self, *args, **kwargs)

    def reverse(self) -> None:
        self.changed = True
        list.reverse(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


def _compile(cls: type[AnalyticsEvent]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Two functions written out for ``cls``'s fields: ``build(event)``, its wire dict
    (equal to ``to_dict``, several times faster than walking the fields), and
    ``run(event, hook)``, which passes the same dict, made of :class:`HookDict`, to
    ``hook`` and returns None, the event itself, a new event of ``cls``, or the
    :class:`WireEvent` of what it returned (``TypeError`` when that is no wire event).

    A class whose fields are exactly its ``event_params``, in order, gets its dict as a
    copy of the instance's own ``__dict__`` (one C call) with the values that are not
    plain replaced by fresh ones; any other class writes the dict out. A shared
    sub-object (a connection's client or runtime) is a copy of its cached wire dict.

    ``run`` returns the event itself when the hook returned the dict it got and no dict
    in it was changed (and the event holds no other container, which could have been
    changed unseen). Otherwise it checks only what decides how the result is encoded: a
    result with the event's own keys in their order gets the class's shape at once, and
    a shared sub-object the hook left equal to the one it got (its keys in the same
    order, its booleans the same objects) is mapped back to the event's own, whose
    encoding the sinks keep. With the event's type too, and all its shared sub-objects
    mapped back, the result is a new event of ``cls``; any other result is a
    :class:`WireEvent`, and one that is not the event's shape goes the general way.
    """
    top = cls.top_level_fields
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    params = params_fields(cls)
    namespace: dict[str, Any] = {
        "T": cls.event_type,
        "P": to_wire,
        "W": WireEvent,
        "NEW": object.__new__,
        "OTHER": _other,
        "S": wire_shape(top, params),
        "PK": params,
        "WK": ("event_type", *top, "event_params"),
        "CACHE": _canonical,
        "CANON": _canonical_of,
        "C": cls,
        "SET": object.__setattr__,
        "H": HookDict,
        "HL": HookList,
        "LISTS": (list, HookList),
        "DICTS": (dict, HookDict),
        "SETD": dict.__setitem__,
    }
    # The SDK's classes keep their fields in ``__dict__``, in wire order: copy it.
    copied = not top and own_dict_layout(cls) and tuple(f.name for f in fields) == params
    head: list[str] = []
    fixes: list[str] = []
    checks: list[str] = []
    swaps: list[str] = []
    unfixes: list[str] = []
    kept: list[str] = []
    values: dict[str, str] = {}
    # What ``run`` gives the hook, where it differs from ``build``: HookDicts throughout.
    hook_head: list[str] = []
    hook_fixes: list[str] = []
    hook_values: dict[str, str] = {}
    hook_lists: list[str] = []
    # What makes the hook's untouched dict the event itself.
    unchanged = ["w is a", "not a.changed", "not p.changed"]
    for f in fields:
        shared = _shared_class(f.type)
        if _holds_scalar(f.type):
            values[f.name] = hook_values[f.name] = f"e.{f.name}"
            continue
        if shared is None:
            # Mostly None (a turn's error, a plugin's connectors): no call for that.
            values[f.name] = hook_values[f.name] = f"(None if (o := e.{f.name}) is None else P(o))"
            fixes.append(
                f"    if (o := p[{f.name!r}]) is not None:\n        p[{f.name!r}] = P(o)\n"
            )
            if _holds_scalar_tuple(f.type):  # a HookList, which notes being changed
                m = len(hook_lists)
                hook_lists.append(f.name)
                hook_fixes.append(
                    f"    if (o := p[{f.name!r}]) is not None:\n"
                    f"        l{m} = HL(o)\n        SETD(p, {f.name!r}, l{m})\n"
                    f"    else:\n        l{m} = None\n"
                )
                unchanged.append(f"(l{m} is None or not l{m}.changed)")
            else:
                hook_fixes.append(
                    f"    if (o := p[{f.name!r}]) is not None:\n        SETD(p, {f.name!r}, P(o))\n"
                )
                # Anything else it holds could be changed unseen: only an event without
                # one is its own result.
                unchanged.append(f"e.{f.name} is None")
            if str(f.type).startswith("tuple["):  # sent as a list, kept as a tuple
                unfixes.append(
                    f"        if type(o := q[{f.name!r}]) in LISTS:\n"
                    f"            q[{f.name!r}] = tuple(o)\n"
                )
            continue
        n = len(swaps)
        head.append(f"    s{n} = e.{f.name}\n    c{n} = (CACHE.get(id(s{n})) or CANON(s{n}))[1]\n")
        hook_head.append(f"    g{n} = P(s{n}) if c{n} is None else H(c{n})\n")
        values[f.name] = f"(P(s{n}) if c{n} is None else c{n}.copy())"
        hook_values[f.name] = f"g{n}"
        fixes.append(f"    p[{f.name!r}] = {values[f.name]}\n")
        hook_fixes.append(f"    SETD(p, {f.name!r}, g{n})\n")
        unchanged.extend([f"c{n} is not None", f"not g{n}.changed"])
        namespace[f"K{n}"] = field_names(shared)
        # Equal is not enough: the keys' order counts, and for a boolean 1 == True, but
        # the hook's 1 is sent as 1.
        same_booleans = "".join(
            f" and x{n}[{m.name!r}] is c{n}[{m.name!r}]"
            for m in dataclasses.fields(shared)
            if "bool" in str(m.type)
        )
        where = "w" if f.name in top else "p"
        checks.append(
            f"    x{n} = {where}[{f.name!r}]\n"
            f"    k{n} = c{n} is not None and type(x{n}) in DICTS and x{n} == c{n}"
            f" and tuple(x{n}) == K{n}{same_booleans}\n"
        )
        kept.append(f"k{n}")
        swaps.append(
            f"    if k{n}:\n"
            f"        if d is None:\n            d = {{id(x{n}): s{n}}}\n"
            f"        else:\n            d[id(x{n})] = s{n}\n"
        )
        unfixes.insert(0, f"        q[{f.name!r}] = s{n}\n")
    prelude = "".join(head)
    hook_prelude = prelude + "".join(hook_head)
    if copied:
        prelude += "    p = e.__dict__.copy()\n" + "".join(fixes)
        hook_prelude += "    p = H(e.__dict__)\n" + "".join(hook_fixes)
        literal = "{'event_type': T, 'event_params': p}"
        # The event's own shape, type and shared sub-objects: a new event of its class
        # holding the returned values, which every sink encodes as it would the event.
        # The returned dict stays as the hook left it (the program may keep it): the
        # event's values that differ from it in type are set in a copy, a plain dict.
        own = (
            "        q = p.copy()\n"
            if unfixes
            else "        q = p if type(p) is dict else p.copy()\n"
        )
        typed = (
            f"    if {' and '.join([*kept, 't == T'])}:\n"
            f"{own}{''.join(unfixes)}"
            "        r = NEW(C)\n        SET(r, '__dict__', q)\n        return r\n"
        )
    else:
        top_items = "".join(f"{name!r}: {values[name]}, " for name in top)
        param_items = ", ".join(f"{name!r}: {values[name]}" for name in params)
        literal = f"{{'event_type': T, {top_items}'event_params': {{{param_items}}}}}"
        hook_params = ", ".join(f"{name!r}: {hook_values[name]}" for name in params)
        hook_prelude += f"    p = H({{{hook_params}}})\n"
        typed = ""
    hook_top = "".join(f"{name!r}: {hook_values[name]}, " for name in top)
    hook_literal = f"H({{'event_type': T, {hook_top}'event_params': p}})"
    # A result whose top-level keys are not laid out as the wire object's goes the
    # general way, which lays them out so.
    top_check = "    if tuple(w) != WK:\n        return OTHER(w, e)\n"
    if top:
        top_values = "".join(f"w[{name!r}], " for name in top)
        make_values = f"    v = [{top_values}*p.values()]\n"
    else:
        make_values = "    v = p.values()\n"
    source = (
        f"def build(e):\n{prelude}    return {literal}\n"
        f"def run(e, hook):\n{hook_prelude}    a = {hook_literal}\n    w = hook(a)\n"
        f"    if {' and '.join(unchanged)}:\n        return e\n"
        "    if w is None:\n        return None\n"
        f"    if type(w) not in DICTS or len(w) != {len(top) + 2}:\n        return OTHER(w, e)\n"
        "    p = w.get('event_params')\n"
        "    t = w.get('event_type')\n"
        "    if type(p) not in DICTS or type(t) is not str:\n        return OTHER(w, e)\n"
        f"{top_check}"
        "    if tuple(p) != PK:\n        return OTHER(w, e)\n"
        f"{''.join(checks)}{typed}{make_values}"
        "    d = None\n"
        f"{''.join(swaps)}"
        # The carrier's slots set directly: a third of what calling the class costs.
        "    r = NEW(W)\n    r.event_type = t\n    r.wire = w\n    r.shape = S\n"
        "    r.values = v\n    r.shared = d\n    return r\n"
    )
    exec(source, namespace)
    return namespace["build"], namespace["run"]


def _generic(cls: type) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """For an event class that is not a plain dataclass: its own ``to_dict``."""

    def build(event: AnalyticsEvent) -> dict[str, Any]:
        return event.to_dict()

    def run(event: AnalyticsEvent, hook: Callable[[Any], Any]) -> WireEvent | None:
        result = hook(event.to_dict())
        return None if result is None else _other(result, event)

    return build, run


_compiled: dict[type, tuple[Callable[..., Any], Callable[..., Any]]] = {}
# The ``run`` of each class, on its own: one lookup an event on the stage's path.
_runs: dict[type, Callable[..., Any]] = {}


def _compiled_for(cls: type) -> tuple[Callable[..., Any], Callable[..., Any]]:
    compiled = _compiled.get(cls)
    if compiled is None:
        plain = getattr(
            cls, "to_dict", None
        ) is AnalyticsEvent.to_dict and dataclasses.is_dataclass(cls)
        compiled = _compiled[cls] = _compile(cls) if plain else _generic(cls)
        _runs[cls] = compiled[1]
    return compiled


def _run_for(cls: type) -> Callable[..., Any]:
    return _compiled_for(cls)[1]


def wire_dict(event: AnalyticsEvent) -> dict[str, Any]:
    """``event.to_dict()``, faster: a new dict sharing nothing mutable with the event."""
    built: dict[str, Any] = (_compiled.get(type(event)) or _compiled_for(type(event)))[0](event)
    return built


# --- the stage ---------------------------------------------------------------------------


class EventHooks:
    """The event type filter and ``before_send`` of one client, with their counters.

    ``include`` None lets every type through. Runs on the worker's thread only.
    """

    def __init__(
        self,
        *,
        before_send: Callable[[dict[str, Any]], dict[str, Any] | None] | None,
        include: frozenset[str] | None,
        exclude: frozenset[str],
        errors: InternalErrors,
    ) -> None:
        self._before_send = before_send
        self._include = include
        self._exclude = exclude
        self._filtering = include is not None or bool(exclude)
        self.errors = errors
        self.filtered = Counter()
        """Events of a type the settings exclude."""
        self.dropped = Counter()
        """Events ``before_send`` returned None for."""
        self.failed = Counter()
        """Events ``before_send`` raised on or returned a non-event for (sent unchanged)."""

    def apply(self, events: Sequence[AnalyticsEvent]) -> list[AnalyticsEvent]:
        """The events to send, in order: filtered by type, then passed to ``before_send``."""
        kept: list[AnalyticsEvent] = []
        include, exclude = self._include, self._exclude
        before_send, filtering, runs = self._before_send, self._filtering, _runs
        for event in events:
            if filtering:
                kind = event.event_type
                if kind in exclude or (include is not None and kind not in include):
                    self.filtered.increment()
                    continue
            if before_send is None:
                kept.append(event)
                continue
            run = runs.get(type(event)) or _run_for(type(event))
            try:
                result = run(event, before_send)
            except Exception:
                self.failed.increment()
                kept.append(event)
                self.errors.report(
                    "before_send",
                    f"running before_send on a {event.event_type} event (sent unchanged)",
                )
                continue
            if result is None:
                self.dropped.increment()
                continue
            kept.append(result)
        return kept
