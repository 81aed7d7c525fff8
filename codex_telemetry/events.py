"""Analytics events: the reducer's output, in the Codex analytics backend's wire format.

Each event is a frozen value whose fields are its ``event_params`` keys, declared in wire
order. :meth:`AnalyticsEvent.to_dict` returns the exact wire object: every key present,
``None`` for an unset value, nested objects as dicts and sequences as lists. What a
``before_send`` hook returns travels on as a :class:`WireEvent`, which holds that dict.
"""

from __future__ import annotations

import dataclasses
import keyword
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

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
    "to_wire",
    "wire_event",
    "wire_object",
    "wire_shape",
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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class _AppEvent(AnalyticsEvent):
    connector_id: str | None
    thread_id: str
    turn_id: str
    app_name: str | None
    product_client_id: str
    invoke_type: str | None
    model_slug: str


@dataclass(frozen=True, slots=True)
class AppMentionedEvent(_AppEvent):
    """``codex_app_mentioned``: one app mentioned in a turn."""

    event_type: ClassVar[str] = "codex_app_mentioned"


@dataclass(frozen=True, slots=True)
class AppUsedEvent(_AppEvent):
    """``codex_app_used``: an app used in a turn."""

    event_type: ClassVar[str] = "codex_app_used"


@dataclass(frozen=True, slots=True)
class _PluginEvent(AnalyticsEvent):
    plugin_id: str
    plugin_name: str
    marketplace_name: str
    has_skills: bool | None
    mcp_server_count: int | None
    connector_ids: tuple[str, ...] | None
    product_client_id: str


@dataclass(frozen=True, slots=True)
class PluginStateEvent(_PluginEvent):
    """Base of the plugin state events: the plugin metadata object alone."""


@dataclass(frozen=True, slots=True)
class PluginInstalledEvent(PluginStateEvent):
    """``codex_plugin_installed``."""

    event_type: ClassVar[str] = "codex_plugin_installed"


@dataclass(frozen=True, slots=True)
class PluginUninstalledEvent(PluginStateEvent):
    """``codex_plugin_uninstalled``."""

    event_type: ClassVar[str] = "codex_plugin_uninstalled"


@dataclass(frozen=True, slots=True)
class PluginEnabledEvent(PluginStateEvent):
    """``codex_plugin_enabled``."""

    event_type: ClassVar[str] = "codex_plugin_enabled"


@dataclass(frozen=True, slots=True)
class PluginDisabledEvent(PluginStateEvent):
    """``codex_plugin_disabled``."""

    event_type: ClassVar[str] = "codex_plugin_disabled"


@dataclass(frozen=True, slots=True)
class PluginUsedEvent(_PluginEvent):
    """``codex_plugin_used``: the plugin metadata, then where it was used."""

    event_type: ClassVar[str] = "codex_plugin_used"

    thread_id: str
    turn_id: str
    model_slug: str


@dataclass(frozen=True, slots=True)
class HookRunEvent(AnalyticsEvent):
    """``codex_hook_run``: a hook ran (a ``running`` status is reported as ``failed``)."""

    event_type: ClassVar[str] = "codex_hook_run"

    thread_id: str
    turn_id: str
    model_slug: str
    hook_name: str
    hook_source: str
    status: str


@dataclass(frozen=True, slots=True)
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
    :func:`wire_shape`)."""
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
    return WireEvent(wire, shape, [*(wire[key] for key in top), *params.values()])
