"""Settings: one pydantic-settings model, read once by ``init()``.

Precedence, highest first: an ``init()`` argument (``None`` counts as not given), a
``CODEX_TELEMETRY_*`` environment variable, the same variable in a ``.env`` file, the
matching standard ``OTEL_*`` variable, the default. ``DO_NOT_TRACK`` and
``OTEL_SDK_DISABLED`` turn collection off whatever else says so: they are the user's
opt-out, and a program's own default must not override it.

A bad value raises one :class:`ConfigurationError` that names every offending setting
and its variable, and never contains a secret.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import logging
import os
import re
import stat
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from codex_telemetry._errors import ConfigurationError
from codex_telemetry._version import __version__

__all__ = [
    "BeforeSend",
    "CodexBackendSettings",
    "ConfigurationError",
    "EventTypeSettings",
    "FileSettings",
    "OTLPSettings",
    "ReducerSettings",
    "SettingSource",
    "SpoolSettings",
    "TelemetrySettings",
    "check_logger_provider",
    "load_settings",
    "setting_sources",
]

_logger = logging.getLogger(__name__)

_PREFIX = "CODEX_TELEMETRY_"
_HTTP_DEFAULT_ENDPOINT = "http://localhost:4318/v1/logs"
_GRPC_DEFAULT_ENDPOINT = "localhost:4317"
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
# Durations are waited on with threading primitives, which refuse an infinite or longer
# one: it would raise at shutdown instead of at init(). Half the limit leaves room for
# the graces added on top, and is still years.
_MAX_SECONDS = threading.TIMEOUT_MAX / 2

# Settings whose value must never appear in an error message, a repr or a log line.
_SECRET_PATHS = frozenset({("otlp", "headers"), ("codex_backend", "token")})

# setting path -> the OTEL_* variables consulted, in order, when no CODEX_TELEMETRY_*
# source gave a value. The endpoint is resolved apart (its generic form depends on the
# protocol); the timeouts are milliseconds in the OpenTelemetry specification.
_OTEL_FALLBACKS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("service_name",): ("OTEL_SERVICE_NAME",),
    ("otlp", "endpoint"): ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    **{
        ("otlp", name): (
            f"OTEL_EXPORTER_OTLP_LOGS_{name.upper()}",
            f"OTEL_EXPORTER_OTLP_{name.upper()}",
        )
        for name in (
            "protocol",
            "headers",
            "timeout",
            "compression",
            "certificate",
            "client_key",
            "client_certificate",
            "insecure",
        )
    },
}
_MILLISECOND_PATHS = frozenset({("otlp", "timeout")})


def _variable(path: tuple[str, ...]) -> str:
    return _PREFIX + "__".join(part.upper() for part in path)


def _is_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE_WORDS


class _BadValueError(ValueError):
    """A validator's complaint about a value: ``problem`` says what is wrong with it.

    Its message shows the value as the validator saw it; :class:`ConfigurationError`
    shows the value as it was given instead (before ``/v1/logs`` or a unit conversion).
    """

    def __init__(self, value: object, problem: str) -> None:
        self.problem = problem
        super().__init__(f"{_shown(value)} {problem}")


def _readable_file(path: Path | None) -> Path | None:
    if path is None:
        return None
    try:
        readable = path.is_file() and os.access(path, os.R_OK)
    except OSError as error:  # a name too long for the file system, ...
        raise _BadValueError(str(path), f"is not a readable file: {error.strerror}") from None
    if not readable:
        raise _BadValueError(str(path), "is not a readable file")
    return path


def _unsendable_character(text: str) -> str | None:
    """The first character of ``text`` that UTF-8 cannot encode (a lone surrogate, as a
    non-UTF-8 byte of the environment decodes to), as ``U+XXXX``; None when there is none."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return _character(text[error.start])
    return None


_NOT_UTF8 = "is not UTF-8 text ({}): no event could carry it"


def _sendable_text(value: Any) -> Any:
    """Refuse a string no event, resource or request could carry."""
    if isinstance(value, str):
        character = _unsendable_character(value)
        if character is not None:
            raise _BadValueError(value, _NOT_UTF8.format(character))
    return value


def _header_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be an HTTP header value, without showing it; None when it can."""
    for character in value:
        if (character < " " and character != "\t") or character == "\x7f":
            return (
                f"contains the control character {_character(character)}, "
                "which an HTTP header cannot carry"
            )
        if character > "\xff":
            return (
                f"contains {_character(character)}, outside the ISO-8859-1 an HTTP header can carry"
            )
    return None


_FILE_KINDS = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISCHR, "a character device"),
)


def file_kind(mode: int) -> str | None:
    """What a file that is not a regular one is (``a named pipe``, ...); None for a regular
    file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")


def _check_dotenv(settings_cls: type[TelemetrySettings], where: str) -> str | None:
    """A problem when the ``.env`` file exists but is not a regular file.

    Reading a named pipe with no writer (or ``/dev/zero``) would block ``init()`` forever;
    this looks with a non-blocking open, which never waits, before anything reads it.
    """
    env_file = settings_cls.model_config.get("env_file")
    if not settings_cls._read_environment or not isinstance(env_file, str | os.PathLike):
        return None
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        descriptor = os.open(env_file, flags)
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"{where}: cannot be read: {error.strerror}"
    try:
        kind = file_kind(os.fstat(descriptor).st_mode)
    finally:
        os.close(descriptor)
    return None if kind is None else f"{where}: is not a regular file ({kind})"


# RFC 7230 section 3.2.6: a header name is a token.
_TOKEN_CHARACTERS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
# gRPC metadata (PROTOCOL-HTTP2.md): lower-case names of these characters, and values of
# printable ASCII; a "-bin" name carries bytes, which a text setting cannot give.
_GRPC_NAME_CHARACTERS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz-_.")


def _character(character: str) -> str:
    return f"U+{ord(character):04X}"


def _unquote(text: str, position: int, part: str) -> str:
    try:
        return urllib.parse.unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise ValueError(f"entry {position}: the {part} is not UTF-8 once URL-decoded") from None


def _parse_headers(raw: str) -> dict[str, str]:
    """Parse the OTel ``k=v,k2=v2`` form (URL-encoded); the message never holds a value.

    Names must be RFC 7230 tokens and values free of control characters; a name that is
    not a token is not shown either, as it may be a misplaced secret.
    """
    headers: dict[str, str] = {}
    for position, entry in enumerate(raw.split(","), start=1):
        if not entry.strip():
            continue
        name, separator, value = entry.partition("=")
        name = _unquote(name, position, "name").strip()
        if not separator or not name:
            raise ValueError(f"malformed header list: entry {position} is not 'name=value'")
        for character in name:
            if character not in _TOKEN_CHARACTERS:
                raise ValueError(
                    f"entry {position}: the name (not shown) is not an RFC 7230 token: "
                    f"it contains {_character(character)}"
                )
        value = _unquote(value, position, "value").strip()
        for character in value:
            if (character < " " and character != "\t") or character == "\x7f":
                raise ValueError(
                    f"header {name.lower()!r}: the value (not shown) contains the control "
                    f"character {_character(character)}"
                )
            if character > "\xff":
                raise ValueError(
                    f"header {name.lower()!r}: the value (not shown) contains "
                    f"{_character(character)}, outside the ISO-8859-1 an HTTP header can carry"
                )
        headers[name.lower()] = value
    return headers


def mask_url_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` masked, for messages and notices."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme_end = head.find("://")
    return (head[: scheme_end + 3] if scheme_end >= 0 else "") + "***@" + tail


def _check_grpc_headers(headers: Mapping[str, str]) -> None:
    for name, value in headers.items():
        for character in name:
            if character not in _GRPC_NAME_CHARACTERS:
                raise ValueError(
                    f"header {name!r}: gRPC metadata names allow only a-z, 0-9, '-', '_' "
                    f"and '.', not {_character(character)}"
                )
        if name.endswith("-bin"):
            raise ValueError(f"header {name!r}: a gRPC '-bin' header carries bytes, not text")
        for character in value:
            if not " " <= character <= "~":
                raise ValueError(
                    f"header {name!r}: the value (not shown) contains {_character(character)}; "
                    "gRPC metadata values are printable ASCII"
                )


class OTLPSettings(BaseModel):
    """Where and how the OTLP exporter sends log records.

    Each field falls back to ``OTEL_EXPORTER_OTLP_LOGS_<NAME>``, then
    ``OTEL_EXPORTER_OTLP_<NAME>``, when ``CODEX_TELEMETRY_OTLP__<NAME>`` is not set.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: Literal["grpc", "http/protobuf", "http/json"] = "http/protobuf"
    """``CODEX_TELEMETRY_OTLP__PROTOCOL``; default ``http/protobuf``."""
    endpoint: str = ""
    """``CODEX_TELEMETRY_OTLP__ENDPOINT``, then ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` as is,
    then ``OTEL_EXPORTER_OTLP_ENDPOINT`` plus ``/v1/logs`` for the HTTP protocols. Default
    ``http://localhost:4318/v1/logs`` (HTTP) or ``localhost:4317`` (gRPC). Always the final
    address once the settings are built."""
    headers: SecretStr | None = None
    """``CODEX_TELEMETRY_OTLP__HEADERS``: ``name=value,name2=value2``, URL-encoded (a mapping
    is accepted as an argument). Secret: never shown; read it with :meth:`headers_dict`."""
    timeout: float = Field(default=10.0, gt=0, le=_MAX_SECONDS, allow_inf_nan=False)
    """``CODEX_TELEMETRY_OTLP__TIMEOUT`` in seconds (the ``OTEL_*`` fallbacks are in
    milliseconds, as the OpenTelemetry specification says); default 10."""
    compression: Literal["gzip", "none"] = "gzip"
    """``CODEX_TELEMETRY_OTLP__COMPRESSION``: ``gzip`` (default) or ``none``."""
    certificate: Path | None = None
    """``CODEX_TELEMETRY_OTLP__CERTIFICATE``: CA bundle used to verify the collector."""
    client_key: Path | None = None
    """``CODEX_TELEMETRY_OTLP__CLIENT_KEY``: private key for mutual TLS."""
    client_certificate: Path | None = None
    """``CODEX_TELEMETRY_OTLP__CLIENT_CERTIFICATE``: certificate chain for mutual TLS."""
    insecure: bool | None = None
    """``CODEX_TELEMETRY_OTLP__INSECURE``: gRPC without TLS; None lets the exporter decide
    from the endpoint's scheme."""

    @field_validator("headers", mode="before")
    @classmethod
    def _check_headers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, Mapping):
            value = ",".join(
                f"{urllib.parse.quote(str(k), safe='')}={urllib.parse.quote(str(v), safe='')}"
                for k, v in value.items()
            )
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(raw, str):
            headers = _parse_headers(raw)
            if info.data.get("protocol") == "grpc":
                _check_grpc_headers(headers)
        return value

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str, info: ValidationInfo) -> str:
        # gRPC takes host:port as well; requests cannot send to anything but a URL, and
        # would drop every event at run time instead of failing here.
        _sendable_text(value)
        protocol = info.data.get("protocol", "http/protobuf")
        if value and protocol != "grpc":
            parsed = urllib.parse.urlsplit(value)
            if parsed.scheme.lower() not in ("http", "https"):
                raise _BadValueError(
                    value, f"is not an http:// or https:// URL, as {protocol} needs"
                )
            if not parsed.hostname:
                raise _BadValueError(
                    value, f"has no host: {protocol} needs a URL like http://localhost:4318/v1/logs"
                )
            try:
                parsed.port  # noqa: B018 - parsing the port is the check
            except ValueError:
                raise _BadValueError(
                    value, "has a port that is not a number from 0 to 65535"
                ) from None
        return value

    @field_validator("certificate", "client_key", "client_certificate")
    @classmethod
    def _check_readable(cls, value: Path | None) -> Path | None:
        return _readable_file(value)

    @model_validator(mode="after")
    def _default_endpoint(self) -> OTLPSettings:
        if not self.endpoint:
            default = _GRPC_DEFAULT_ENDPOINT if self.protocol == "grpc" else _HTTP_DEFAULT_ENDPOINT
            object.__setattr__(self, "endpoint", default)
        return self

    def headers_dict(self) -> dict[str, str]:
        """The headers as plain values (names lower-cased), for the exporter only."""
        if self.headers is None:
            return {}
        return _parse_headers(self.headers.get_secret_value())


class FileSettings(BaseModel):
    """The JSON Lines sink (``exporter="file"``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path | None = None
    """``CODEX_TELEMETRY_FILE__PATH``: the file events are appended to, one per line.
    Required when ``exporter`` is ``file``."""

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: Path | None) -> Path | None:
        # Opening a named pipe with no reader blocks until one comes: init() hung.
        if value is None:
            return None
        try:
            mode = os.stat(value).st_mode
        except OSError:
            return value  # created, or reported, when the sink opens it
        kind = file_kind(mode)
        # A character device (/dev/null, a terminal) is fine, and so is a named pipe that
        # has a reader: the sink opens it without waiting and refuses one without.
        if kind is not None and kind not in ("a character device", "a named pipe"):
            raise _BadValueError(str(value), f"is {kind}, not a file events can be appended to")
        return value


class CodexBackendSettings(BaseModel):
    """The Codex analytics backend sink (``exporter="codex_backend"``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = "https://chatgpt.com/backend-api"
    """``CODEX_TELEMETRY_CODEX_BACKEND__BASE_URL``; default
    ``https://chatgpt.com/backend-api``."""
    token: SecretStr | None = None
    """``CODEX_TELEMETRY_CODEX_BACKEND__TOKEN``: bearer token. Secret; required when
    ``exporter`` is ``codex_backend``."""
    account_id: str | None = None
    """``CODEX_TELEMETRY_CODEX_BACKEND__ACCOUNT_ID``: sent as ``ChatGPT-Account-Id``."""
    timeout: float = Field(default=10.0, gt=0, le=_MAX_SECONDS, allow_inf_nan=False)
    """``CODEX_TELEMETRY_CODEX_BACKEND__TIMEOUT`` in seconds; default 10."""

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return _sendable_text(value)  # type: ignore[no-any-return]

    @field_validator("account_id")
    @classmethod
    def _check_account_id(cls, value: str | None) -> str | None:
        # Sent as a header: a value requests refuses would drop every event.
        problem = None if value is None else _header_value_problem(value)
        if problem is not None:
            raise _BadValueError(value, problem)
        return value

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        problem = None if value is None else _header_value_problem(value.get_secret_value())
        if problem is not None:
            raise ValueError(f"the value (not shown) {problem}")
        return value


class SpoolSettings(BaseModel):
    """The durable spool: events not yet delivered, kept on disk for the next run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool | None = None
    """``CODEX_TELEMETRY_SPOOL__ENABLED``; None (default): on for the ``otlp`` and
    ``codex_backend`` exporters, off for the others."""
    directory: Path | None = None
    """``CODEX_TELEMETRY_SPOOL__DIRECTORY``; None (default): the ``spool`` folder of the
    per-user cache directory (``~/.cache/codex-telemetry/spool`` on Linux)."""
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)
    """``CODEX_TELEMETRY_SPOOL__MAX_BYTES``: the most one process keeps on disk per
    destination, oldest dropped first; default 64 MiB, at least 1 MiB."""

    def active_for(self, exporter: str) -> bool:
        """Whether the spool is used with ``exporter``."""
        if self.enabled is None:
            return exporter in ("otlp", "codex_backend")
        return self.enabled and exporter != "none"


class ReducerSettings(BaseModel):
    """Bounds on the reducer's state; None keeps the reducer's own default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_connections: PositiveInt | None = None
    """``CODEX_TELEMETRY_REDUCER__MAX_CONNECTIONS``: connections remembered."""
    max_threads: PositiveInt | None = None
    """``CODEX_TELEMETRY_REDUCER__MAX_THREADS``: threads remembered."""
    max_pending_requests: PositiveInt | None = None
    """``CODEX_TELEMETRY_REDUCER__MAX_PENDING_REQUESTS``: requests awaiting a response."""
    max_turns: PositiveInt | None = None
    """``CODEX_TELEMETRY_REDUCER__MAX_TURNS``: turns awaiting completion."""
    idle_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """``CODEX_TELEMETRY_REDUCER__IDLE_SECONDS``: state untouched this long may be evicted."""

    def given(self) -> dict[str, Any]:
        """The limits that were set, as keyword arguments for ``ReducerLimits``."""
        return {name: value for name, value in self.model_dump().items() if value is not None}


BeforeSend: TypeAlias = Callable[[dict[str, Any]], "dict[str, Any] | None"]
"""``before_send``: takes an event's wire dict, returns it (changed or not) or None."""


def _event_type_names(value: Any) -> Any:
    """A JSON array or a comma list, as a variable gives it; anything else as it is."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            raise _BadValueError(value, "is not a JSON array of event types") from None
    return [name.strip() for name in text.split(",") if name.strip()]


def _known_event_types() -> frozenset[str]:
    from codex_telemetry._hooks import EVENT_TYPES  # noqa: PLC0415 - imports the events

    return EVENT_TYPES


def _check_event_types(value: frozenset[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    known = _known_event_types()
    unknown = sorted(value - known)
    if unknown:
        shown = ", ".join(repr(name) for name in unknown)
        raise _BadValueError(
            sorted(value),
            f"holds {'an unknown event type' if len(unknown) == 1 else 'unknown event types'} "
            f"{shown}; known: {', '.join(sorted(known))}",
        )
    return value


class EventTypeSettings(BaseModel):
    """Which event types are sent (the others are dropped before any sink sees them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    include: Annotated[frozenset[str] | None, NoDecode] = None
    """``CODEX_TELEMETRY_EVENT_TYPES__INCLUDE``: only these event types are sent (a JSON
    array or a comma list); None (default) sends every type."""
    exclude: Annotated[frozenset[str], NoDecode] = frozenset()
    """``CODEX_TELEMETRY_EVENT_TYPES__EXCLUDE``: these event types are not sent (a JSON
    array or a comma list); default none."""

    @field_validator("include", "exclude", mode="before")
    @classmethod
    def _parse_names(cls, value: Any) -> Any:
        return _event_type_names(value)

    @field_validator("include", "exclude")
    @classmethod
    def _check_names(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        return _check_event_types(value)

    @field_validator("include")
    @classmethod
    def _check_some_included(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        # An empty list would send nothing, silently: most likely a variable left empty.
        if value is not None and not value:
            raise _BadValueError(
                [],
                "is empty, which would send no event: leave it unset to send every type, "
                "or set enabled=false to send nothing",
            )
        return value


class TelemetrySettings(BaseSettings):
    """Every setting of the SDK. Build it with :func:`codex_telemetry.init` (or directly).

    Environment variables use the prefix ``CODEX_TELEMETRY_`` and ``__`` between a group
    and its field (``CODEX_TELEMETRY_OTLP__ENDPOINT``); a ``.env`` file in the working
    directory is read too. Built directly, a bad value raises pydantic's
    ``ValidationError``; ``init()`` raises :class:`ConfigurationError` instead, and also
    checks that the chosen exporter has what it needs. Each field's docstring names its
    variable; it is not copied into the field's ``description`` (pydantic would read this
    module's source for that on every import).
    """

    model_config = SettingsConfigDict(
        env_prefix=_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        # An exported but empty variable counts as unset, as the OTel SDKs treat theirs.
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
    )

    # Set to False by codex_telemetry.testing: captured tests must not depend on the shell.
    _read_environment: ClassVar[bool] = True

    enabled: bool = True
    """``CODEX_TELEMETRY_ENABLED``; default true. Always false when ``DO_NOT_TRACK`` is
    ``1``/``true`` or ``OTEL_SDK_DISABLED`` is ``true``."""
    general_analytics: bool = False
    """``CODEX_TELEMETRY_GENERAL_ANALYTICS``; default false. The GeneralAnalytics feature
    flag: gates the thread, turn, steer, sub-agent and compaction facts."""
    originator: str = "codex_cli_rs"
    """``CODEX_TELEMETRY_ORIGINATOR``: ``product_client_id`` of skill, app and plugin
    events; default ``codex_cli_rs``."""
    exporter: Literal["otlp", "console", "file", "codex_backend", "none"] = "otlp"
    """``CODEX_TELEMETRY_EXPORTER``: ``otlp`` (default), ``console``, ``file``,
    ``codex_backend`` or ``none`` (collection off)."""
    service_name: str = "codex-telemetry"
    """``CODEX_TELEMETRY_SERVICE_NAME``, then ``OTEL_SERVICE_NAME``, then ``service.name`` in
    ``OTEL_RESOURCE_ATTRIBUTES``; default ``codex-telemetry``."""
    service_version: str | None = None
    """``CODEX_TELEMETRY_SERVICE_VERSION``; None reports the package version."""
    runtime_version: str = __version__
    """``CODEX_TELEMETRY_RUNTIME_VERSION``: ``codex_rs_version`` reported for facts that
    carry no runtime; default the package version."""
    max_queue_size: PositiveInt = 10_000
    """``CODEX_TELEMETRY_MAX_QUEUE_SIZE``: facts waiting for the worker; default 10000.
    A fact that finds the queue full is dropped and counted."""
    max_export_queue_size: PositiveInt = 2048
    """``CODEX_TELEMETRY_MAX_EXPORT_QUEUE_SIZE``: events waiting for export; default 2048."""
    export_batch_size: PositiveInt = 512
    """``CODEX_TELEMETRY_EXPORT_BATCH_SIZE``: events per export request; default 512."""
    export_interval: float = Field(default=1.0, gt=0, le=_MAX_SECONDS, allow_inf_nan=False)
    """``CODEX_TELEMETRY_EXPORT_INTERVAL``: seconds between exports; default 1."""
    shutdown_timeout: float = Field(default=1.0, ge=0, le=_MAX_SECONDS, allow_inf_nan=False)
    """``CODEX_TELEMETRY_SHUTDOWN_TIMEOUT``: the most exit waits for delivery, in seconds;
    default 1."""
    strict: bool | None = None
    """``CODEX_TELEMETRY_STRICT``: raise ``TypeError`` for a value that is not a fact
    instead of logging it. None (default): strict while pytest runs a test."""
    debug: bool = False
    """``CODEX_TELEMETRY_DEBUG``; default false. Log, for each fact, what the reducer did
    with it or what its turn still waits for, at DEBUG on the ``codex_telemetry`` logger.
    Chosen once when the client is built: off, it costs nothing."""
    otlp: OTLPSettings = OTLPSettings()
    """The OTLP exporter (``CODEX_TELEMETRY_OTLP__*``)."""
    file: FileSettings = FileSettings()
    """The JSON Lines file sink (``CODEX_TELEMETRY_FILE__*``)."""
    codex_backend: CodexBackendSettings = CodexBackendSettings()
    """The Codex backend sink (``CODEX_TELEMETRY_CODEX_BACKEND__*``)."""
    reducer: ReducerSettings = ReducerSettings()
    """Reducer state bounds (``CODEX_TELEMETRY_REDUCER__*``)."""
    spool: SpoolSettings = SpoolSettings()
    """The durable spool (``CODEX_TELEMETRY_SPOOL__*``)."""
    event_types: EventTypeSettings = EventTypeSettings()
    """Which event types are sent (``CODEX_TELEMETRY_EVENT_TYPES__*``)."""
    before_send: BeforeSend | None = None
    """Set in code only (a ``CODEX_TELEMETRY_BEFORE_SEND`` variable is refused): called on
    the worker with each event's wire dict; returns it
    (changed or not) to send it, or None to drop it. Its faults are counted and logged,
    and the event is sent unchanged."""

    @field_validator("before_send", mode="before")
    @classmethod
    def _code_only(cls, value: Any) -> Any:
        if value is not None and not callable(value):
            raise _BadValueError(value, "is not callable; before_send is set in code only")
        return value

    @field_validator("originator", "service_name", "service_version", "runtime_version")
    @classmethod
    def _check_sendable(cls, value: Any) -> Any:
        # Each of these is sent with every event (or its resource): one that cannot be
        # encoded would make every event undeliverable.
        return _sendable_text(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, environment, ``.env``; the ``OTEL_*`` fallbacks come after these."""
        if not cls._read_environment:
            return (init_settings,)
        return (init_settings, env_settings, _OwnVariablesOnly(dotenv_settings))

    @model_validator(mode="before")
    @classmethod
    def _apply_fallbacks(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {key: _as_dict(value) for key, value in data.items()}
        if not cls._read_environment:
            return data
        if _is_true("DO_NOT_TRACK") or _is_true("OTEL_SDK_DISABLED"):
            data["enabled"] = False
        otlp = data.get("otlp")
        if otlp is None or isinstance(otlp, dict):
            otlp = dict(otlp or {})
            for path, names in _OTEL_FALLBACKS.items():
                target = data if len(path) == 1 else otlp
                key = path[-1]
                if target.get(key) is not None or key == "endpoint":
                    continue
                for name in names:
                    if os.environ.get(name):
                        value: Any = os.environ[name]
                        if path in _MILLISECOND_PATHS:
                            value = _milliseconds_to_seconds(value)
                        target[key] = value
                        break
            if otlp.get("endpoint") is None:
                otlp.pop("endpoint", None)
                if os.environ.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"):
                    otlp["endpoint"] = os.environ["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"]
                elif os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
                    base = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
                    if otlp.get("protocol", "http/protobuf") != "grpc":
                        base = base.rstrip("/") + "/v1/logs"
                    otlp["endpoint"] = base
            data["otlp"] = otlp
        if data.get("service_name") is None:
            resource_name = _service_name_in_resource_attributes()
            if resource_name:
                data["service_name"] = resource_name
        return data

    def effective_strict(self) -> bool:
        """``strict``, with None meaning "while pytest runs a test"."""
        if self.strict is not None:
            return self.strict
        return "PYTEST_CURRENT_TEST" in os.environ


class _OwnVariablesOnly(PydanticBaseSettingsSource):
    """The ``.env`` file without the variables of the other tools that share it.

    With ``extra="forbid"``, pydantic-settings hands every variable of the file to the
    model, so ``DATABASE_URL=...`` next to ours failed as an unknown setting. A
    ``CODEX_TELEMETRY_*`` variable that names no setting is reported by ``load_settings``,
    as one in the environment is, naming the file.
    """

    def __init__(self, dotenv: PydanticBaseSettingsSource) -> None:
        super().__init__(dotenv.settings_cls)
        self._dotenv = dotenv

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: :meth:`__call__` reads through the wrapped source."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        fields = self.settings_cls.model_fields
        return {name: value for name, value in self._dotenv().items() if name in fields}


def _service_name_in_resource_attributes() -> str | None:
    """``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES`` (``k=v,k2=v2``, URL-encoded).

    The OpenTelemetry specification ranks it below ``OTEL_SERVICE_NAME`` and above the
    default, so a name given only there must not lose to ``codex-telemetry``.
    """
    for item in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, separator, value = item.partition("=")
        if separator and key.strip() == "service.name":
            return urllib.parse.unquote(value.strip()) or None
    return None


def _as_dict(value: Any) -> Any:
    # A nested settings object given as an argument merges with the environment like a
    # dict of the fields that were set on it.
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    if isinstance(value, dict):
        return {key: item for key, item in value.items() if item is not None}
    return value


def _milliseconds_to_seconds(value: str) -> Any:
    try:
        return float(value) / 1000.0
    except ValueError:
        return value  # left for validation, which names the variable


def _nest(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Drop None arguments and turn ``otlp__endpoint=...`` into ``otlp={"endpoint": ...}``."""
    nested: dict[str, Any] = {}
    for key, given in overrides.items():
        if given is None:
            continue
        value = _as_dict(given)
        if "__" in key:
            group, _, field = key.partition("__")
            existing = nested.setdefault(group, {})
            if isinstance(existing, dict):
                existing[field] = value
            continue
        if isinstance(value, dict) and isinstance(nested.get(key), dict):
            nested[key].update({k: v for k, v in value.items() if v is not None})
        else:
            nested[key] = value
    return nested


# --- where a value came from, and what to say about it --------------------------------


_LONGEST_SHOWN = 120


def _shown(value: object) -> str:
    """``repr(value)``, cut short when it is too long to read in one line."""
    shown = repr(value)
    if len(shown) <= _LONGEST_SHOWN:
        return shown
    length = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return f"{shown[: _LONGEST_SHOWN - 5]}...{shown[-1]}{length}"


@dataclasses.dataclass(frozen=True)
class _Origin:
    """Where a setting's value came from: an argument, or a variable and where it was set."""

    where: str
    """``argument``, ``environment`` or ``.env file <path>``."""
    variable: str | None
    """The variable that held the value, as it is named there; None for an argument."""
    given: Any
    """The value as it was given, before any conversion."""


def _lookup(data: Any, path: Sequence[str]) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, Mapping) else None
    return data


class _Sources:
    """The sources of the settings, read again to explain a problem or a conflict.

    Each is consulted in the order of precedence, so the origin found for a setting is
    the one whose value the settings hold.
    """

    def __init__(self, settings_cls: type[TelemetrySettings], arguments: Mapping[str, Any]):
        self.settings_cls = settings_cls
        self.arguments = arguments
        self.read_environment = settings_cls._read_environment
        self.environment: dict[str, tuple[str, str]] = {}
        self.dotenv: dict[str, tuple[str, str]] = {}
        self.dotenv_where = ".env file"
        if not self.read_environment:
            return
        # Empty variables count as unset, as they do for the settings themselves.
        self.environment = {
            name.upper(): (name, value) for name, value in os.environ.items() if value
        }
        env_file = settings_cls.model_config.get("env_file")
        if not isinstance(env_file, str | os.PathLike):
            return
        self.dotenv_where = f".env file {Path(env_file).absolute()}"
        try:
            # Checked first: building the source costs more than the whole check without it.
            variables = (
                DotEnvSettingsSource(settings_cls).env_vars if os.path.exists(env_file) else {}
            )
        except (OSError, UnicodeDecodeError):  # reported by load_settings itself
            variables = {}
        self.dotenv = {
            name.upper(): (name.upper(), value) for name, value in variables.items() if value
        }

    def origin(self, path: tuple[str, ...]) -> _Origin | None:
        """Where the value of the setting at ``path`` came from; None for its default."""
        given = _lookup(self.arguments, path)
        if given is not None:
            return _Origin("argument", None, given)
        if not self.read_environment:
            return None
        for where, variables in (
            ("environment", self.environment),
            (self.dotenv_where, self.dotenv),
        ):
            found = _origin_in(variables, path, where)
            if found is not None:
                return found
        for name in _otel_variables(path):
            if os.environ.get(name):
                return _Origin("environment", name, os.environ[name])
        return None

    def unknown_variables(self) -> list[str]:
        """A problem for each ``CODEX_TELEMETRY_*`` variable that names no setting."""
        if not self.read_environment:
            return []
        known = _known_variables(self.settings_cls)
        problems = []
        for where, variables in (
            ("environment", self.environment),
            (self.dotenv_where, self.dotenv),
        ):
            for upper, (name, _) in variables.items():
                if upper.startswith(_PREFIX) and upper not in known:
                    problem = f"{name} ({where}): unknown setting"
                    # Compared without the prefix, which every candidate shares.
                    close = difflib.get_close_matches(
                        upper.removeprefix(_PREFIX),
                        sorted(known_name.removeprefix(_PREFIX) for known_name in known),
                        n=1,
                    )
                    if close:
                        problem += f"; did you mean {_PREFIX}{close[0]}?"
                    problems.append(problem)
        return problems


def _origin_in(
    variables: Mapping[str, tuple[str, str]], path: tuple[str, ...], where: str
) -> _Origin | None:
    exact = variables.get(_variable(path))
    if exact is not None:
        return _Origin(where, *exact)
    for depth in range(len(path) - 1, 0, -1):  # a group given as one JSON object
        group = variables.get(_variable(path[:depth]))
        if group is None:
            continue
        name, raw = group
        try:
            given = _lookup(json.loads(raw), path[depth:])
        except ValueError:
            return _Origin(where, name, raw)
        if given is not None:
            return _Origin(where, name, given)
    return None


def _otel_variables(path: tuple[str, ...]) -> tuple[str, ...]:
    """The standard variables read for ``path``, in the order ``_apply_fallbacks`` reads them."""
    if path == ("service_name",):
        return (*_OTEL_FALLBACKS[path], "OTEL_RESOURCE_ATTRIBUTES")
    return _OTEL_FALLBACKS.get(path, ())


@functools.cache
def _known_variables(settings_cls: type[TelemetrySettings]) -> frozenset[str]:
    names = set()
    for name, info in settings_cls.model_fields.items():
        names.add(_variable((name,)))
        group = info.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            names.update(_variable((name, field)) for field in group.model_fields)
    return frozenset(names)


def _label(path: tuple[str, ...], origin: _Origin | None) -> str:
    """``setting (VARIABLE)``, naming the variable the value came from."""
    name = ".".join(path) or "settings"
    if origin is None or origin.variable is None:
        return f"{name} ({_variable(path)})"
    if origin.where == "environment":
        return f"{name} ({origin.variable})"
    return f"{name} ({origin.variable} in {origin.where})"


_QUOTED = re.compile(r"'([^']*)'")


# pydantic error types whose message never quotes the input.
_UNQUOTING_KINDS = frozenset({"model_type", "dict_type", "string_type"})


def _holds_secret(path: tuple[str, ...]) -> bool:
    """A secret setting, or a group given whole that contains one (or is inside one)."""
    return any(
        secret[: len(path)] == path or path[: len(secret)] == secret for secret in _SECRET_PATHS
    )


def _describe(error: Mapping[str, Any], path: tuple[str, ...], origin: _Origin | None) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required"
    message = str(error["msg"]).removeprefix("Value error, ")
    if _holds_secret(path):
        # Only our own messages (headers) and pydantic's type messages never quote an
        # input; any other may, and the input may be a secret.
        if kind == "value_error":
            return message
        if kind in _UNQUOTING_KINDS:
            return f"{message[:1].lower()}{message[1:]} (value not shown: secret)"
        return "invalid value (not shown: secret)"
    given = origin.given if origin is not None else error.get("input")
    # A URL can carry a credential in its user-info: never shown.
    if isinstance(given, str) and ("://" in given or path[-1].endswith(("endpoint", "url"))):
        given = mask_url_userinfo(given)
    shown = _shown(given)
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, _BadValueError):
        return f"{shown} {cause.problem}"
    if kind == "literal_error":
        choices = _QUOTED.findall(str(error.get("ctx", {}).get("expected", "")))
        return f"{shown} is not one of {', '.join(choices)}"
    if kind == "value_error":
        return message
    return f"{shown} is invalid: {message[:1].lower()}{message[1:]}"


def _problems(error: ValidationError, sources: _Sources) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        path = tuple(str(part) for part in item["loc"] if isinstance(part, str))
        origin = sources.origin(path)
        if item["type"] == "extra_forbidden":
            if origin is None or origin.where == "argument":
                problems.append(f"{'.'.join(path)}: unknown setting")
            elif (origin.variable or "").upper() != _variable(path):
                # Inside a group's JSON object; a variable of its own is reported apart.
                problems.append(f"{_label(path, origin)}: unknown setting")
            continue
        problems.append(f"{_label(path, origin)}: {_describe(item, path, origin)}")
    return problems


_UNPARSABLE_FIELD = re.compile(r'field "([^"]+)"')


def _unparsable(error: SettingsError, sources: _Sources) -> str:
    found = _UNPARSABLE_FIELD.search(str(error))
    if found is None:
        # Not shown: the message may quote the value, and the value may be a secret.
        return "settings: a variable cannot be parsed"
    path = (found.group(1),)
    return f"{_label(path, sources.origin(path))}: not a valid JSON object"


def _check_exporter(settings: TelemetrySettings) -> list[str]:
    if settings.exporter == "file" and settings.file.path is None:
        return [f"file.path ({_variable(('file', 'path'))}): required when exporter is 'file'"]
    if settings.exporter == "codex_backend" and settings.codex_backend.token is None:
        variable = _variable(("codex_backend", "token"))
        return [f"codex_backend.token ({variable}): required when exporter is 'codex_backend'"]
    return []


def _check_applicable(settings: TelemetrySettings, sources: _Sources) -> list[str]:
    """Refuse a setting that cannot apply when it was set for this SDK; warn when it comes
    from a standard ``OTEL_*`` variable, which other programs read too."""
    otlp = settings.otlp
    if otlp.insecure and otlp.protocol != "grpc":
        path = ("otlp", "insecure")
        origin = sources.origin(path)
        problem = (
            f"applies to gRPC only; with {otlp.protocol} the endpoint's scheme decides "
            "(http:// or https://)"
        )
        if origin is not None and (origin.variable or "").startswith("OTEL_"):
            _logger.warning("codex_telemetry: %s is ignored: it %s", _label(path, origin), problem)
        else:
            return [f"{_label(path, origin)}: {problem}"]
    return []


# What a LoggerProvider of the host's own replaces: its processors export, its resource
# describes the service.
_PROVIDER_REPLACES: tuple[tuple[str, ...], ...] = (
    *(("otlp", name) for name in OTLPSettings.model_fields),
    ("max_export_queue_size",),
    ("export_batch_size",),
    ("export_interval",),
    ("service_name",),
    ("service_version",),
)


def check_logger_provider(
    settings: TelemetrySettings, overrides: Mapping[str, Any], *, given: bool
) -> None:
    """A ``LoggerProvider`` passed to ``init()`` is used by the ``otlp`` exporter only.

    With another exporter chosen in the same call it could never apply: a
    :class:`ConfigurationError`. Chosen by a variable (a developer's
    ``CODEX_TELEMETRY_EXPORTER=console``), the variable wins and a warning says so. With
    ``otlp``, the provider exports with its own processors and resource: a warning names
    the settings given for this SDK that it replaces (the standard ``OTEL_*`` variables
    are left alone, since the provider's own exporter may read them).
    """
    if not given or not settings.enabled or settings.exporter == "none":
        return
    sources = _Sources(type(settings), _nest(overrides))
    if settings.exporter == "otlp":
        replaced = []
        for path in _PROVIDER_REPLACES:
            origin = sources.origin(path)
            if origin is None or (origin.variable or "").startswith("OTEL_"):
                continue
            replaced.append(".".join(path) if origin.variable is None else _label(path, origin))
        if replaced:
            _logger.warning(
                "codex_telemetry: the LoggerProvider given to init() exports with its own "
                "processors and resource; these settings do not apply: %s",
                ", ".join(replaced),
            )
        return
    path = ("exporter",)
    origin = sources.origin(path)
    problem = (
        f"exporter {settings.exporter!r} does not send through a LoggerProvider; only 'otlp' does"
    )
    if origin is None or origin.where == "argument":
        raise ConfigurationError([f"logger_provider: {problem}"])
    _logger.warning(
        "codex_telemetry: the LoggerProvider given to init() is not used: %s: %s",
        _label(path, origin),
        problem,
    )


def _check_resource_attributes(settings_cls: type[TelemetrySettings]) -> None:
    """Say once, in our words, which ``OTEL_RESOURCE_ATTRIBUTES`` entries are left out.

    The OpenTelemetry SDK parses the variable each time it builds a resource (once when
    its logs module is imported, again for our resource) and warns each time; those
    repeats of what is said here are filtered out.
    """
    if not settings_cls._read_environment:
        return
    raw = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    bad = []
    for entry in raw.split(","):
        key, separator, _ = entry.partition("=")
        if entry.strip() and (not separator or not key.strip()):
            bad.append(entry)
    if not bad:
        return
    _logger.warning(
        "codex_telemetry: OTEL_RESOURCE_ATTRIBUTES: %s not key=value, left out of the resource",
        ", ".join(_shown(entry) for entry in bad) + (" is" if len(bad) == 1 else " are"),
    )
    _ReportedResourceEntries.install(bad)


class _ReportedResourceEntries(logging.Filter):
    """Drops the OpenTelemetry SDK's repeats of the resource entries reported above."""

    _instance: ClassVar[_ReportedResourceEntries | None] = None

    def __init__(self) -> None:
        super().__init__()
        self.entries: set[str] = set()

    @classmethod
    def install(cls, entries: Sequence[str]) -> None:
        if cls._instance is None:
            cls._instance = cls()
            logging.getLogger("opentelemetry.sdk.resources").addFilter(cls._instance)
            logging.getLogger("opentelemetry.attributes").addFilter(cls._instance)
        cls._instance.entries.update(entries)

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a warning about an entry already reported."""
        message = record.getMessage()
        if message.startswith("Invalid key value resource attribute pair "):
            return not any(
                message.startswith(f"Invalid key value resource attribute pair {entry}:")
                for entry in self.entries
            )
        # An entry with an empty key (the wording of OpenTelemetry 1.40+, then of 1.39).
        if message.startswith(("invalid attribute key ``.", "invalid key ``.")):
            return not any(entry.partition("=")[1] for entry in self.entries)
        return True


def _check_resource_encoding(settings: TelemetrySettings) -> list[str]:
    """Refuse an ``OTEL_RESOURCE_ATTRIBUTES`` entry that no request could carry.

    The OTLP exporter sends the resource with every request, so one attribute that is
    not UTF-8 text would lose every event. ``service.name`` is checked as the
    ``service_name`` setting; the variable only matters when OTLP requests are sent.
    """
    if not type(settings)._read_environment or not settings.enabled:
        return []
    if settings.exporter != "otlp":
        return []
    problems = []
    for entry in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, separator, value = entry.partition("=")
        key = key.strip()
        if not separator or not key or key == "service.name":
            continue
        # Decoded as the OpenTelemetry SDK decodes it: an escape that is not UTF-8
        # becomes U+FFFD there, so only a raw byte of the environment cannot be sent.
        for part, text in (("key", key), ("value", urllib.parse.unquote(value.strip()))):
            character = _unsendable_character(text)
            if character is not None:
                shown = "an attribute's key" if part == "key" else f"the value of {key!r}"
                problems.append(
                    f"OTEL_RESOURCE_ATTRIBUTES (environment): {shown} "
                    + _NOT_UTF8.format(character)
                )
                break
    return problems


def load_settings(
    settings_cls: type[TelemetrySettings] = TelemetrySettings, /, **overrides: Any
) -> TelemetrySettings:
    """Build the settings from arguments and the environment, or raise ConfigurationError."""
    arguments = _nest(overrides)
    env_file = settings_cls.model_config.get("env_file")
    if isinstance(env_file, str | os.PathLike):
        # Before anything reads it: a named pipe as ``.env`` made init() wait forever.
        problem = _check_dotenv(settings_cls, f".env file {Path(env_file).absolute()}")
        if problem is not None:
            raise ConfigurationError([problem])
    sources = _Sources(settings_cls, arguments)
    problems = sources.unknown_variables()
    # Errors are raised after the ``except`` blocks, not in them: raised inside, one would
    # keep the original error as its ``__context__`` (``from None`` only hides it from
    # tracebacks), and pydantic's error quotes inputs, which may be secrets.
    settings: TelemetrySettings | None = None
    try:
        settings = settings_cls(**arguments)
    except ValidationError as error:
        problems += _problems(error, sources)
    except SettingsError as error:
        # A group variable (``CODEX_TELEMETRY_OTLP``) whose value is not JSON.
        problems.append(_unparsable(error, sources))
    except UnicodeDecodeError:
        problems.append(f"{sources.dotenv_where}: cannot be read as UTF-8 text")
    except OSError as error:
        problems.append(f"{sources.dotenv_where}: cannot be read: {error.strerror}")
    if settings is None:
        raise ConfigurationError(problems) from None
    problems += (
        _check_exporter(settings)
        + _check_applicable(settings, sources)
        + _check_resource_encoding(settings)
    )
    if problems:
        raise ConfigurationError(problems) from None
    _check_resource_attributes(settings_cls)
    return settings


class SettingSource(NamedTuple):
    """Where the effective value of one setting came from (see :func:`setting_sources`).

    ``kind`` is ``argument``, ``environment`` (a ``CODEX_TELEMETRY_*`` variable),
    ``dotenv`` (the same variable in ``.env``), ``otel`` (a standard ``OTEL_*`` variable),
    ``opt_out`` (``DO_NOT_TRACK`` or ``OTEL_SDK_DISABLED``, which override everything) or
    ``default``; ``variable`` names the variable, when one supplied the value.
    """

    kind: Literal["argument", "environment", "dotenv", "otel", "opt_out", "default"]
    variable: str | None = None


def setting_sources(
    settings_cls: type[TelemetrySettings] = TelemetrySettings, /, **overrides: Any
) -> dict[str, SettingSource]:
    """For each setting (``"otlp.endpoint"``, ...), the source its effective value came from.

    Reads the sources the way the error messages do (arguments, environment, ``.env``, the
    ``OTEL_*`` fallbacks, in the order of precedence), so the precedence is written once.
    Call it after :func:`load_settings` succeeded with the same arguments: it does not
    validate.
    """
    sources = _Sources(settings_cls, _nest(overrides))
    opted_out = settings_cls._read_environment and (
        _is_true("DO_NOT_TRACK") or _is_true("OTEL_SDK_DISABLED")
    )
    found: dict[str, SettingSource] = {}
    for path in _setting_paths(settings_cls):
        if path == ("enabled",) and opted_out:
            name = "DO_NOT_TRACK" if _is_true("DO_NOT_TRACK") else "OTEL_SDK_DISABLED"
            found["enabled"] = SettingSource("opt_out", name)
            continue
        origin = sources.origin(path)
        if origin is None:
            source = SettingSource("default")
        elif origin.variable is None:
            source = SettingSource("argument")
        elif origin.variable.startswith("OTEL_"):
            source = SettingSource("otel", origin.variable)
        elif origin.where == "environment":
            source = SettingSource("environment", origin.variable)
        else:
            source = SettingSource("dotenv", origin.variable)
        found[".".join(path)] = source
    return found


def _setting_paths(settings_cls: type[TelemetrySettings]) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for name, info in settings_cls.model_fields.items():
        group = info.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            paths.extend((name, field) for field in group.model_fields)
        else:
            paths.append((name,))
    return paths
