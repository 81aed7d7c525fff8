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

import os
import re
import threading
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

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
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from codex_telemetry._errors import ConfigurationError
from codex_telemetry._version import __version__

__all__ = [
    "CodexBackendSettings",
    "ConfigurationError",
    "FileSettings",
    "OTLPSettings",
    "ReducerSettings",
    "TelemetrySettings",
    "load_settings",
]

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


def _readable_file(path: Path | None) -> Path | None:
    if path is not None and not (path.is_file() and os.access(path, os.R_OK)):
        raise ValueError(f"{str(path)!r} is not a readable file")
    return path


def _parse_headers(raw: str) -> dict[str, str]:
    """Parse the OTel ``k=v,k2=v2`` form (URL-encoded); the message never holds a value."""
    headers: dict[str, str] = {}
    for position, entry in enumerate(raw.split(","), start=1):
        if not entry.strip():
            continue
        name, separator, value = entry.partition("=")
        name = urllib.parse.unquote(name).strip()
        if not separator or not name:
            raise ValueError(f"malformed header list: entry {position} is not 'name=value'")
        headers[name.lower()] = urllib.parse.unquote(value).strip()
    return headers


class OTLPSettings(BaseModel):
    """Where and how the OTLP exporter sends log records.

    Each field falls back to ``OTEL_EXPORTER_OTLP_LOGS_<NAME>``, then
    ``OTEL_EXPORTER_OTLP_<NAME>``, when ``CODEX_TELEMETRY_OTLP__<NAME>`` is not set.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

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
    def _check_headers(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            value = ",".join(
                f"{urllib.parse.quote(str(k), safe='')}={urllib.parse.quote(str(v), safe='')}"
                for k, v in value.items()
            )
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(raw, str):
            _parse_headers(raw)
        return value

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str, info: ValidationInfo) -> str:
        # gRPC takes host:port as well; requests cannot send to anything but a URL, and
        # would drop every event at run time instead of failing here.
        protocol = info.data.get("protocol", "http/protobuf")
        if value and protocol != "grpc":
            parsed = urllib.parse.urlsplit(value)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ValueError(
                    f"{value!r} is not an http:// or https:// URL, as {protocol} needs"
                )
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

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    path: Path | None = None
    """``CODEX_TELEMETRY_FILE__PATH``: the file events are appended to, one per line.
    Required when ``exporter`` is ``file``."""


class CodexBackendSettings(BaseModel):
    """The Codex analytics backend sink (``exporter="codex_backend"``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

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


class ReducerSettings(BaseModel):
    """Bounds on the reducer's state; None keeps the reducer's own default."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

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


class TelemetrySettings(BaseSettings):
    """Every setting of the SDK. Build it with :func:`codex_telemetry.init` (or directly).

    Environment variables use the prefix ``CODEX_TELEMETRY_`` and ``__`` between a group
    and its field (``CODEX_TELEMETRY_OTLP__ENDPOINT``); a ``.env`` file in the working
    directory is read too. Built directly, a bad value raises pydantic's
    ``ValidationError``; ``init()`` raises :class:`ConfigurationError` instead, and also
    checks that the chosen exporter has what it needs. Each field's description (its
    docstring) names its variable.
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
        use_attribute_docstrings=True,
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
    otlp: OTLPSettings = OTLPSettings()
    """The OTLP exporter (``CODEX_TELEMETRY_OTLP__*``)."""
    file: FileSettings = FileSettings()
    """The JSON Lines file sink (``CODEX_TELEMETRY_FILE__*``)."""
    codex_backend: CodexBackendSettings = CodexBackendSettings()
    """The Codex backend sink (``CODEX_TELEMETRY_CODEX_BACKEND__*``)."""
    reducer: ReducerSettings = ReducerSettings()
    """Reducer state bounds (``CODEX_TELEMETRY_REDUCER__*``)."""

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
    ``CODEX_TELEMETRY_*`` variable that names no setting is kept, and still reported.
    """

    def __init__(self, dotenv: PydanticBaseSettingsSource) -> None:
        super().__init__(dotenv.settings_cls)
        self._dotenv = dotenv

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: :meth:`__call__` reads through the wrapped source."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        fields = self.settings_cls.model_fields
        prefix = _PREFIX.lower()
        return {
            name: value
            for name, value in self._dotenv().items()
            if name in fields or name.lower().startswith(prefix)
        }


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


def _source_of(path: tuple[str, ...], arguments: Mapping[str, Any]) -> str:
    """The variable a bad value most likely came from, for the error message."""
    codex_variable = _variable(path)
    given: Any = arguments
    for part in path:
        given = given.get(part) if isinstance(given, Mapping) else None
    if given is not None or os.environ.get(codex_variable):
        return codex_variable
    for depth in range(1, len(path)):
        if _variable(path[:depth]) in os.environ:  # a whole group given as JSON
            return _variable(path[:depth])
    for name in _OTEL_FALLBACKS.get(path, ()):
        if os.environ.get(name):
            return name
    return codex_variable


_QUOTED = re.compile(r"'([^']*)'")


def _describe(error: Mapping[str, Any], path: tuple[str, ...]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required"
    message = str(error["msg"]).removeprefix("Value error, ")
    if path in _SECRET_PATHS:
        # pydantic's own messages quote inputs; ours (headers) never do.
        return message if kind == "value_error" else "invalid value (not shown: secret)"
    shown = repr(error.get("input"))
    if kind == "literal_error":
        choices = _QUOTED.findall(str(error.get("ctx", {}).get("expected", "")))
        return f"{shown} is not one of {', '.join(choices)}"
    if kind == "value_error":
        return message
    return f"{shown} is invalid: {message[:1].lower()}{message[1:]}"


def _problems(error: ValidationError, arguments: Mapping[str, Any]) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        path = tuple(str(part) for part in item["loc"] if isinstance(part, str))
        # A nested group given as one JSON string reports the group, not the field.
        name = ".".join(path) or "settings"
        if item["type"] == "extra_forbidden":
            problems.append(f"{name}: unknown setting")
            continue
        problems.append(f"{name} ({_source_of(path, arguments)}): {_describe(item, path)}")
    return problems


_UNPARSABLE_FIELD = re.compile(r'field "([^"]+)"')


def _unparsable(error: SettingsError) -> str:
    found = _UNPARSABLE_FIELD.search(str(error))
    if found is None:
        return f"settings: {error}"
    field = found.group(1)
    return f"{field} ({_variable((field,))}): not a valid JSON object"


def _check_exporter(settings: TelemetrySettings) -> list[str]:
    if settings.exporter == "file" and settings.file.path is None:
        return [f"file.path ({_variable(('file', 'path'))}): required when exporter is 'file'"]
    if settings.exporter == "codex_backend" and settings.codex_backend.token is None:
        variable = _variable(("codex_backend", "token"))
        return [f"codex_backend.token ({variable}): required when exporter is 'codex_backend'"]
    return []


def load_settings(
    settings_cls: type[TelemetrySettings] = TelemetrySettings, /, **overrides: Any
) -> TelemetrySettings:
    """Build the settings from arguments and the environment, or raise ConfigurationError."""
    arguments = _nest(overrides)
    try:
        settings = settings_cls(**arguments)
    except ValidationError as error:
        # ``from None``: the pydantic error quotes inputs, and an input may be a secret.
        raise ConfigurationError(_problems(error, arguments)) from None
    except SettingsError as error:
        # A group variable (``CODEX_TELEMETRY_OTLP``) whose value is not JSON.
        raise ConfigurationError([_unparsable(error)]) from None
    except UnicodeDecodeError:
        raise ConfigurationError([".env: cannot be read as UTF-8 text"]) from None
    except OSError as error:
        raise ConfigurationError([f".env: cannot be read: {error.strerror}"]) from None
    problems = _check_exporter(settings)
    if problems:
        raise ConfigurationError(problems)
    return settings
