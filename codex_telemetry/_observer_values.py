"""Reading the values of app-server JSON-RPC messages, for :class:`AppServerObserver`.

Each reader takes a decoded JSON value and returns a fact's value, or raises
:class:`MalformedMessageError` when a value the analytics need cannot be read. A value this
release does not know (a newer server's) is not malformed: :class:`UnknownValues` holds
the one rule for those.
"""

from __future__ import annotations

import json
import logging
import re
import reprlib
from collections.abc import Mapping
from typing import Any, TypeAlias

from pydantic import ValidationError

from codex_telemetry._runtime import current_runtime, os_info_version, rust_arch_name, rust_os_name
from codex_telemetry.facts import (
    Capabilities,
    ClientInfo,
    CustomSource,
    ImageInput,
    InitializeParams,
    LocalImageInput,
    Other,
    OtherInput,
    RuntimeMetadata,
    SessionSource,
    SubAgent,
    SubAgentSource,
    TextInput,
    ThreadSpawn,
    TokenUsage,
    Turn,
    TurnError,
    TurnStatus,
    UnknownValue,
    UserInput,
)

__all__ = [
    "ZERO_USAGE",
    "JsonObject",
    "MalformedMessageError",
    "UnknownValues",
    "count_images",
    "decode_message",
    "message_params",
    "optional_int",
    "optional_str",
    "read_initialize_params",
    "read_session_source",
    "read_turn",
    "read_usage",
    "read_user_inputs",
    "required_bool",
    "required_int",
    "required_str",
    "required_thread_id",
    "server_identity",
    "tag",
    "usage_minus",
]

_logger = logging.getLogger(__name__)

JsonObject: TypeAlias = Mapping[str, Any]

_TURN_STATUSES: Mapping[str, TurnStatus] = {
    "completed": "completed",
    "failed": "failed",
    "interrupted": "interrupted",
    "inProgress": "in_progress",
    "in_progress": "in_progress",
}

_SESSION_SOURCES: Mapping[str, SessionSource] = {
    "cli": "cli",
    "vscode": "vscode",
    "exec": "exec",
    "appServer": "app_server",
    "app_server": "app_server",
    "unknown": "unknown",
}

_SUBAGENT_SOURCES: Mapping[str, SubAgentSource] = {
    "review": "review",
    "compact": "compact",
    "memory_consolidation": "memory_consolidation",
    "memoryConsolidation": "memory_consolidation",
}

# The ``CodexErrorInfo`` variants this release knows (camelCase, as on the wire). Any
# other is passed through all the same, and counted as unknown.
_CODEX_ERROR_INFOS = frozenset(
    {
        "contextWindowExceeded",
        "sessionBudgetExceeded",
        "usageLimitExceeded",
        "serverOverloaded",
        "cyberPolicy",
        "httpConnectionFailed",
        "responseStreamConnectionFailed",
        "internalServerError",
        "unauthorized",
        "badRequest",
        "sandboxError",
        "responseStreamDisconnected",
        "responseTooManyFailedAttempts",
        "activeTurnNotSteerable",
        "threadRollbackFailed",
        "other",
    }
)

# The ``UserInput`` item types of the protocol; an item of another type is kept as
# ``OtherInput`` and counted as unknown.
_INPUT_ITEM_TYPES = frozenset({"text", "image", "localImage", "skill", "mention"})

# ``originator/version (OS VERSION; ARCH) terminal``, as codex-rs formats its user agent.
_USER_AGENT = re.compile(
    r"(?P<originator>[^/\s]+)/(?P<version>\S+)(?: \((?P<os>[^;()]*); (?P<arch>[^)]*)\))?"
)

_ROLLING = "Rolling Release"


class MalformedMessageError(Exception):
    """A message the observer needs but cannot read; counted, never raised to the client."""


class UnknownValues:
    """The observer's one rule for values a newer app-server may send.

    An enum value, session source, turn status, error info or input item type that this
    release does not know never costs a fact: it is reported as the server sent it (an
    :class:`~codex_telemetry.facts.UnknownValue` where the fact's field is an enum, the
    value itself where the field passes JSON through, ``"unknown"`` for a session source,
    which the turn event reports as a null ``thread_source``), counted by field, and
    logged once per field.
    """

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def note(self, field: str, raw: Any) -> None:
        count = self.counts.get(field, 0)
        self.counts[field] = count + 1
        if not count:
            _logger.warning(
                "codex_telemetry does not know the %s %s sent by the app-server (a newer "
                "version?); it is reported as sent, your code is unaffected. Further unknown "
                "%s values are only counted.",
                field,
                reprlib.repr(raw),
                field,
            )

    def enum(self, field: str, table: Mapping[str, Any], raw: Any) -> Any:
        """``table``'s name for ``raw``; an :class:`UnknownValue` for a value it lacks.

        None when ``raw`` is absent or null, or when it names nothing (neither a string
        nor a tagged object): then the field keeps no value.
        """
        if raw is None:
            return None
        if isinstance(raw, str) and raw in table:
            return table[raw]
        self.note(field, raw)
        name = tag(raw)
        return UnknownValue(name) if name is not None else None


def tag(raw: Any) -> str | None:
    """The name of a protocol value: a string itself, or the tag of a tagged object."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, Mapping):
        tag = raw.get("type")
        if isinstance(tag, str):
            return tag
        if len(raw) == 1:
            key = next(iter(raw))
            return key if isinstance(key, str) else None
    return None


ZERO_USAGE = TokenUsage(0, 0, 0, 0, 0)


def decode_message(message: Any) -> JsonObject:
    if isinstance(message, str | bytes | bytearray):
        message = json.loads(message)
    if not isinstance(message, Mapping):
        raise MalformedMessageError("a JSON-RPC message is a JSON object")
    return message


def message_params(message: JsonObject) -> JsonObject:
    params = message.get("params")
    if not isinstance(params, Mapping):
        raise MalformedMessageError(f"{message.get('method')} without params")
    return params


def required_str(obj: JsonObject, key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise MalformedMessageError(f"{key} must be a string")
    return value


def required_thread_id(value: Any) -> str:
    if not isinstance(value, str):
        raise MalformedMessageError("threadId must be a string")
    return value


def required_int(obj: JsonObject, key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedMessageError(f"{key} must be an integer")
    return value


def required_bool(obj: JsonObject, key: str) -> bool:
    value = obj.get(key)
    if not isinstance(value, bool):
        raise MalformedMessageError(f"{key} must be a boolean")
    return value


def optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def read_initialize_params(params: JsonObject) -> InitializeParams:
    info = params.get("clientInfo")
    if not isinstance(info, Mapping):
        raise MalformedMessageError("initialize without clientInfo")
    client_info = ClientInfo(
        name=required_str(info, "name"),
        version=required_str(info, "version"),
        title=optional_str(info.get("title")),
    )
    raw_capabilities = params.get("capabilities")
    capabilities = None
    if isinstance(raw_capabilities, Mapping):
        capabilities = Capabilities(
            experimental_api=raw_capabilities.get("experimentalApi") is True
        )
    return InitializeParams(client_info=client_info, capabilities=capabilities)


def server_identity(result: JsonObject) -> tuple[str | None, RuntimeMetadata]:
    """The originator and the runtime of the app-server, from its ``initialize`` result.

    codex-rs builds its user agent as ``originator/version (OS VERSION; ARCH) terminal``,
    where OS and VERSION are ``os_info``'s names. The app-server runs on the client's
    machine (stdio), so what the result does not say is taken from this process.
    """
    user_agent = optional_str(result.get("userAgent")) or ""
    match = _USER_AGENT.match(user_agent.strip())
    originator = match["originator"] if match else None
    server_info = result.get("serverInfo")
    version = None
    if isinstance(server_info, Mapping):
        version = optional_str(server_info.get("version"))
    if not version and match:
        version = match["version"]
    local = current_runtime(version or "unknown")
    platform_os = optional_str(result.get("platformOs"))
    os_version = _os_version(match["os"]) if match and match["os"] else None
    arch = match["arch"].strip() if match and match["arch"] else None
    return originator, RuntimeMetadata(
        codex_rs_version=local.codex_rs_version,
        runtime_os=rust_os_name(platform_os) if platform_os else local.runtime_os,
        runtime_os_version=os_version or local.runtime_os_version,
        runtime_arch=rust_arch_name(arch) if arch and arch != "unknown" else local.runtime_arch,
    )


def _os_version(os_part: str) -> str | None:
    """The version in ``os_info``'s ``"{type} {version}"`` (``"Debian 12.0.0"``)."""
    os_part = os_part.strip()
    rolling = os_part.find(_ROLLING)
    if rolling > 0:
        return os_part[rolling:]
    _, _, version = os_part.rpartition(" ")
    if not version or not version[0].isdigit():
        return "Unknown" if version == "Unknown" else None
    return os_info_version(version)


def read_session_source(raw: Any, unknown: UnknownValues) -> SessionSource:
    if raw is None:
        raise MalformedMessageError("a thread without a source")
    if isinstance(raw, str):
        source = _SESSION_SOURCES.get(raw)
        if source is not None:
            return source
    elif isinstance(raw, Mapping):
        custom = raw.get("custom")
        if isinstance(custom, str):
            return CustomSource(custom)
        sub_agent = raw.get("subAgent", raw.get("sub_agent"))
        if sub_agent is not None:
            return SubAgent(_subagent_source(sub_agent, unknown))
    # A source this version does not know has no name the analytics could report: it
    # reads as "unknown", whose thread_source is null.
    unknown.note("session_source", raw)
    return "unknown"


def _subagent_source(raw: Any, unknown: UnknownValues) -> SubAgentSource:
    if isinstance(raw, str):
        known = _SUBAGENT_SOURCES.get(raw)
        if known is not None:
            return known
        unknown.note("subagent_source", raw)
        return Other(raw)  # reported verbatim, as events.md reports an Other source
    if isinstance(raw, Mapping):
        spawn = raw.get("thread_spawn", raw.get("threadSpawn"))
        if isinstance(spawn, Mapping):
            parent = spawn.get("parent_thread_id", spawn.get("parentThreadId"))
            depth = optional_int(spawn.get("depth"))
            if not isinstance(parent, str) or depth is None:
                raise MalformedMessageError(
                    "a thread_spawn source needs parent_thread_id and depth"
                )
            return ThreadSpawn(
                parent_thread_id=parent,
                depth=depth,
                agent_nickname=optional_str(
                    spawn.get("agent_nickname", spawn.get("agentNickname"))
                ),
                agent_role=optional_str(spawn.get("agent_role", spawn.get("agentRole"))),
            )
        other = raw.get("other")
        if isinstance(other, str):
            return Other(other)
    name = tag(raw)
    if name is None:
        raise MalformedMessageError(f"unknown sub-agent source {reprlib.repr(raw)}")
    unknown.note("subagent_source", raw)
    return Other(name)


def read_user_inputs(raw: Any, unknown: UnknownValues) -> tuple[UserInput, ...]:
    if not isinstance(raw, list):
        raise MalformedMessageError("input must be a list")
    items: list[UserInput] = []
    for item in raw:
        kind = item.get("type") if isinstance(item, Mapping) else None
        if not isinstance(kind, str):
            raise MalformedMessageError("an input item needs a type")
        if kind == "text":
            items.append(TextInput(required_str(item, "text")))
        elif kind == "image":
            items.append(ImageInput(required_str(item, "url")))
        elif kind == "localImage":
            items.append(LocalImageInput(required_str(item, "path")))
        else:
            if kind not in _INPUT_ITEM_TYPES:
                unknown.note("input_item", kind)
            items.append(OtherInput(kind))
    return tuple(items)


def count_images(items: tuple[UserInput, ...]) -> int:
    return sum(isinstance(item, ImageInput | LocalImageInput) for item in items)


def read_turn(raw: JsonObject, unknown: UnknownValues) -> Turn:
    raw_status = raw.get("status")
    if not isinstance(raw_status, str):
        raise MalformedMessageError(
            f"a turn status must be a string, not {reprlib.repr(raw_status)}"
        )
    # A status this version does not know still ends the turn: the turn event reports it
    # as the server sent it.
    status = unknown.enum("turn_status", _TURN_STATUSES, raw_status)
    error = None
    raw_error = raw.get("error")
    if isinstance(raw_error, Mapping):
        info = raw_error.get("codexErrorInfo")
        noted = info is not None and tag(info) not in _CODEX_ERROR_INFOS
        if noted:
            unknown.note("codex_error_info", info)  # passed through unchanged all the same
        message = optional_str(raw_error.get("message")) or ""
        info = info if isinstance(info, str | Mapping) else None
        try:
            error = TurnError(message=message, codex_error_info=info)
        except ValidationError:
            # Deeper or larger than a fact may carry: the turn is still reported, with
            # its error info left out (and counted), rather than lost as malformed.
            if not noted:
                unknown.note("codex_error_info", "<too deep or too large>")
            error = TurnError(message=message, codex_error_info=None)
    return Turn(
        id=required_str(raw, "id"),
        status=status,
        error=error,
        started_at=optional_int(raw.get("startedAt")),
        completed_at=optional_int(raw.get("completedAt")),
        duration_ms=optional_int(raw.get("durationMs")),
    )


def read_usage(raw: Any) -> TokenUsage:
    if not isinstance(raw, Mapping):
        raise MalformedMessageError("token usage must be an object")
    return TokenUsage(
        input_tokens=required_int(raw, "inputTokens"),
        cached_input_tokens=required_int(raw, "cachedInputTokens"),
        output_tokens=required_int(raw, "outputTokens"),
        reasoning_output_tokens=required_int(raw, "reasoningOutputTokens"),
        total_tokens=required_int(raw, "totalTokens"),
    )


def usage_minus(total: TokenUsage, before: TokenUsage) -> TokenUsage:
    # Never negative: a total that shrank (a compaction resets it) counts as no growth.
    return TokenUsage(
        input_tokens=max(0, total.input_tokens - before.input_tokens),
        cached_input_tokens=max(0, total.cached_input_tokens - before.cached_input_tokens),
        output_tokens=max(0, total.output_tokens - before.output_tokens),
        reasoning_output_tokens=max(
            0, total.reasoning_output_tokens - before.reasoning_output_tokens
        ),
        total_tokens=max(0, total.total_tokens - before.total_tokens),
    )
