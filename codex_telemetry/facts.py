"""The facts a program reports, and the protocol values they carry.

Every class here is an immutable, validated value: building one with a wrong type or an
unknown enum string raises :class:`pydantic.ValidationError` at once, naming the field.
Enum values are the wire strings of the Codex analytics backend, spelled as ``Literal``
types so that a type checker catches a typo before the program runs.

Sequences may be given as lists, tuples or any other sequence (the annotations say
``Sequence``, so that a type checker accepts a list literal); they are stored as tuples so
that a fact never changes after it was tracked.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import threading
import typing
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, TypeAlias, TypeVar

from pydantic import AfterValidator, BeforeValidator, ConfigDict, ValidationError
from pydantic.dataclasses import dataclass, is_pydantic_dataclass, rebuild_dataclass

__all__ = [
    "CODEX_ERROR_INFO_MAX_BYTES",
    "CODEX_ERROR_INFO_MAX_DEPTH",
    "AppInvocation",
    "AppMentioned",
    "AppUsed",
    "ApprovalPolicy",
    "ApprovalsReviewer",
    "Capabilities",
    "ClientInfo",
    "CodexErrorInfo",
    "CollaborationMode",
    "Compaction",
    "CompactionImplementation",
    "CompactionPhase",
    "CompactionReason",
    "CompactionStatus",
    "CompactionStrategy",
    "CompactionTrigger",
    "CustomSource",
    "ErrorResponse",
    "Fact",
    "HookName",
    "HookRun",
    "HookRunStatus",
    "HookSource",
    "ImageInput",
    "Initialize",
    "InitializeParams",
    "InvocationType",
    "JsonRpcError",
    "LocalImageInput",
    "Notification",
    "Other",
    "OtherInput",
    "Personality",
    "PluginCapabilitySummary",
    "PluginMetadata",
    "PluginState",
    "PluginStateChanged",
    "PluginUsed",
    "ReasoningEffort",
    "ReasoningSummary",
    "RejectionReason",
    "Request",
    "RequestId",
    "Response",
    "RpcTransport",
    "RuntimeMetadata",
    "SandboxPolicy",
    "ServiceTier",
    "SessionSource",
    "SkillInvocation",
    "SkillInvoked",
    "SkillScope",
    "SubAgent",
    "SubAgentSource",
    "SubAgentThreadStarted",
    "SubmissionType",
    "TextInput",
    "Thread",
    "ThreadForkResponse",
    "ThreadResumeResponse",
    "ThreadSpawn",
    "ThreadStartResponse",
    "TokenUsage",
    "TrackingContext",
    "Turn",
    "TurnCompletedNotification",
    "TurnError",
    "TurnResolvedConfig",
    "TurnStartRequest",
    "TurnStartResponse",
    "TurnStartedNotification",
    "TurnStatus",
    "TurnSteerRequest",
    "TurnSteerResponse",
    "TurnTokenUsage",
    "UnknownValue",
    "UserInput",
]

# Strict: a string is never coerced into an int, nor an int into a bool. Facts come from
# program code, where a coercion would hide a bug rather than help. Each validator is
# built with the first fact of its type, not at import (see _build_on_first_use).
_STRICT = ConfigDict(strict=True, frozen=True, defer_build=True)

_T = TypeVar("_T")


def _sequence_to_tuple(value: Any) -> Any:
    # Lists and tuples first: the abstract Sequence check is slower than the validation.
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, tuple | str | bytes | bytearray):
        return value  # a string is a sequence too, but never of items: refused as before
    return tuple(value) if isinstance(value, Sequence) else value


# A sequence field, stored as a tuple; its items are validated strictly. Type checkers see
# the ``Sequence`` a caller may pass; pydantic validates the tuple that is stored (the
# tuple schema is twice as fast to validate as pydantic's generic ``Sequence``).
if TYPE_CHECKING:
    Items = Annotated[Sequence[_T], BeforeValidator(_sequence_to_tuple)]
else:
    Items = Annotated[tuple[_T, ...], BeforeValidator(_sequence_to_tuple)]

RequestId: TypeAlias = int | str
RpcTransport: TypeAlias = Literal["stdio", "websocket", "in_process"]
TurnStatus: TypeAlias = Literal["completed", "failed", "interrupted", "in_progress"]
RejectionReason: TypeAlias = Literal[
    "no_active_turn",
    "expected_turn_mismatch",
    "non_steerable_review",
    "non_steerable_compact",
    "empty_input",
    "input_too_large",
]


CODEX_ERROR_INFO_MAX_DEPTH: Final = 32
"""How deeply a ``codex_error_info`` may nest objects and arrays (``{"a": {"b": 1}}`` is 2).

The protocol's values are 1 or 2 deep. A deeper value is refused where the fact is built:
every sink can then encode every fact it is given (about 600 levels overflowed Python's
stack in the JSON encoders, losing the batch)."""

CODEX_ERROR_INFO_MAX_BYTES: Final = 65_536
"""The largest ``codex_error_info`` a fact accepts, in bytes of compact UTF-8 JSON."""


def _plain_json(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` made of dicts, lists and JSON scalars; ValueError if it is not
    JSON, or nested deeper than :data:`CODEX_ERROR_INFO_MAX_DEPTH`."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise ValueError(f"codex_error_info must be JSON, and {value!r} is not a JSON number")
    if isinstance(value, Mapping | list | tuple) and depth >= CODEX_ERROR_INFO_MAX_DEPTH:
        # Checked before going deeper, so no depth can exhaust the stack.
        raise ValueError(
            "codex_error_info is nested deeper than the "
            f"{CODEX_ERROR_INFO_MAX_DEPTH} levels a fact accepts"
        )
    if isinstance(value, Mapping):
        copy: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(
                    f"codex_error_info must be JSON, whose object keys are strings, not {key!r}"
                )
            copy[key] = _plain_json(item, depth + 1)
        return copy
    if isinstance(value, list | tuple):
        return [_plain_json(item, depth + 1) for item in value]
    raise ValueError(
        f"codex_error_info must be JSON, and a {type(value).__name__} is not a JSON value"
    )


def _bounded_json(value: Any) -> Any:
    """``value`` as plain JSON, refused when deeper or larger than a fact accepts."""
    copy = _plain_json(value)
    if isinstance(copy, str) and len(copy) * 6 + 2 <= CODEX_ERROR_INFO_MAX_BYTES:
        return copy  # the common unit variant: too short to measure
    text = json.dumps(copy, ensure_ascii=False, separators=(",", ":"))
    # Counted as the sinks write it; a lone surrogate counts its three bytes.
    if len(text.encode("utf-8", "surrogatepass")) > CODEX_ERROR_INFO_MAX_BYTES:
        raise ValueError(
            "codex_error_info is larger than the "
            f"{CODEX_ERROR_INFO_MAX_BYTES} bytes of JSON a fact accepts"
        )
    return copy


# The protocol's camelCase form: a unit variant is a string ("usageLimitExceeded"), a
# variant with data an object ({"httpConnectionFailed": {"httpStatusCode": 502}}). It is
# passed through to the wire unchanged, so it is checked to be JSON no deeper or larger
# than the limits above, and copied (into dicts and lists) so that the caller's later
# changes do not reach the event.
CodexErrorInfo: TypeAlias = Annotated[str | Mapping[str, Any], AfterValidator(_bounded_json)]

SubmissionType: TypeAlias = Literal["default", "queued"]
SandboxPolicy: TypeAlias = Literal[
    "danger_full_access", "read_only", "workspace_write", "external_sandbox"
]
ReasoningEffort: TypeAlias = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
ReasoningSummary: TypeAlias = Literal["auto", "concise", "detailed", "none"]
ServiceTier: TypeAlias = Literal["fast", "flex"]
ApprovalPolicy: TypeAlias = Literal["untrusted", "on-failure", "on-request", "never"]
ApprovalsReviewer: TypeAlias = Literal["user", "guardian_subagent"]
CollaborationMode: TypeAlias = Literal["default", "plan", "pair_programming", "execute"]
Personality: TypeAlias = Literal["friendly", "pragmatic", "none"]

SkillScope: TypeAlias = Literal["user", "repo", "system", "admin"]
InvocationType: TypeAlias = Literal["explicit", "implicit"]
PluginState: TypeAlias = Literal["installed", "uninstalled", "enabled", "disabled"]

CompactionTrigger: TypeAlias = Literal["manual", "auto"]
CompactionReason: TypeAlias = Literal["user_requested", "context_limit", "model_downshift"]
CompactionImplementation: TypeAlias = Literal["responses", "responses_compact"]
CompactionPhase: TypeAlias = Literal["standalone_turn", "pre_turn", "mid_turn"]
CompactionStrategy: TypeAlias = Literal["memento", "prefix_compaction"]
CompactionStatus: TypeAlias = Literal["completed", "failed", "interrupted"]

HookName: TypeAlias = Literal[
    "PreToolUse", "PermissionRequest", "PostToolUse", "SessionStart", "UserPromptSubmit", "Stop"
]
HookSource: TypeAlias = Literal[
    "system",
    "user",
    "project",
    "mdm",
    "session_flags",
    "legacy_managed_config_file",
    "legacy_managed_config_mdm",
    "unknown",
]
HookRunStatus: TypeAlias = Literal["running", "completed", "blocked", "failed", "stopped"]


# --- values a newer app-server may send --------------------------------------------


@dataclass(config=_STRICT, slots=True)
class UnknownValue:
    """A protocol enum value this release does not know, kept as the server sent it.

    A newer app-server may name a sandbox, an approval policy or a turn status that this
    release has never seen. The fields that accept ``UnknownValue`` take it only when it
    is given explicitly (or through a ``from_protocol`` constructor): a plain string that
    is not one of the field's values is still refused, so a typo fails where it is made.
    The event carries ``value`` where it would carry a known value's wire string.
    """

    value: str


def _unknown_as_value(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with every string that a field of ``cls`` does not know wrapped."""
    for name, allowed in _enum_fields(cls).items():
        value = values.get(name)
        if isinstance(value, str) and value not in allowed:
            values[name] = UnknownValue(value)
    return values


@functools.cache
def _enum_fields(cls: type) -> dict[str, frozenset[str]]:
    """The fields of ``cls`` that accept an :class:`UnknownValue`, with their known strings."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, frozenset[str]] = {}
    for name, hint in hints.items():
        members = typing.get_args(hint)
        if UnknownValue not in members:
            continue
        allowed: set[str] = set()
        for member in members:
            allowed.update(arg for arg in typing.get_args(member) if isinstance(arg, str))
        fields[name] = frozenset(allowed)
    return fields


# --- shared values -------------------------------------------------------------------


@dataclass(config=_STRICT, slots=True)
class RuntimeMetadata:
    """The program that reported the facts: its version and the machine it runs on.

    OS and architecture use the Rust standard library's names (``macos``, ``linux``,
    ``windows``; ``x86_64``, ``aarch64``).
    """

    codex_rs_version: str
    runtime_os: str
    runtime_os_version: str
    runtime_arch: str


@dataclass(config=_STRICT, slots=True)
class ClientInfo:
    """``clientInfo`` of the ``initialize`` request."""

    name: str
    version: str
    title: str | None = None


@dataclass(config=_STRICT, slots=True)
class Capabilities:
    """``capabilities`` of the ``initialize`` request."""

    experimental_api: bool


@dataclass(config=_STRICT, slots=True)
class InitializeParams:
    """Parameters of the ``initialize`` request."""

    client_info: ClientInfo
    capabilities: Capabilities | None = None


# --- session sources -----------------------------------------------------------------


@dataclass(config=_STRICT, slots=True)
class ThreadSpawn:
    """A sub-agent spawned by another thread."""

    parent_thread_id: str
    depth: int
    agent_nickname: str | None = None
    agent_role: str | None = None


@dataclass(config=_STRICT, slots=True)
class Other:
    """A sub-agent source not known to this version; ``name`` is reported verbatim."""

    name: str


SubAgentSource: TypeAlias = (
    Literal["review", "compact", "memory_consolidation"] | ThreadSpawn | Other
)


@dataclass(config=_STRICT, slots=True)
class CustomSource:
    """A session source named by the client program."""

    name: str


@dataclass(config=_STRICT, slots=True)
class SubAgent:
    """A session run by a sub-agent of another session."""

    source: SubAgentSource


# ``app_server`` is the protocol's ``appServer``.
SessionSource: TypeAlias = (
    Literal["cli", "vscode", "exec", "app_server", "unknown"] | CustomSource | SubAgent
)


# --- protocol values -----------------------------------------------------------------


@dataclass(config=_STRICT, slots=True)
class Thread:
    """A thread as a thread response describes it."""

    id: str
    ephemeral: bool
    created_at: int
    source: SessionSource


@dataclass(config=_STRICT, slots=True)
class TextInput:
    """A text item of a turn's input."""

    text: str


@dataclass(config=_STRICT, slots=True)
class ImageInput:
    """An image given by URL (a ``data:`` URL included)."""

    url: str


@dataclass(config=_STRICT, slots=True)
class LocalImageInput:
    """An image given by a local file path."""

    path: str


@dataclass(config=_STRICT, slots=True)
class OtherInput:
    """Any other input item (a skill, a mention, ...); ``kind`` is its protocol type."""

    kind: str


UserInput: TypeAlias = TextInput | ImageInput | LocalImageInput | OtherInput


@dataclass(config=_STRICT, slots=True)
class TurnError:
    """Why a turn failed."""

    message: str
    codex_error_info: CodexErrorInfo | None = None


@dataclass(config=_STRICT, slots=True)
class Turn:
    """A turn as a response or a notification describes it. Times are unix seconds."""

    id: str
    status: TurnStatus | UnknownValue
    error: TurnError | None = None
    started_at: int | None = None
    completed_at: int | None = None
    duration_ms: int | None = None

    @classmethod
    def from_protocol(cls, **fields: Any) -> Turn:
        """A turn whose ``status`` may be one this release does not know.

        The keywords are the constructor's; a ``status`` string that is not a
        :data:`TurnStatus` becomes an :class:`UnknownValue` instead of an error.
        """
        return cls(**_unknown_as_value(cls, fields))


@dataclass(config=_STRICT, slots=True)
class TurnStartRequest:
    """``turn/start`` request parameters."""

    thread_id: str
    input: Items[UserInput]


@dataclass(config=_STRICT, slots=True)
class TurnSteerRequest:
    """``turn/steer`` request parameters."""

    thread_id: str
    expected_turn_id: str
    input: Items[UserInput]


@dataclass(config=_STRICT, slots=True)
class ThreadStartResponse:
    """``thread/start`` result."""

    thread: Thread
    model: str


@dataclass(config=_STRICT, slots=True)
class ThreadResumeResponse:
    """``thread/resume`` result."""

    thread: Thread
    model: str


@dataclass(config=_STRICT, slots=True)
class ThreadForkResponse:
    """``thread/fork`` result."""

    thread: Thread
    model: str


@dataclass(config=_STRICT, slots=True)
class TurnStartResponse:
    """``turn/start`` result."""

    turn: Turn


@dataclass(config=_STRICT, slots=True)
class TurnSteerResponse:
    """``turn/steer`` result."""

    turn_id: str


@dataclass(config=_STRICT, slots=True)
class JsonRpcError:
    """The ``error`` member of a JSON-RPC error response."""

    code: int
    message: str
    data: Any = None


@dataclass(config=_STRICT, slots=True)
class TurnStartedNotification:
    """``turn/started`` notification."""

    thread_id: str
    turn: Turn


@dataclass(config=_STRICT, slots=True)
class TurnCompletedNotification:
    """``turn/completed`` notification."""

    thread_id: str
    turn: Turn


# --- protocol facts ------------------------------------------------------------------


@dataclass(config=_STRICT, slots=True)
class Initialize:
    """A connection completed ``initialize``.

    ``runtime`` None: the SDK fills in the current process's runtime when it is tracked.
    """

    connection_id: int
    params: InitializeParams
    product_client_id: str
    rpc_transport: RpcTransport
    runtime: RuntimeMetadata | None = None


@dataclass(config=_STRICT, slots=True)
class Request:
    """A client request the analytics care about (``turn/start``, ``turn/steer``)."""

    connection_id: int
    request_id: RequestId
    request: TurnStartRequest | TurnSteerRequest


@dataclass(config=_STRICT, slots=True)
class Response:
    """A successful response to a thread or turn request."""

    connection_id: int
    request_id: RequestId
    response: (
        ThreadStartResponse
        | ThreadResumeResponse
        | ThreadForkResponse
        | TurnStartResponse
        | TurnSteerResponse
    )


@dataclass(config=_STRICT, slots=True)
class ErrorResponse:
    """An error response; ``rejection_reason`` is the classified reason of a refused steer."""

    connection_id: int
    request_id: RequestId
    error: JsonRpcError
    rejection_reason: RejectionReason | None = None


@dataclass(config=_STRICT, slots=True)
class Notification:
    """A server notification about a turn."""

    notification: TurnStartedNotification | TurnCompletedNotification


# --- custom facts --------------------------------------------------------------------


@dataclass(config=_STRICT, slots=True)
class SubAgentThreadStarted:
    """A sub-agent thread started inside the reporting process."""

    thread_id: str
    parent_thread_id: str | None
    product_client_id: str
    client_name: str | None
    client_version: str | None
    model: str
    ephemeral: bool
    subagent_source: SubAgentSource
    created_at: int


@dataclass(config=_STRICT, slots=True)
class TurnResolvedConfig:
    """The configuration a turn actually ran with."""

    turn_id: str
    thread_id: str
    num_input_images: int
    submission_type: SubmissionType | None
    ephemeral: bool
    session_source: SessionSource
    model: str
    model_provider: str
    sandbox_policy: SandboxPolicy | UnknownValue
    reasoning_effort: ReasoningEffort | UnknownValue | None
    reasoning_summary: ReasoningSummary | UnknownValue | None
    service_tier: ServiceTier | UnknownValue | None
    approval_policy: ApprovalPolicy | UnknownValue
    approvals_reviewer: ApprovalsReviewer | UnknownValue
    sandbox_network_access: bool
    collaboration_mode: CollaborationMode | UnknownValue
    personality: Personality | UnknownValue | None
    is_first_turn: bool

    @classmethod
    def from_protocol(cls, **fields: Any) -> TurnResolvedConfig:
        """A resolved configuration whose enum values may be ones this release does not know.

        For configurations read from a newer app-server: the keywords are the
        constructor's, and an enum string that is not one of its field's values becomes
        an :class:`UnknownValue`, which the turn event carries as it was given. Every
        other check stays: a wrong type still raises ``pydantic.ValidationError``.
        """
        return cls(**_unknown_as_value(cls, fields))


@dataclass(config=_STRICT, slots=True)
class TokenUsage:
    """A turn's own token usage."""

    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_output_tokens: int
    total_tokens: int


@dataclass(config=_STRICT, slots=True)
class TurnTokenUsage:
    """Token usage of one turn (replaces any earlier report for the turn)."""

    turn_id: str
    thread_id: str
    token_usage: TokenUsage


@dataclass(config=_STRICT, slots=True)
class TrackingContext:
    """Where a skill, app, plugin or hook event happened."""

    model_slug: str
    thread_id: str
    turn_id: str


@dataclass(config=_STRICT, slots=True)
class SkillInvocation:
    """One skill invoked in a turn."""

    skill_name: str
    skill_scope: SkillScope
    skill_path: str
    invocation_type: InvocationType


@dataclass(config=_STRICT, slots=True)
class SkillInvoked:
    """Skills invoked in a turn: one ``skill_invocation`` event each."""

    tracking: TrackingContext
    invocations: Items[SkillInvocation]


@dataclass(config=_STRICT, slots=True)
class AppInvocation:
    """An app (connector) mentioned or used."""

    connector_id: str | None
    app_name: str | None
    invocation_type: InvocationType | None


@dataclass(config=_STRICT, slots=True)
class AppMentioned:
    """Apps mentioned in a turn: one ``codex_app_mentioned`` event each."""

    tracking: TrackingContext
    mentions: Items[AppInvocation]


@dataclass(config=_STRICT, slots=True)
class AppUsed:
    """An app used in a turn (sent once per turn and connector)."""

    tracking: TrackingContext
    app: AppInvocation


@dataclass(config=_STRICT, slots=True)
class PluginCapabilitySummary:
    """What a plugin brings."""

    has_skills: bool
    mcp_server_names: Items[str]
    app_connector_ids: Items[str]


@dataclass(config=_STRICT, slots=True)
class PluginMetadata:
    """A plugin, identified by ``key`` = ``"{plugin_name}@{marketplace_name}"``."""

    plugin_name: str
    marketplace_name: str
    capability_summary: PluginCapabilitySummary | None = None

    @property
    def key(self) -> str:
        """The plugin's id on the wire."""
        return f"{self.plugin_name}@{self.marketplace_name}"


@dataclass(config=_STRICT, slots=True)
class PluginUsed:
    """A plugin used in a turn (sent once per turn and plugin)."""

    tracking: TrackingContext
    plugin: PluginMetadata


@dataclass(config=_STRICT, slots=True)
class PluginStateChanged:
    """A plugin was installed, uninstalled, enabled or disabled."""

    plugin: PluginMetadata
    state: PluginState


@dataclass(config=_STRICT, slots=True)
class Compaction:
    """A context compaction ran on a thread."""

    thread_id: str
    turn_id: str
    trigger: CompactionTrigger
    reason: CompactionReason
    implementation: CompactionImplementation
    phase: CompactionPhase
    strategy: CompactionStrategy
    status: CompactionStatus
    error: str | None
    active_context_tokens_before: int
    active_context_tokens_after: int
    started_at: int
    completed_at: int
    duration_ms: int | None


@dataclass(config=_STRICT, slots=True)
class HookRun:
    """A hook ran."""

    tracking: TrackingContext
    hook_name: HookName
    hook_source: HookSource
    status: HookRunStatus


Fact: TypeAlias = (
    Initialize
    | Request
    | Response
    | ErrorResponse
    | Notification
    | SubAgentThreadStarted
    | TurnResolvedConfig
    | TurnTokenUsage
    | SkillInvoked
    | AppMentioned
    | AppUsed
    | PluginUsed
    | PluginStateChanged
    | Compaction
    | HookRun
)


# --- errors that name the field ----------------------------------------------------------


def _name_positional_errors(cls: type) -> None:
    """Make ``cls``'s validation errors name the field of a positional argument.

    pydantic reports a positional argument by its index (``2``), while facts are often
    built positionally; the error then says ``created_at`` as it would for a keyword.
    A valid fact costs one more function call; only the failure path does more.
    """
    names = tuple(field.name for field in dataclasses.fields(cls))
    validate = cls.__init__  # type: ignore[misc]

    @functools.wraps(validate)
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            validate(self, *args, **kwargs)
        except ValidationError as error:
            if not args:
                raise
            line_errors: list[Any] = []
            for line in error.errors(include_url=False):
                loc = line["loc"]
                if loc and type(loc[0]) is int and loc[0] < len(names):
                    line_errors.append({**line, "loc": (names[loc[0]], *loc[1:])})
                else:
                    line_errors.append(line)
            raise ValidationError.from_exception_data(error.title, line_errors) from None

    cls.__init__ = init  # type: ignore[misc]


# --- validators built on first use ---------------------------------------------------


_build_lock = threading.Lock()


def _build_on_first_use(cls: type) -> None:
    """Build the validator of ``cls`` when its first fact is built, not at import.

    ``import codex_telemetry.facts`` then costs a fraction of building every validator,
    and a program pays, once, only for the fact types it uses. Building installs an
    ``__init__`` and a signature of pydantic's own: the class's ``__init__`` (which names
    positional arguments in errors) and its field signature are put back.
    """
    init = cls.__init__  # type: ignore[misc]
    signature = _signature(cls)

    @functools.wraps(init)
    def build_then_init(self: Any, *args: Any, **kwargs: Any) -> None:
        with _build_lock:
            if cls.__init__ is build_then_init:  # type: ignore[misc]
                _build(cls)
                cls.__init__ = init  # type: ignore[misc]
                cls.__signature__ = signature  # type: ignore[attr-defined]
        init(self, *args, **kwargs)

    cls.__init__ = build_then_init  # type: ignore[misc]
    cls.__signature__ = signature  # type: ignore[attr-defined]


def _build(cls: type) -> None:
    # A frame of its own: pydantic also resolves annotations in its caller's namespace.
    rebuild_dataclass(cls)


def _signature(cls: type) -> inspect.Signature:
    """The dataclass ``__init__`` signature, as pydantic renders it (``Any`` unquoted)."""
    return inspect.Signature(
        [
            inspect.Parameter(
                field.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=(
                    inspect.Parameter.empty
                    if field.default is dataclasses.MISSING
                    else field.default
                ),
                annotation=Any if field.type == "Any" else field.type,
            )
            for field in dataclasses.fields(cls)
        ],
        return_annotation=None,
    )


for _value in list(globals().values()):
    if isinstance(_value, type) and is_pydantic_dataclass(_value):
        _name_positional_errors(_value)
        _build_on_first_use(_value)
del _value
