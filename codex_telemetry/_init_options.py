"""The keyword arguments of :func:`codex_telemetry.init`, as types a type checker reads.

One key per :class:`~codex_telemetry.TelemetrySettings` field, so that ``mypy`` or an IDE
rejects ``init(exporter="consol")`` or ``init(general_analytic=True)`` before the program
runs. A nested group is given as a dict (one of the ``...Options`` below) or as its
settings object, or field by field as ``group__field``. Every value may be None, which
counts as not given. ``tests/test_typed_init.py`` fails when these drift from the settings.

Only :mod:`typing` is imported at run time: ``init``'s module must stay cheap to import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, TypeAlias, TypedDict

if TYPE_CHECKING:
    from pydantic import SecretStr

    from codex_telemetry._settings import (
        CodexBackendSettings,
        FileSettings,
        OTLPSettings,
        ReducerSettings,
    )

__all__ = [
    "CodexBackendOptions",
    "ExporterName",
    "FileOptions",
    "InitOptions",
    "OTLPCompression",
    "OTLPOptions",
    "OTLPProtocol",
    "ReducerOptions",
]

ExporterName: TypeAlias = Literal["otlp", "console", "file", "codex_backend", "none"]
OTLPProtocol: TypeAlias = Literal["grpc", "http/protobuf", "http/json"]
OTLPCompression: TypeAlias = Literal["gzip", "none"]
_FilePath: TypeAlias = str | os.PathLike[str] | None
_Headers: TypeAlias = "str | Mapping[str, str] | SecretStr | None"
_Secret: TypeAlias = "str | SecretStr | None"


class OTLPOptions(TypedDict, total=False):
    """``otlp={...}``: the fields of :class:`~codex_telemetry._settings.OTLPSettings`."""

    protocol: OTLPProtocol | None
    endpoint: str | None
    headers: _Headers
    timeout: float | None
    compression: OTLPCompression | None
    certificate: _FilePath
    client_key: _FilePath
    client_certificate: _FilePath
    insecure: bool | None


class FileOptions(TypedDict, total=False):
    """``file={...}``: the fields of :class:`~codex_telemetry._settings.FileSettings`."""

    path: _FilePath


class CodexBackendOptions(TypedDict, total=False):
    """``codex_backend={...}``: the fields of
    :class:`~codex_telemetry._settings.CodexBackendSettings`."""

    base_url: str | None
    token: _Secret
    account_id: str | None
    timeout: float | None


class ReducerOptions(TypedDict, total=False):
    """``reducer={...}``: the fields of :class:`~codex_telemetry._settings.ReducerSettings`."""

    max_connections: int | None
    max_threads: int | None
    max_pending_requests: int | None
    max_turns: int | None
    idle_seconds: float | None


class InitOptions(TypedDict, total=False):
    """The settings ``init()`` takes as keywords; see the docstring of ``init``."""

    enabled: bool | None
    general_analytics: bool | None
    originator: str | None
    exporter: ExporterName | None
    service_name: str | None
    service_version: str | None
    runtime_version: str | None
    max_queue_size: int | None
    max_export_queue_size: int | None
    export_batch_size: int | None
    export_interval: float | None
    shutdown_timeout: float | None
    strict: bool | None
    debug: bool | None

    otlp: OTLPOptions | OTLPSettings | None
    otlp__protocol: OTLPProtocol | None
    otlp__endpoint: str | None
    otlp__headers: _Headers
    otlp__timeout: float | None
    otlp__compression: OTLPCompression | None
    otlp__certificate: _FilePath
    otlp__client_key: _FilePath
    otlp__client_certificate: _FilePath
    otlp__insecure: bool | None

    file: FileOptions | FileSettings | None
    file__path: _FilePath

    codex_backend: CodexBackendOptions | CodexBackendSettings | None
    codex_backend__base_url: str | None
    codex_backend__token: _Secret
    codex_backend__account_id: str | None
    codex_backend__timeout: float | None

    reducer: ReducerOptions | ReducerSettings | None
    reducer__max_connections: int | None
    reducer__max_threads: int | None
    reducer__max_pending_requests: int | None
    reducer__max_turns: int | None
    reducer__idle_seconds: float | None
