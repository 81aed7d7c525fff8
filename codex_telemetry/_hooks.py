"""What the program decides about its events before they leave: ``before_send`` and the
event type filter.

The worker hands each batch the reducer produced to :meth:`EventHooks.apply`, before any
sink sees it. An event whose type is excluded (``event_types.exclude``, or not in
``event_types.include``) is dropped and counted. ``before_send`` then receives the
event's wire dict, a fresh one it may change in place: what it returns becomes the event
every sink encodes (the OTLP record, the file line, the backend request), None drops it.
A hook that raises, or returns something that is not a wire event, is counted and logged
through the client's internal-error policy, and the event is sent unchanged.
"""

from __future__ import annotations

import dataclasses
import keyword
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from codex_telemetry import events as _events
from codex_telemetry._stats import Counter
from codex_telemetry.events import AnalyticsEvent, AppServerClient, to_wire
from codex_telemetry.facts import RuntimeMetadata

if TYPE_CHECKING:
    from codex_telemetry._internal_errors import InternalErrors

__all__ = ["EVENT_TYPES", "EventHooks", "event_from_wire", "wire_dict"]


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

# Values that need no conversion to be wire JSON.
_SCALARS: Final = frozenset({str, int, bool, float, type(None)})
# Sub-objects a connection shares between its events: converted once, copied per event.
_SHARED: Final = (AppServerClient, RuntimeMetadata)
_SHARED_LIMIT: Final = 1024
_shared_wire: dict[int, tuple[object, dict[str, Any]]] = {}


def _plain(value: Any) -> Any:
    """``to_wire(value)``, with the wire form of a shared sub-object remembered."""
    if type(value) in _SHARED:
        entry = _shared_wire.get(id(value))
        if entry is None or entry[0] is not value:
            if len(_shared_wire) >= _SHARED_LIMIT:
                _shared_wire.clear()
            # Holding the object keeps its id from being reused while the entry lives.
            entry = (value, to_wire(value))
            _shared_wire[id(value)] = entry
        return dict(entry[1])  # a copy: the hook may change it in place
    return to_wire(value)


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


def _compile(cls: type[AnalyticsEvent]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Two functions written out for ``cls``'s fields: its wire dict (equal to
    ``to_dict``, several times faster than walking the fields), and whether a wire dict
    still holds exactly the event's values."""
    top = cls.top_level_fields
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    scalar = {f.name: _holds_scalar(f.type) for f in fields}
    params = [f.name for f in fields if f.name not in top]

    def value(name: str) -> str:
        return f"e.{name}" if scalar[name] else f"P(e.{name})"

    def same(name: str, where: str) -> str:
        if scalar[name]:
            return f"{where}[{name!r}] is e.{name}"
        return f"{where}[{name!r}] == W(e.{name})"

    top_items = "".join(f"{name!r}: e.{name}, " for name in top)
    param_items = ", ".join(f"{name!r}: {value(name)}" for name in params)
    checks = " and ".join(
        [f"len(w) == {len(top) + 2}", f"len(p) == {len(params)}", "w['event_type'] == T"]
        + [same(name, "w") for name in top]
        + [same(name, "p") for name in params]
    )
    source = (
        f"def build(e):\n    return {{'event_type': T, {top_items}"
        f"'event_params': {{{param_items}}}}}\n"
        f"def unchanged(w, e):\n    p = w['event_params']\n    return {checks}\n"
    )
    namespace: dict[str, Any] = {"T": cls.event_type, "P": _plain, "W": _wire_of}
    exec(source, namespace)
    return namespace["build"], namespace["unchanged"]


def _wire_of(value: Any) -> Any:
    """The wire form of a non-scalar field's value, for comparison (not to be changed)."""
    if type(value) in _SHARED:
        entry = _shared_wire.get(id(value))
        if entry is not None and entry[0] is value:
            return entry[1]
    return to_wire(value)


_compiled: dict[type, tuple[Callable[..., Any], Callable[..., Any]] | None] = {}


def _compiled_for(cls: type) -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    if cls not in _compiled:
        plain = getattr(
            cls, "to_dict", None
        ) is AnalyticsEvent.to_dict and dataclasses.is_dataclass(cls)
        _compiled[cls] = _compile(cls) if plain else None
    return _compiled[cls]


def wire_dict(event: AnalyticsEvent) -> dict[str, Any]:
    """``event.to_dict()``, faster: a new dict sharing nothing mutable with the event."""
    compiled = _compiled.get(type(event)) or _compiled_for(type(event))
    if compiled is None:
        return event.to_dict()
    built: dict[str, Any] = compiled[0](event)
    return built


def _unchanged(wire: dict[str, Any], event: AnalyticsEvent) -> bool:
    """True when ``wire`` (made by :func:`wire_dict`) still holds exactly ``event``."""
    compiled = _compiled.get(type(event))
    if compiled is None:
        return False
    try:
        return bool(compiled[1](wire, event))
    except (KeyError, TypeError):  # a key taken out, event_params replaced, ...
        return False


# --- back from a dict to an event ------------------------------------------------------

_SHAPES_LIMIT: Final = 64
_shapes: dict[tuple[str, tuple[str, ...], tuple[str, ...]], type[AnalyticsEvent]] = {}


def _shape_class(
    event_type: str, top: tuple[str, ...], params: tuple[str, ...]
) -> type[AnalyticsEvent]:
    """An event class with exactly these keys (the sinks encode events by their fields)."""
    key = (event_type, top, params)
    cls = _shapes.get(key)
    if cls is not None:
        return cls
    for name in (*top, *params):
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
            raise TypeError(f"key {name!r} is not a Python identifier")
    if len(set(top) | set(params)) != len(top) + len(params):
        raise TypeError("a key is both at the top level and in event_params")
    if len(_shapes) >= _SHAPES_LIMIT:
        # Each shape is a class the encoders keep a plan for: bounded.
        raise TypeError(f"more than {_SHAPES_LIMIT} different event shapes")
    cls = dataclasses.make_dataclass(
        "ChangedEvent",
        [(name, Any) for name in (*top, *params)],
        bases=(AnalyticsEvent,),
        namespace={"event_type": event_type, "top_level_fields": top},
        frozen=True,
        slots=True,
    )
    _shapes[key] = cls
    return cls


def event_from_wire(wire: Any, original: AnalyticsEvent) -> AnalyticsEvent:
    """The event whose wire object is ``wire``, reusing ``original``'s unchanged
    sub-objects; raises ``TypeError`` when ``wire`` is not a wire event."""
    if type(wire) is not dict:
        raise TypeError(f"before_send returned {type(wire).__name__}, not a dict or None")
    event_type = wire.get("event_type")
    params = wire.get("event_params")
    if not isinstance(event_type, str) or type(params) is not dict:
        raise TypeError(
            "before_send returned a dict without a string event_type and an event_params dict"
        )
    cls: type[AnalyticsEvent] = type(original)
    top = cls.top_level_fields
    names = _field_names(cls)
    same_shape = (
        event_type == cls.event_type
        and len(wire) == len(top) + 2
        and len(params) + len(top) == len(names)
        and all(name in wire for name in top)
        and all(name in params or name in top for name in names)
    )
    if not same_shape:
        extra = tuple(key for key in wire if key not in ("event_type", "event_params"))
        shaped = _shape_class(event_type, extra, tuple(params))
        return shaped(**{name: wire[name] for name in extra}, **params)
    values = dict(params)
    for name in top:
        values[name] = wire[name]
    for name in _structured_fields(cls):
        old = getattr(original, name)
        # An unchanged sub-object stays the very object: the encoders share its bytes.
        if values[name] is not old and _wire_of(old) == values[name]:
            values[name] = old
    return cls(**values)


_structured: dict[type, tuple[str, ...]] = {}


def _structured_fields(cls: type) -> tuple[str, ...]:
    """The fields of ``cls`` whose wire form is not the value itself (objects, lists)."""
    names = _structured.get(cls)
    if names is None:
        fields = dataclasses.fields(cls)
        names = _structured[cls] = tuple(f.name for f in fields if not _holds_scalar(f.type))
    return names


_names: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _names.get(cls)
    if names is None:
        names = _names[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


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
        before_send = self._before_send
        for event in events:
            if self._filtering:
                kind = event.event_type
                if kind in exclude or (include is not None and kind not in include):
                    self.filtered.increment()
                    continue
            if before_send is None:
                kept.append(event)
                continue
            wire = wire_dict(event)
            try:
                result = before_send(wire)
                if result is None:
                    self.dropped.increment()
                    continue
                if result is wire and _unchanged(result, event):
                    kept.append(event)
                else:
                    kept.append(event_from_wire(result, event))
            except Exception:
                self.failed.increment()
                kept.append(event)
                self.errors.report(
                    "before_send",
                    f"running before_send on a {event.event_type} event (sent unchanged)",
                )
        return kept
