"""Analytics events: the reducer's output, in the Codex analytics backend's wire format.

Each event is a frozen value whose fields are its ``event_params`` keys, declared in wire
order, and kept in that order in the instance's ``__dict__``, which the encoders read and
``before_send`` gets a copy of. :meth:`AnalyticsEvent.to_dict` returns the exact wire
object: every key present, ``None`` for an unset value, nested objects as dicts and
sequences as lists. What a ``before_send`` hook returns in another shape travels on as a
:class:`WireEvent`, which holds that dict.
"""

from __future__ import annotations

import dataclasses
import keyword
import operator
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from codex_telemetry.facts import RpcTransport, RuntimeMetadata

__all__ = [
    "AnalyticsEvent",
    "AppMentionedEvent",
    "AppServerClient",
    "AppUsedEvent",
    "CompactionEvent",
    "HookRunEvent",
    "PluginDisabledEvent",
    "PluginEnabledEvent",
    "PluginInstalledEvent",
    "PluginStateEvent",
    "PluginUninstalledEvent",
    "PluginUsedEvent",
    "SkillInvocationEvent",
    "ThreadInitializedEvent",
    "TurnEvent",
    "TurnSteerEvent",
    "WireEvent",
    "WireShape",
    "own_dict_layout",
    "to_wire",
    "wire_event",
    "wire_object",
    "wire_shape",
    "wire_values",
]

_names_by_type: dict[type, tuple[str, ...]] = {}


def field_names(cls: type) -> tuple[str, ...]:
    """The field names of dataclass ``cls``, in order (kept per class)."""
    names = _names_by_type.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        _names_by_type[cls] = names
    return names


_params_by_type: dict[type, tuple[str, ...]] = {}


def params_fields(cls: type[AnalyticsEvent]) -> tuple[str, ...]:
    """The fields of event class ``cls`` that make its ``event_params``, in wire order:
    every field but its ``top_level_fields``. With those, the layout each encoder writes."""
    names = _params_by_type.get(cls)
    if names is None:
        top = cls.top_level_fields
        names = _params_by_type[cls] = tuple(n for n in field_names(cls) if n not in top)
    return names


def to_wire(value: Any) -> Any:
    """Convert a value made of dataclasses, tuples and plain JSON values to plain JSON values.

    Dataclasses become dicts in field order; tuples and lists become lists; mappings are
    converted value by value; anything else is returned as is.
    """
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, tuple | list):
        return [to_wire(item) for item in value]
    if isinstance(value, dict):
        return {key: to_wire(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: to_wire(getattr(value, name)) for name in field_names(type(value))}
    return value


_E = TypeVar("_E", bound=type)


def _fast_init(cls: _E) -> _E:
    """Give the frozen dataclass ``cls`` an ``__init__`` that fills the instance's
    ``__dict__`` in one go: a copy of a dict holding the field names in order, then each
    value stored. The dataclass's own ``__init__`` sets a frozen instance's fields one
    ``object.__setattr__`` at a time, which made a turn event (44 fields) cost about
    10 µs to build; this one costs about half of that. The signature (every field, in
    order, positional or keyword, with its annotation) and frozenness are the
    dataclass's.

    The ``__dict__`` is also what :mod:`codex_telemetry._hooks` copies to make the fresh
    wire dict a ``before_send`` receives, and what the encoders read an event's values
    from, in field order.
    """
    fields = dataclasses.fields(cls)
    for f in fields:
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: event fields take no default")
    names = [f.name for f in fields]
    stores = "".join(f"        d[{name!r}] = {name}\n" for name in names)
    source = (
        "def make(FIELDS, SET):\n"
        f"    def __init__(self, {', '.join(names)}):\n"
        "        d = FIELDS.copy()\n"
        f"{stores}"
        "        SET(self, '__dict__', d)\n"
        "    return __init__\n"
    )
    # The class's module as the function's globals, as the dataclass's own __init__ has,
    # so that typing.get_type_hints() resolves the annotations.
    namespace: dict[str, Any] = {}
    exec(source, vars(sys.modules[cls.__module__]), namespace)
    init = namespace["make"](dict.fromkeys(names), object.__setattr__)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = {**{f.name: f.type for f in fields}, "return": None}
    cls.__init__ = init  # type: ignore[misc]
    _own_dict_classes.add(cls)
    return cls


# The classes whose instances keep their fields in ``__dict__``, in field order.
_own_dict_classes: set[type] = set()


def own_dict_layout(cls: type) -> bool:
    """True when instances of ``cls`` keep their fields, and nothing else, in
    ``__dict__``, in field order (the SDK's own event classes)."""
    return cls in _own_dict_classes


def _own_values(event: Any) -> Iterable[Any]:
    return event.__dict__.values()  # type: ignore[no-any-return]


_getters: dict[type, Callable[[Any], Iterable[Any]]] = {}


def wire_values(cls: type[AnalyticsEvent]) -> Callable[[Any], Iterable[Any]]:
    """A function returning an event of class ``cls``'s values in the order the encoders
    write them: its ``top_level_fields``, then its ``event_params`` (kept per class).

    For the SDK's own classes, whose fields are declared in that order, it is a view of
    the instance's ``__dict__`` (no copy, whatever the number of fields); for any other
    class, one ``attrgetter`` call."""
    getter = _getters.get(cls)
    if getter is None:
        names = (*cls.top_level_fields, *params_fields(cls))
        if own_dict_layout(cls) and names == field_names(cls):
            getter = _own_values
        elif len(names) > 1:
            getter = operator.attrgetter(*names)
        else:  # attrgetter of one name returns the value itself, not a tuple
            getter = _values_of(names)
        _getters[cls] = getter
    return getter


def _values_of(names: tuple[str, ...]) -> Callable[[Any], Iterable[Any]]:
    return lambda event: tuple(getattr(event, name) for name in names)


@dataclass(frozen=True, slots=True)
class AppServerClient:
    """The client program on the other end of an app-server connection."""

    product_client_id: str
    client_name: str | None
    client_version: str | None
    rpc_transport: RpcTransport
    experimental_api_enabled: bool | None


class AnalyticsEvent:
    """Base of every event: ``event_type`` plus the fields that make ``event_params``."""

    __slots__ = ()
    event_type: ClassVar[str]
    # Fields written at the top level of the wire object instead of inside event_params.
    top_level_fields: ClassVar[tuple[str, ...]] = ()

    def params(self) -> dict[str, Any]:
        """The wire ``event_params`` object."""
        return {name: to_wire(getattr(self, name)) for name in params_fields(type(self))}

    def to_dict(self) -> dict[str, Any]:
        """The exact wire JSON object of this event."""
        wire: dict[str, Any] = {"event_type": self.event_type}
        for name in self.top_level_fields:
            wire[name] = getattr(self, name)
        wire["event_params"] = self.params()
        return wire


ThreadSource = Literal["user", "subagent"]
InitializationMode = Literal["new", "resumed", "forked"]


@_fast_init
@dataclass(frozen=True)
class ThreadInitializedEvent(AnalyticsEvent):
    """``codex_thread_initialized``: a thread started, resumed or forked."""

    event_type: ClassVar[str] = "codex_thread_initialized"

    thread_id: str
    app_server_client: AppServerClient
    runtime: RuntimeMetadata
    model: str
    ephemeral: bool
    thread_source: ThreadSource | None
    initialization_mode: InitializationMode
    subagent_source: str | None
    parent_thread_id: str | None
    created_at: int


@_fast_init
@dataclass(frozen=True)
class TurnEvent(AnalyticsEvent):
    """``codex_turn_event``: one completed turn, joined from everything reported about it."""

    event_type: ClassVar[str] = "codex_turn_event"

    thread_id: str
    turn_id: str
    submission_type: str | None
    app_server_client: AppServerClient
    runtime: RuntimeMetadata
    ephemeral: bool
    thread_source: ThreadSource | None
    initialization_mode: InitializationMode
    subagent_source: str | None
    parent_thread_id: str | None
    model: str
    model_provider: str
    sandbox_policy: str
    reasoning_effort: str | None
    reasoning_summary: str | None
    service_tier: str
    approval_policy: str
    approvals_reviewer: str
    sandbox_network_access: bool
    collaboration_mode: str
    personality: str | None
    num_input_images: int
    is_first_turn: bool
    status: str | None
    turn_error: Any
    steer_count: int
    # Reserved by the backend; always null for now.
    total_tool_call_count: int | None
    shell_command_count: int | None
    file_change_count: int | None
    mcp_tool_call_count: int | None
    dynamic_tool_call_count: int | None
    subagent_tool_call_count: int | None
    web_search_count: int | None
    image_generation_count: int | None
    input_tokens: int | None
    cached_input_tokens: int | None
    output_tokens: int | None
    reasoning_output_tokens: int | None
    total_tokens: int | None
    duration_ms: int | None
    started_at: int | None
    completed_at: int


@_fast_init
@dataclass(frozen=True)
class TurnSteerEvent(AnalyticsEvent):
    """``codex_turn_steer_event``: a steer request, accepted or rejected."""

    event_type: ClassVar[str] = "codex_turn_steer_event"

    thread_id: str
    expected_turn_id: str
    accepted_turn_id: str | None
    app_server_client: AppServerClient
    runtime: RuntimeMetadata
    thread_source: ThreadSource | None
    subagent_source: str | None
    parent_thread_id: str | None
    num_input_images: int
    result: Literal["accepted", "rejected"]
    rejection_reason: str | None
    created_at: int


@_fast_init
@dataclass(frozen=True)
class SkillInvocationEvent(AnalyticsEvent):
    """``skill_invocation``: one skill invoked; ``skill_id`` and ``skill_name`` are top level."""

    event_type: ClassVar[str] = "skill_invocation"
    top_level_fields: ClassVar[tuple[str, ...]] = ("skill_id", "skill_name")

    skill_id: str
    skill_name: str
    product_client_id: str
    skill_scope: str
    repo_url: str | None
    thread_id: str
    invoke_type: str
    model_slug: str


@_fast_init
@dataclass(frozen=True)
class _AppEvent(AnalyticsEvent):
    connector_id: str | None
    thread_id: str
    turn_id: str
    app_name: str | None
    product_client_id: str
    invoke_type: str | None
    model_slug: str


@_fast_init
@dataclass(frozen=True)
class AppMentionedEvent(_AppEvent):
    """``codex_app_mentioned``: one app mentioned in a turn."""

    event_type: ClassVar[str] = "codex_app_mentioned"


@_fast_init
@dataclass(frozen=True)
class AppUsedEvent(_AppEvent):
    """``codex_app_used``: an app used in a turn."""

    event_type: ClassVar[str] = "codex_app_used"


@_fast_init
@dataclass(frozen=True)
class _PluginEvent(AnalyticsEvent):
    plugin_id: str
    plugin_name: str
    marketplace_name: str
    has_skills: bool | None
    mcp_server_count: int | None
    connector_ids: tuple[str, ...] | None
    product_client_id: str


@_fast_init
@dataclass(frozen=True)
class PluginStateEvent(_PluginEvent):
    """Base of the plugin state events: the plugin metadata object alone."""


@_fast_init
@dataclass(frozen=True)
class PluginInstalledEvent(PluginStateEvent):
    """``codex_plugin_installed``."""

    event_type: ClassVar[str] = "codex_plugin_installed"


@_fast_init
@dataclass(frozen=True)
class PluginUninstalledEvent(PluginStateEvent):
    """``codex_plugin_uninstalled``."""

    event_type: ClassVar[str] = "codex_plugin_uninstalled"


@_fast_init
@dataclass(frozen=True)
class PluginEnabledEvent(PluginStateEvent):
    """``codex_plugin_enabled``."""

    event_type: ClassVar[str] = "codex_plugin_enabled"


@_fast_init
@dataclass(frozen=True)
class PluginDisabledEvent(PluginStateEvent):
    """``codex_plugin_disabled``."""

    event_type: ClassVar[str] = "codex_plugin_disabled"


@_fast_init
@dataclass(frozen=True)
class PluginUsedEvent(_PluginEvent):
    """``codex_plugin_used``: the plugin metadata, then where it was used."""

    event_type: ClassVar[str] = "codex_plugin_used"

    thread_id: str
    turn_id: str
    model_slug: str


@_fast_init
@dataclass(frozen=True)
class HookRunEvent(AnalyticsEvent):
    """``codex_hook_run``: a hook ran (a ``running`` status is reported as ``failed``)."""

    event_type: ClassVar[str] = "codex_hook_run"

    thread_id: str
    turn_id: str
    model_slug: str
    hook_name: str
    hook_source: str
    status: str


@_fast_init
@dataclass(frozen=True)
class CompactionEvent(AnalyticsEvent):
    """``codex_compaction_event``: a context compaction on a known thread."""

    event_type: ClassVar[str] = "codex_compaction_event"

    thread_id: str
    turn_id: str
    app_server_client: AppServerClient
    runtime: RuntimeMetadata
    thread_source: ThreadSource | None
    subagent_source: str | None
    parent_thread_id: str | None
    trigger: str
    reason: str
    implementation: str
    phase: str
    strategy: str
    status: str
    error: str | None
    active_context_tokens_before: int
    active_context_tokens_after: int
    started_at: int
    completed_at: int
    duration_ms: int | None


class WireShape:
    """The keys of a :class:`WireEvent`, in the order its values are sent: its top-level
    keys other than ``event_type`` and ``event_params`` (``top``), then the keys of its
    ``event_params`` (``params``). Shapes are interned, so that the encoders can keep what
    they prepare for a shape by identity."""

    __slots__ = ("names", "params", "top")

    def __init__(self, top: tuple[str, ...], params: tuple[str, ...]) -> None:
        self.top = top
        self.params = params
        self.names = top + params
        """Every key, top-level first: the names of the OTLP record's attributes."""

    def __repr__(self) -> str:
        return f"WireShape(top={self.top!r}, params={self.params!r})"


class WireEvent(AnalyticsEvent):
    """An event as ``before_send`` returned it: its wire object, sent as it is.

    ``wire`` is the dict the hook returned (``{"event_type": ..., <top-level keys>,
    "event_params": {...}}``); every sink writes it, and :meth:`to_dict` returns a copy.
    ``values`` iterates over the values of :attr:`shape`'s keys in order, for the
    encoders. ``shared`` maps the ``id`` of a nested dict the hook left as the SDK made
    it (a connection's client or runtime) to the event's own frozen object, whose
    encoding the sinks keep; None when there is none.
    """

    __slots__ = ("event_type", "shape", "shared", "values", "wire")

    def __init__(
        self,
        wire: dict[str, Any],
        shape: WireShape,
        values: Iterable[Any],
        shared: dict[int, object] | None = None,
    ) -> None:
        self.event_type = wire["event_type"]  # type: ignore[misc]
        self.wire = wire
        self.shape = shape
        self.values = values
        self.shared = shared

    def params(self) -> dict[str, Any]:
        """A copy of the wire ``event_params`` object."""
        params: dict[str, Any] = to_wire(self.wire["event_params"])
        return params

    def to_dict(self) -> dict[str, Any]:
        """A copy of the wire object, nested values included."""
        wire: dict[str, Any] = to_wire(self.wire)
        return wire

    def __eq__(self, other: object) -> bool:
        if type(other) is not WireEvent:
            return NotImplemented
        return self.wire == other.wire

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"WireEvent({self.wire!r})"


def wire_object(event: AnalyticsEvent) -> dict[str, Any]:
    """The event's wire object, to be read and not changed: a :class:`WireEvent`'s own
    dict, or a typed event's ``to_dict()``."""
    if type(event) is WireEvent:
        return event.wire
    return event.to_dict()


_SHAPES_LIMIT = 64
_shapes: dict[tuple[tuple[str, ...], tuple[str, ...]], WireShape] = {}


def wire_shape(top: tuple[str, ...], params: tuple[str, ...]) -> WireShape:
    """The interned shape with these keys; ``TypeError`` when a key is not a Python
    identifier, is both at the top level and in ``event_params``, or when this would be
    one shape more than the 64 kept (each is a plan the encoders keep)."""
    key = (top, params)
    shape = _shapes.get(key)
    if shape is not None:
        return shape
    for name in (*top, *params):
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
            raise TypeError(f"key {name!r} is not a Python identifier")
    if len(set(top) | set(params)) != len(top) + len(params):
        raise TypeError("a key is both at the top level and in event_params")
    if len(_shapes) >= _SHAPES_LIMIT:
        raise TypeError(f"more than {_SHAPES_LIMIT} different event shapes")
    shape = _shapes[key] = WireShape(top, params)
    return shape


def wire_event(wire: Any) -> WireEvent:
    """``wire`` as a :class:`WireEvent`; ``TypeError`` when it is not a dict with a string
    ``event_type`` and an ``event_params`` dict whose keys make a shape (see
    :func:`wire_shape`). Its top-level keys are laid out as in every wire object:
    ``event_type`` first, ``event_params`` last, any other in between in their order."""
    if type(wire) is not dict:
        raise TypeError(f"{type(wire).__name__} is not a dict")
    params = wire.get("event_params")
    if type(wire.get("event_type")) is not str or type(params) is not dict:
        raise TypeError("a dict without a string event_type and an event_params dict")
    top = tuple(key for key in wire if key not in ("event_type", "event_params"))
    for key in top:
        if type(key) is not str:
            raise TypeError(f"key {key!r} is not a string")
    names = tuple(params)
    for key in names:
        if type(key) is not str:
            raise TypeError(f"key {key!r} is not a string")
    shape = wire_shape(top, names)
    if tuple(wire) != ("event_type", *top, "event_params"):
        # Laid out as every wire object is, in every sink: event_type first, event_params
        # last. A new dict: the one given (a hook's, which the program may keep) is not
        # written into.
        wire = {
            "event_type": wire["event_type"],
            **{key: wire[key] for key in top},
            "event_params": params,
        }
    return WireEvent(wire, shape, [*(wire[key] for key in top), *params.values()])
