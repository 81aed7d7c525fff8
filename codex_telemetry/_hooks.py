"""What the program decides about its events before they leave: ``before_send`` and the
event type filter.

The worker hands each batch the reducer produced to :meth:`EventHooks.apply`, before any
sink sees it. An event whose type is excluded (``event_types.exclude``, or not in
``event_types.include``) is dropped and counted. ``before_send`` then receives the
event's wire dict, a fresh one it may change in place, and what it returns is sent;
None drops it. A result with the event's own type and keys, in order, travels on as a
new event of the event's class holding the returned values (its shared sub-objects the
event's own while the hook left them equal), so that every sink encodes it exactly as it
would the event; any other result travels as a
:class:`~codex_telemetry.events.WireEvent`, which every sink encodes from that dict (the
OTLP record, the file line, the backend request, the spool's line). A hook that raises,
or returns something that is not a wire event, is counted and logged through the
client's internal-error policy, and the event is sent unchanged.
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

__all__ = ["EVENT_TYPES", "EventHooks", "wire_dict"]


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
    if type(result) is not dict:
        raise TypeError(f"before_send returned {type(result).__name__}, not a dict or None")
    if type(result.get("event_type")) is not str or type(result.get("event_params")) is not dict:
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


def _compile(cls: type[AnalyticsEvent]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Two functions written out for ``cls``'s fields: ``build(event)``, its wire dict
    (equal to ``to_dict``, several times faster than walking the fields), and
    ``run(event, hook)``, which passes that dict to ``hook`` and returns None or the
    :class:`WireEvent` of what it returned (``TypeError`` when that is no wire event).

    A class whose fields are exactly its ``event_params``, in order, gets its dict as a
    copy of the instance's own ``__dict__`` (one C call) with the values that are not
    plain replaced by fresh ones; any other class writes the dict out. A shared
    sub-object (a connection's client or runtime) is a copy of its cached wire dict.

    ``run`` checks only what decides how the result is encoded: a result with the
    event's own keys in their order gets the class's shape at once, and a shared
    sub-object the hook left equal to the one it got (its keys in the same order, its
    booleans the same objects) is mapped back to the event's own, whose encoding the
    sinks keep. With the event's type too, and all its shared sub-objects mapped back,
    the result is a new event of ``cls``; any other result is a :class:`WireEvent`, and
    one that is not the event's shape goes the general way.
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
    for f in fields:
        shared = _shared_class(f.type)
        if _holds_scalar(f.type):
            values[f.name] = f"e.{f.name}"
            continue
        if shared is None:
            # Mostly None (a turn's error, a plugin's connectors): no call for that.
            values[f.name] = f"(None if (o := e.{f.name}) is None else P(o))"
            fixes.append(
                f"    if (o := p[{f.name!r}]) is not None:\n        p[{f.name!r}] = P(o)\n"
            )
            if str(f.type).startswith("tuple["):  # sent as a list, kept as a tuple
                unfixes.append(
                    f"        if type(o := q[{f.name!r}]) is list:\n"
                    f"            q[{f.name!r}] = tuple(o)\n"
                )
            continue
        n = len(swaps)
        head.append(f"    s{n} = e.{f.name}\n    c{n} = (CACHE.get(id(s{n})) or CANON(s{n}))[1]\n")
        values[f.name] = f"(P(s{n}) if c{n} is None else c{n}.copy())"
        fixes.append(f"    p[{f.name!r}] = {values[f.name]}\n")
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
            f"    k{n} = c{n} is not None and type(x{n}) is dict and x{n} == c{n}"
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
    if copied:
        prelude += "    p = e.__dict__.copy()\n" + "".join(fixes)
        literal = "{'event_type': T, 'event_params': p}"
        # The event's own shape, type and shared sub-objects: a new event of its class
        # holding the returned values, which every sink encodes as it would the event.
        # The returned dict stays as the hook left it (the program may keep it): the
        # event's values that differ from it in type are set in a copy.
        own = "        q = p.copy()\n" if unfixes else "        q = p\n"
        typed = (
            f"    if {' and '.join([*kept, 't == T'])}:\n"
            f"{own}{''.join(unfixes)}"
            "        r = NEW(C)\n        SET(r, '__dict__', q)\n        return r\n"
        )
    else:
        top_items = "".join(f"{name!r}: {values[name]}, " for name in top)
        param_items = ", ".join(f"{name!r}: {values[name]}" for name in params)
        literal = f"{{'event_type': T, {top_items}'event_params': {{{param_items}}}}}"
        typed = ""
    # A result whose top-level keys are not laid out as the wire object's goes the
    # general way, which lays them out so. A new event of the class is laid out so
    # anyway: a result with no other top-level key is checked only when it is not one.
    layout_check = "    if tuple(w) != WK:\n        return OTHER(w, e)\n"
    if top:
        top_values = "".join(f"w[{name!r}], " for name in top)
        make_values = f"    v = [{top_values}*p.values()]\n"
        top_check, wire_check = layout_check, ""
    else:
        make_values = "    v = p.values()\n"
        top_check, wire_check = "", layout_check
    source = (
        f"def build(e):\n{prelude}    return {literal}\n"
        f"def run(e, hook):\n{prelude}    w = hook({literal})\n"
        "    if w is None:\n        return None\n"
        f"    if type(w) is not dict or len(w) != {len(top) + 2}:\n        return OTHER(w, e)\n"
        "    p = w.get('event_params')\n"
        "    t = w.get('event_type')\n"
        "    if type(p) is not dict or type(t) is not str:\n        return OTHER(w, e)\n"
        f"{top_check}"
        "    if tuple(p) != PK:\n        return OTHER(w, e)\n"
        f"{''.join(checks)}{typed}{wire_check}{make_values}"
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
            # Whatever the hook raises (SystemExit from a library, say, which would end
            # the worker's thread and every event after this one), the event is sent.
            except BaseException:
                self.failed.increment()
                kept.append(event)
                self.errors.report(
                    "before_send",
                    f"before_send failed on a {event.event_type} event, which was sent "
                    "unchanged: the fault is in the hook",
                    template="codex_telemetry: %s",
                )
                continue
            if result is None:
                self.dropped.increment()
                continue
            kept.append(result)
        return kept
