"""Settings: the precedence table, the OTEL_* fallbacks, and the configuration errors."""

# The precedence table reads best as one case per line.
# ruff: noqa: E501

from __future__ import annotations

import ast
import inspect
import itertools
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from pydantic import BaseModel

import codex_telemetry
from codex_telemetry import _client
from codex_telemetry._settings import (
    ConfigurationError,
    OTLPSettings,
    TelemetrySettings,
    load_settings,
)

_CA = "{tmp}/ca.pem"
_KEY = "{tmp}/client.key"
_CERT = "{tmp}/client.pem"

# (environment, .env file lines, init arguments, setting path, expected value)
# Precedence: argument > CODEX_TELEMETRY_* env > .env > OTEL_* > default.
_PRECEDENCE: list[tuple[dict[str, str], list[str], dict[str, Any], str, Any]] = [
    # enabled, and the opt-outs that beat everything
    ({}, [], {}, "enabled", True),
    ({"CODEX_TELEMETRY_ENABLED": "false"}, [], {}, "enabled", False),
    ({"CODEX_TELEMETRY_ENABLED": "false"}, [], {"enabled": True}, "enabled", True),
    ({"CODEX_TELEMETRY_ENABLED": "false"}, [], {"enabled": None}, "enabled", False),
    ({}, ["CODEX_TELEMETRY_ENABLED=false"], {}, "enabled", False),
    ({"CODEX_TELEMETRY_ENABLED": "true"}, ["CODEX_TELEMETRY_ENABLED=false"], {}, "enabled", True),
    ({"DO_NOT_TRACK": "1"}, [], {"enabled": True}, "enabled", False),
    ({"DO_NOT_TRACK": "true"}, [], {}, "enabled", False),
    ({"DO_NOT_TRACK": "0"}, [], {}, "enabled", True),
    ({"OTEL_SDK_DISABLED": "true"}, [], {"enabled": True}, "enabled", False),
    ({"OTEL_SDK_DISABLED": "false"}, [], {}, "enabled", True),
    # core fields
    ({}, [], {}, "general_analytics", False),
    ({}, ["CODEX_TELEMETRY_GENERAL_ANALYTICS=1"], {}, "general_analytics", True),
    ({"CODEX_TELEMETRY_GENERAL_ANALYTICS": "0"}, [], {"general_analytics": True}, "general_analytics", True),
    ({}, [], {}, "originator", "codex_cli_rs"),
    ({"CODEX_TELEMETRY_ORIGINATOR": "env"}, ["CODEX_TELEMETRY_ORIGINATOR=dotenv"], {}, "originator", "env"),
    ({"CODEX_TELEMETRY_ORIGINATOR": "env"}, [], {"originator": "arg"}, "originator", "arg"),
    ({}, [], {}, "exporter", "otlp"),
    ({"CODEX_TELEMETRY_EXPORTER": "console"}, [], {}, "exporter", "console"),
    ({"CODEX_TELEMETRY_EXPORTER": "console"}, [], {"exporter": "none"}, "exporter", "none"),
    ({}, [], {}, "service_name", "codex-telemetry"),
    ({"OTEL_SERVICE_NAME": "otel"}, [], {}, "service_name", "otel"),
    ({"OTEL_SERVICE_NAME": "otel"}, ["CODEX_TELEMETRY_SERVICE_NAME=dotenv"], {}, "service_name", "dotenv"),
    ({"OTEL_SERVICE_NAME": "otel", "CODEX_TELEMETRY_SERVICE_NAME": "env"}, [], {}, "service_name", "env"),
    ({"OTEL_RESOURCE_ATTRIBUTES": "a=1,service.name=res%20name"}, [], {}, "service_name", "res name"),
    ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=res", "OTEL_SERVICE_NAME": "otel"}, [], {}, "service_name", "otel"),
    ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=res"}, [], {"service_name": "arg"}, "service_name", "arg"),
    ({"CODEX_TELEMETRY_SERVICE_NAME": "env"}, [], {"service_name": "arg"}, "service_name", "arg"),
    ({}, [], {}, "service_version", None),
    ({}, [], {}, "runtime_version", "0.1.0"),
    ({"CODEX_TELEMETRY_RUNTIME_VERSION": "9.9"}, [], {}, "runtime_version", "9.9"),
    ({}, [], {}, "max_queue_size", 10_000),
    ({"CODEX_TELEMETRY_MAX_QUEUE_SIZE": "5"}, [], {}, "max_queue_size", 5),
    ({"CODEX_TELEMETRY_MAX_QUEUE_SIZE": "5"}, [], {"max_queue_size": 7}, "max_queue_size", 7),
    ({}, [], {}, "shutdown_timeout", 1.0),
    ({"CODEX_TELEMETRY_SHUTDOWN_TIMEOUT": "0.25"}, [], {}, "shutdown_timeout", 0.25),
    ({}, [], {}, "strict", None),
    ({"CODEX_TELEMETRY_STRICT": "false"}, [], {}, "strict", False),
    ({"CODEX_TELEMETRY_FILE__PATH": "events.jsonl"}, [], {}, "file.path", Path("events.jsonl")),
    ({"CODEX_TELEMETRY_REDUCER__MAX_TURNS": "3"}, [], {}, "reducer.max_turns", 3),
    ({"CODEX_TELEMETRY_CODEX_BACKEND__ACCOUNT_ID": "acc"}, [], {}, "codex_backend.account_id", "acc"),
    # an exported but empty variable counts as unset
    ({"CODEX_TELEMETRY_MAX_QUEUE_SIZE": ""}, [], {}, "max_queue_size", 10_000),
    ({"CODEX_TELEMETRY_OTLP__PROTOCOL": "", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, [], {}, "otlp.protocol", "grpc"),
    ({"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, [], {}, "otlp.protocol", "grpc"),
    ({"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:1"}, [], {}, "otlp.endpoint", "http://c:1/v1/logs"),
    # otlp.protocol
    ({}, [], {}, "otlp.protocol", "http/protobuf"),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, [], {}, "otlp.protocol", "grpc"),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/json"}, [], {}, "otlp.protocol", "http/json"),
    ({"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/json"}, ["CODEX_TELEMETRY_OTLP__PROTOCOL=grpc"], {}, "otlp.protocol", "grpc"),
    ({"CODEX_TELEMETRY_OTLP__PROTOCOL": "grpc"}, [], {"otlp": {"protocol": "http/json"}}, "otlp.protocol", "http/json"),
    ({"CODEX_TELEMETRY_OTLP__PROTOCOL": "grpc"}, [], {"otlp__protocol": "http/json"}, "otlp.protocol", "http/json"),
    # otlp.endpoint: defaults per protocol, LOGS as is, generic + /v1/logs for HTTP only
    ({}, [], {}, "otlp.endpoint", "http://localhost:4318/v1/logs"),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, [], {}, "otlp.endpoint", "http://localhost:4318/v1/logs"),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, [], {}, "otlp.endpoint", "localhost:4317"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, [], {}, "otlp.endpoint", "http://c:4318/v1/logs"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, [], {}, "otlp.endpoint", "http://c:4318/v1/logs"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/base"}, [], {"otlp__protocol": "http/json"}, "otlp.endpoint", "http://c:4318/base/v1/logs"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, [], {}, "otlp.endpoint", "http://c:4317"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, ["CODEX_TELEMETRY_OTLP__PROTOCOL=grpc"], {}, "otlp.endpoint", "http://c:4317"),
    ({"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://l:1/custom", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:2"}, [], {}, "otlp.endpoint", "http://l:1/custom"),
    ({"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://l:1/custom"}, ["CODEX_TELEMETRY_OTLP__ENDPOINT=http://d:3/x"], {}, "otlp.endpoint", "http://d:3/x"),
    ({"CODEX_TELEMETRY_OTLP__ENDPOINT": "http://e:4/x"}, ["CODEX_TELEMETRY_OTLP__ENDPOINT=http://d:3/x"], {}, "otlp.endpoint", "http://e:4/x"),
    ({"CODEX_TELEMETRY_OTLP__ENDPOINT": "http://e:4/x"}, [], {"otlp__endpoint": "http://a:5/x"}, "otlp.endpoint", "http://a:5/x"),
    ({"CODEX_TELEMETRY_OTLP__ENDPOINT": "http://e:4/x"}, [], {"otlp__endpoint": None}, "otlp.endpoint", "http://e:4/x"),
    # otlp.headers (compared through headers_dict())
    ({}, [], {}, "otlp.headers_dict", {}),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=x%20y"}, [], {}, "otlp.headers_dict", {"a": "1", "b": "x y"}),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "a=1", "OTEL_EXPORTER_OTLP_LOGS_HEADERS": "l=2"}, [], {}, "otlp.headers_dict", {"l": "2"}),
    ({"OTEL_EXPORTER_OTLP_LOGS_HEADERS": "l=2"}, ["CODEX_TELEMETRY_OTLP__HEADERS=d=3"], {}, "otlp.headers_dict", {"d": "3"}),
    ({"CODEX_TELEMETRY_OTLP__HEADERS": "e=4"}, [], {"otlp__headers": {"Arg": "a b"}}, "otlp.headers_dict", {"arg": "a b"}),
    # otlp.timeout: OTEL_* in milliseconds, ours in seconds
    ({}, [], {}, "otlp.timeout", 10.0),
    ({"OTEL_EXPORTER_OTLP_TIMEOUT": "2500"}, [], {}, "otlp.timeout", 2.5),
    ({"OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "500"}, [], {}, "otlp.timeout", 0.5),
    ({"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "500", "CODEX_TELEMETRY_OTLP__TIMEOUT": "3"}, [], {}, "otlp.timeout", 3.0),
    # otlp.compression
    ({}, [], {}, "otlp.compression", "gzip"),
    ({"OTEL_EXPORTER_OTLP_COMPRESSION": "none"}, [], {}, "otlp.compression", "none"),
    ({"OTEL_EXPORTER_OTLP_COMPRESSION": "none", "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "gzip"}, [], {}, "otlp.compression", "gzip"),
    ({"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "gzip", "CODEX_TELEMETRY_OTLP__COMPRESSION": "none"}, [], {}, "otlp.compression", "none"),
    # TLS files
    ({}, [], {}, "otlp.certificate", None),
    ({"OTEL_EXPORTER_OTLP_CERTIFICATE": _CA}, [], {}, "otlp.certificate", _CA),
    ({"OTEL_EXPORTER_OTLP_CERTIFICATE": _KEY, "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE": _CA}, [], {}, "otlp.certificate", _CA),
    ({"OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE": _KEY, "CODEX_TELEMETRY_OTLP__CERTIFICATE": _CA}, [], {}, "otlp.certificate", _CA),
    ({"OTEL_EXPORTER_OTLP_CLIENT_KEY": _KEY}, [], {}, "otlp.client_key", _KEY),
    ({"OTEL_EXPORTER_OTLP_CLIENT_KEY": _CA, "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY": _KEY}, [], {}, "otlp.client_key", _KEY),
    ({"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": _CERT}, [], {}, "otlp.client_certificate", _CERT),
    ({"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": _CA, "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE": _CERT}, [], {}, "otlp.client_certificate", _CERT),
    ({"CODEX_TELEMETRY_OTLP__CLIENT_CERTIFICATE": _CERT, "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE": _CA}, [], {}, "otlp.client_certificate", _CERT),
    # otlp.insecure
    ({}, [], {}, "otlp.insecure", None),
    ({"OTEL_EXPORTER_OTLP_INSECURE": "true"}, [], {}, "otlp.insecure", True),
    ({"OTEL_EXPORTER_OTLP_INSECURE": "true", "OTEL_EXPORTER_OTLP_LOGS_INSECURE": "false"}, [], {}, "otlp.insecure", False),
    ({"OTEL_EXPORTER_OTLP_LOGS_INSECURE": "false"}, [], {"otlp__insecure": True, "otlp__protocol": "grpc"}, "otlp.insecure", True),
]  # fmt: skip


def _get(settings: TelemetrySettings, path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = value.headers_dict() if part == "headers_dict" else getattr(value, part)
    return value


@pytest.mark.parametrize("case", _PRECEDENCE)
def test_precedence(
    case: tuple[dict[str, str], list[str], dict[str, Any], str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment, dotenv, arguments, path, expected = case
    for name in ("ca.pem", "client.key", "client.pem"):
        (tmp_path / name).write_text("x")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("".join(line + "\n" for line in dotenv))
    for name, value in environment.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    if isinstance(expected, str) and "{tmp}" in expected:
        expected = Path(expected.format(tmp=tmp_path))

    assert _get(load_settings(**arguments), path) == expected


@pytest.mark.parametrize(
    ("environment", "arguments", "message"),
    [
        (
            {},
            {"otlp__protocol": "xml"},
            "otlp.protocol (CODEX_TELEMETRY_OTLP__PROTOCOL): "
            "'xml' is not one of grpc, http/protobuf, http/json",
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "xml"},
            {},
            "otlp.protocol (OTEL_EXPORTER_OTLP_PROTOCOL): "
            "'xml' is not one of grpc, http/protobuf, http/json",
        ),
        (
            {"CODEX_TELEMETRY_EXPORTER": "kafka"},
            {},
            "exporter (CODEX_TELEMETRY_EXPORTER): "
            "'kafka' is not one of otlp, console, file, codex_backend, none",
        ),
        (
            {"CODEX_TELEMETRY_MAX_QUEUE_SIZE": "-1"},
            {},
            "max_queue_size (CODEX_TELEMETRY_MAX_QUEUE_SIZE): "
            "'-1' is invalid: input should be greater than 0",
        ),
        (
            {"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "soon"},
            {},
            "otlp.timeout (OTEL_EXPORTER_OTLP_LOGS_TIMEOUT): "
            "'soon' is invalid: input should be a valid number, unable to parse string as a number",
        ),
        (
            {},
            {"otlp__certificate": "/nonexistent/ca.pem"},
            "otlp.certificate (CODEX_TELEMETRY_OTLP__CERTIFICATE): "
            "'/nonexistent/ca.pem' is not a readable file",
        ),
        (
            {},
            {"exporter": "file"},
            "file.path (CODEX_TELEMETRY_FILE__PATH): required when exporter is 'file'",
        ),
        (
            {},
            {"exporter": "codex_backend"},
            "codex_backend.token (CODEX_TELEMETRY_CODEX_BACKEND__TOKEN): "
            "required when exporter is 'codex_backend'",
        ),
        (
            {"CODEX_TELEMETRY_OTLP": '{"endpoint": '},
            {},
            "otlp (CODEX_TELEMETRY_OTLP): not a valid JSON object",
        ),
        (
            {"CODEX_TELEMETRY_SHUTDOWN_TIMEOUT": "inf"},
            {},
            "shutdown_timeout (CODEX_TELEMETRY_SHUTDOWN_TIMEOUT): "
            "'inf' is invalid: input should be a finite number",
        ),
        (
            {"CODEX_TELEMETRY_EXPORT_INTERVAL": "inf"},
            {},
            "export_interval (CODEX_TELEMETRY_EXPORT_INTERVAL): "
            "'inf' is invalid: input should be a finite number",
        ),
        (
            {},
            {"otlp__endpoint": "localhost:4318/v1/logs"},
            "otlp.endpoint (CODEX_TELEMETRY_OTLP__ENDPOINT): "
            "'localhost:4318/v1/logs' is not an http:// or https:// URL, as http/protobuf needs",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            },
            {},
            "otlp.endpoint (OTEL_EXPORTER_OTLP_ENDPOINT): "
            "'collector:4318' is not an http:// or https:// URL, as http/json needs",
        ),
        ({}, {"exportr": "console"}, "exportr: unknown setting"),
        (
            {"CODEX_TELEMETRY_REDUCER__MAX_TURN": "3"},
            {},
            "CODEX_TELEMETRY_REDUCER__MAX_TURN (environment): unknown setting; "
            "did you mean CODEX_TELEMETRY_REDUCER__MAX_TURNS?",
        ),
    ],
)
def test_bad_value_names_setting_and_variable(
    environment: dict[str, str],
    arguments: dict[str, Any],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(**arguments)
    assert caught.value.problems == (message,)
    assert str(caught.value) == f"invalid codex_telemetry settings: {message}"
    assert isinstance(caught.value, ValueError)
    # The pydantic error quotes inputs; it must not ride along in a traceback.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_several_bad_values_make_one_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_TELEMETRY_EXPORTER", "kafka")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(max_queue_size=0)
    assert [problem.split(" ")[0] for problem in caught.value.problems] == [
        "exporter",
        "max_queue_size",
    ]


@pytest.mark.parametrize(
    ("environment", "arguments"),
    [
        ({"CODEX_TELEMETRY_OTLP__HEADERS": "authorization=Bearer%20hunter2,broken-hunter2"}, {}),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "=hunter2"}, {}),
        ({}, {"otlp__headers": ["hunter2"]}),
        ({}, {"codex_backend__token": ["hunter2"]}),
    ],
)
def test_errors_never_show_secrets(
    environment: dict[str, str], arguments: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(**arguments)
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(caught.value)
    assert len(caught.value.problems) == 1


def test_malformed_headers_message() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(otlp__headers="a=1,,no-equals-sign")
    assert caught.value.problems == (
        "otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS): "
        "malformed header list: entry 3 is not 'name=value'",
    )


def test_secrets_are_hidden_from_repr_and_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20hunter2")
    settings = load_settings(codex_backend__token="hunter3")
    for text in (repr(settings), str(settings), repr(settings.otlp), str(settings.model_dump())):
        assert "hunter2" not in text
        assert "hunter3" not in text
    assert settings.otlp.headers_dict() == {"authorization": "Bearer hunter2"}
    assert settings.codex_backend.token is not None
    assert settings.codex_backend.token.get_secret_value() == "hunter3"


def test_nested_settings_object_merges_with_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_TELEMETRY_OTLP__COMPRESSION", "none")
    settings = load_settings(otlp=OTLPSettings(protocol="grpc"))
    assert (settings.otlp.protocol, settings.otlp.compression) == ("grpc", "none")
    assert settings.otlp.endpoint == "localhost:4317"


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.exporter = "none"  # type: ignore[misc]


def test_reducer_settings_pass_only_given_limits() -> None:
    settings = load_settings(reducer={"max_turns": 5, "idle_seconds": 60})
    assert settings.reducer.given() == {"max_turns": 5, "idle_seconds": 60.0}


def test_strict_defaults_to_running_under_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().effective_strict() is True
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    assert load_settings().effective_strict() is False
    assert load_settings(strict=True).effective_strict() is True


def _attribute_docstrings() -> dict[str, dict[str, str]]:
    """Each class of the settings module: its attributes' docstrings, read from the
    source (the models do not copy them into their fields' descriptions)."""
    tree = ast.parse(Path(inspect.getfile(TelemetrySettings)).read_text(encoding="utf-8"))
    documented: dict[str, dict[str, str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        docs = documented[node.name] = {}
        for statement, following in itertools.pairwise(node.body):
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[statement.target.id] = following.value.value
    return documented


def _fields(
    model: type[BaseModel], documented: dict[str, dict[str, str]], prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str]]:
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _fields(annotation, documented, (*prefix, name))
        else:
            yield (*prefix, name), documented.get(model.__name__, {}).get(name, "")


def test_every_setting_documents_its_variable() -> None:
    fields = list(_fields(TelemetrySettings, _attribute_docstrings()))
    assert len(fields) > 30
    for path, description in fields:
        variable = "CODEX_TELEMETRY_" + "__".join(part.upper() for part in path)
        assert variable in description, path


def test_a_dotenv_file_shared_with_other_tools_is_fine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "DATABASE_URL=postgres://localhost/app\n"
        "OPENAI_API_KEY=sk-not-ours\n"
        "CODEX_TELEMETRY_EXPORTER=console\n"
    )
    assert load_settings().exporter == "console"


def test_an_unknown_codex_telemetry_variable_in_dotenv_is_still_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DATABASE_URL=x\nCODEX_TELEMETRY_EXPORTR=console\n")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.problems == (
        f"CODEX_TELEMETRY_EXPORTR (.env file {tmp_path.resolve() / '.env'}): unknown setting; "
        "did you mean CODEX_TELEMETRY_EXPORTER?",
    )


def test_a_dotenv_file_that_is_not_utf8_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(b"CODEX_TELEMETRY_EXPORTER=\xff\xfe\n")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.problems == (
        f".env file {tmp_path.resolve() / '.env'}: cannot be read as UTF-8 text",
    )


# --- messages that name where a value came from, and show it as given ---------------------


def _problems_of(**arguments: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(**arguments)
    return caught.value.problems


@pytest.mark.parametrize("name", ["CODEX_TELEMETRY_EXPORTR", "codex_telemetry_exportr"])
def test_an_unknown_variable_in_the_environment_is_reported_as_one_in_dotenv(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, "console")
    assert _problems_of() == (
        f"{name} (environment): unknown setting; did you mean CODEX_TELEMETRY_EXPORTER?",
    )


def test_an_unknown_variable_with_nothing_close_has_no_suggestion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CODEX_TELEMETRY_COLOUR", "blue")
    assert _problems_of() == ("CODEX_TELEMETRY_COLOUR (environment): unknown setting",)


def test_an_empty_unknown_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_TELEMETRY_EXPORTR", "")
    assert load_settings().exporter == "otlp"


def test_a_nested_typo_names_its_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CODEX_TELEMETRY_OTLP__ENDPIONT", "http://collector:4318/v1/logs")
    (tmp_path / ".env").write_text("CODEX_TELEMETRY_FILE__PAHT=events.jsonl\n")
    assert _problems_of() == (
        "CODEX_TELEMETRY_OTLP__ENDPIONT (environment): unknown setting; "
        "did you mean CODEX_TELEMETRY_OTLP__ENDPOINT?",
        f"CODEX_TELEMETRY_FILE__PAHT (.env file {tmp_path.resolve() / '.env'}): "
        "unknown setting; did you mean CODEX_TELEMETRY_FILE__PATH?",
    )


def test_a_nested_typo_in_lower_case_is_reported_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("codex_telemetry_otlp__endpiont", "http://collector:4318/v1/logs")
    assert _problems_of() == (
        "codex_telemetry_otlp__endpiont (environment): unknown setting; "
        "did you mean CODEX_TELEMETRY_OTLP__ENDPOINT?",
    )


def test_a_typo_inside_a_group_given_as_json_names_the_group_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CODEX_TELEMETRY_OTLP", '{"endpiont": "http://collector:4318"}')
    assert _problems_of() == ("otlp.endpiont (CODEX_TELEMETRY_OTLP): unknown setting",)


def test_a_too_long_certificate_path_from_the_environment_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    too_long = "/certs" * 1000
    monkeypatch.setenv("CODEX_TELEMETRY_OTLP__CERTIFICATE", too_long)
    assert _problems_of() == (
        "otlp.certificate (CODEX_TELEMETRY_OTLP__CERTIFICATE): "
        f"'{too_long[:114]}...' (6000 characters) is not a readable file: File name too long",
    )


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:14318"},
            "otlp.endpoint (OTEL_EXPORTER_OTLP_ENDPOINT): "
            "'127.0.0.1:14318' is not an http:// or https:// URL, as http/protobuf needs",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://"},
            "otlp.endpoint (OTEL_EXPORTER_OTLP_ENDPOINT): "
            "'http://' has no host: http/protobuf needs a URL like http://localhost:4318/v1/logs",
        ),
        (
            {"OTEL_EXPORTER_OTLP_TIMEOUT": "-100"},
            "otlp.timeout (OTEL_EXPORTER_OTLP_TIMEOUT): '-100' is invalid: "
            "input should be greater than 0",
        ),
        (
            {"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "0", "OTEL_EXPORTER_OTLP_TIMEOUT": "5000"},
            "otlp.timeout (OTEL_EXPORTER_OTLP_LOGS_TIMEOUT): '0' is invalid: "
            "input should be greater than 0",
        ),
        (
            {"CODEX_TELEMETRY_OTLP__ENDPOINT": "http://"},
            "otlp.endpoint (CODEX_TELEMETRY_OTLP__ENDPOINT): "
            "'http://' has no host: http/protobuf needs a URL like http://localhost:4318/v1/logs",
        ),
        (
            {"CODEX_TELEMETRY_OTLP__ENDPOINT": "https://:4318/v1/logs"},
            "otlp.endpoint (CODEX_TELEMETRY_OTLP__ENDPOINT): "
            "'https://:4318/v1/logs' has no host: "
            "http/protobuf needs a URL like http://localhost:4318/v1/logs",
        ),
        (
            {"CODEX_TELEMETRY_OTLP__ENDPOINT": "http://collector:43180000/v1/logs"},
            "otlp.endpoint (CODEX_TELEMETRY_OTLP__ENDPOINT): "
            "'http://collector:43180000/v1/logs' has a port that is not a number from 0 to 65535",
        ),
        (
            {"CODEX_TELEMETRY_OTLP": '{"timeout": -3}'},
            "otlp.timeout (CODEX_TELEMETRY_OTLP): -3 is invalid: input should be greater than 0",
        ),
    ],
)
def test_a_message_names_the_variable_that_gave_the_value_and_shows_it_as_given(
    environment: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert _problems_of() == (message,)


def test_a_value_from_dotenv_names_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CODEX_TELEMETRY_MAX_QUEUE_SIZE=0\n")
    assert _problems_of() == (
        f"max_queue_size (CODEX_TELEMETRY_MAX_QUEUE_SIZE in .env file {tmp_path.resolve()}/.env): "
        "'0' is invalid: input should be greater than 0",
    )


def test_the_environment_that_beat_dotenv_is_the_one_blamed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CODEX_TELEMETRY_MAX_QUEUE_SIZE=5\n")
    monkeypatch.setenv("CODEX_TELEMETRY_MAX_QUEUE_SIZE", "-5")
    assert _problems_of() == (
        "max_queue_size (CODEX_TELEMETRY_MAX_QUEUE_SIZE): "
        "'-5' is invalid: input should be greater than 0",
    )


def test_an_argument_that_beat_the_environment_is_shown_as_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert _problems_of(otlp__endpoint="collector") == (
        "otlp.endpoint (CODEX_TELEMETRY_OTLP__ENDPOINT): "
        "'collector' is not an http:// or https:// URL, as http/protobuf needs",
    )


@pytest.mark.parametrize("group", ["OTLP", "CODEX_BACKEND"])
def test_a_group_that_holds_a_secret_is_not_shown(
    group: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"CODEX_TELEMETRY_{group}", '"token=hunter2"')
    model = {"OTLP": "OTLPSettings", "CODEX_BACKEND": "CodexBackendSettings"}[group]
    assert _problems_of() == (
        f"{group.lower()} (CODEX_TELEMETRY_{group}): input should be a valid dictionary "
        f"or instance of {model} (value not shown: secret)",
    )


def test_a_secret_from_a_variable_stays_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_TELEMETRY_CODEX_BACKEND", '{"token": ["hunter2"]}')
    problems = _problems_of()
    assert "hunter2" not in " ".join(problems)
    assert problems == (
        "codex_backend.token (CODEX_TELEMETRY_CODEX_BACKEND): "
        "input should be a valid string (value not shown: secret)",
    )


# --- settings that cannot apply --------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "arguments", "message"),
    [
        (
            {},
            {"otlp__insecure": True},
            "otlp.insecure (CODEX_TELEMETRY_OTLP__INSECURE): applies to gRPC only; "
            "with http/protobuf the endpoint's scheme decides (http:// or https://)",
        ),
        (
            {
                "CODEX_TELEMETRY_OTLP__INSECURE": "true",
                "CODEX_TELEMETRY_OTLP__PROTOCOL": "http/json",
            },
            {},
            "otlp.insecure (CODEX_TELEMETRY_OTLP__INSECURE): applies to gRPC only; "
            "with http/json the endpoint's scheme decides (http:// or https://)",
        ),
    ],
)
def test_insecure_set_for_this_sdk_with_http_is_refused(
    environment: dict[str, str],
    arguments: dict[str, Any],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert _problems_of(**arguments) == (message,)


def test_insecure_from_the_shared_otel_variable_with_http_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    with caplog.at_level(logging.WARNING, logger="codex_telemetry"):
        settings = load_settings()
    assert settings.otlp.insecure is True  # the gRPC exporter would use it; HTTP ignores it
    assert [record.getMessage() for record in caplog.records] == [
        "codex_telemetry: otlp.insecure (OTEL_EXPORTER_OTLP_INSECURE) is ignored: it applies "
        "to gRPC only; with http/protobuf the endpoint's scheme decides (http:// or https://)"
    ]


def test_insecure_with_grpc_applies(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="codex_telemetry"):
        assert load_settings(otlp__insecure=True, otlp__protocol="grpc").otlp.insecure is True
    assert caplog.records == []


@pytest.fixture
def no_default_client() -> Iterator[None]:
    previous = _client._swap_default(None)
    yield
    codex_telemetry.shutdown(timeout=5)
    _client._swap_default(previous)


@pytest.mark.usefixtures("no_default_client")
def test_a_logger_provider_with_another_exporter_in_the_same_call_is_refused() -> None:
    with pytest.raises(ConfigurationError) as caught:
        codex_telemetry.init(logger_provider=LoggerProvider(), exporter="console")
    assert caught.value.problems == (
        "logger_provider: exporter 'console' does not send through a LoggerProvider; "
        "only 'otlp' does",
    )
    assert _client._default is None


@pytest.mark.usefixtures("no_default_client")
def test_a_logger_provider_overridden_by_an_exporter_variable_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CODEX_TELEMETRY_EXPORTER", "file")
    monkeypatch.setenv("CODEX_TELEMETRY_FILE__PATH", os.devnull)
    with caplog.at_level(logging.WARNING, logger="codex_telemetry"):
        client = codex_telemetry.init(logger_provider=LoggerProvider())
    assert client.settings.exporter == "file"
    assert [record.getMessage() for record in caplog.records] == [
        "codex_telemetry: the LoggerProvider given to init() is not used: exporter "
        "(CODEX_TELEMETRY_EXPORTER): exporter 'file' does not send through a LoggerProvider; "
        "only 'otlp' does"
    ]


@pytest.mark.usefixtures("no_default_client")
@pytest.mark.parametrize(
    "arguments",
    [{"exporter": "otlp"}, {"exporter": "none"}, {"enabled": False, "exporter": "console"}],
)
def test_a_logger_provider_that_applies_or_collection_off_is_fine(
    arguments: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="codex_telemetry"):
        codex_telemetry.init(logger_provider=LoggerProvider(), **arguments)
    assert caplog.records == []


def test_a_bad_resource_attribute_warns_once(tmp_path: Path) -> None:
    # A fresh process: the OpenTelemetry SDK warns about the variable when its logs module
    # is first imported, and again whenever a resource is built from it.
    program = (
        "import logging\n"
        "logging.basicConfig(format='%(name)s: %(message)s')\n"
        "import codex_telemetry\n"
        "codex_telemetry.init(exporter='otlp', otlp__endpoint='http://127.0.0.1:9/v1/logs')\n"
        "codex_telemetry.shutdown(0)\n"
    )
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CODEX_TELEMETRY_", "OTEL_", "PYTEST_"))
    }
    environment |= {"HOME": str(tmp_path), "OTEL_RESOURCE_ATTRIBUTES": "team=a,oops,=x"}
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stderr.splitlines() == [
        "codex_telemetry._settings: codex_telemetry: OTEL_RESOURCE_ATTRIBUTES: "
        "'oops', '=x' are not key=value, left out of the resource"
    ]


@pytest.mark.usefixtures("no_default_client")
def test_settings_a_logger_provider_replaces_are_named_in_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CODEX_TELEMETRY_OTLP__COMPRESSION", "none")
    # Read by the provider's own exporter too: not reported.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    with caplog.at_level(logging.WARNING, logger="codex_telemetry"):
        codex_telemetry.init(
            logger_provider=LoggerProvider(), service_name="my-app", otlp={"timeout": 3}
        )
    assert [record.getMessage() for record in caplog.records] == [
        "codex_telemetry: the LoggerProvider given to init() exports with its own processors "
        "and resource; these settings do not apply: otlp.timeout, "
        "otlp.compression (CODEX_TELEMETRY_OTLP__COMPRESSION), service_name"
    ]


SECRET = "s3cret"

# (environment, init arguments, the one problem reported). Each plants SECRET where a
# careless message, repr or chained exception would show it.
_SECRET_CASES: list[tuple[dict[str, str], dict[str, Any], str]] = [
    ({"CODEX_TELEMETRY_CODEX_BACKEND": '"s3cret"'}, {}, "codex_backend (CODEX_TELEMETRY_CODEX_BACKEND): input should be a valid dictionary or instance of CodexBackendSettings (value not shown: secret)"),
    ({"CODEX_TELEMETRY_CODEX_BACKEND": '{"token": "s3cret"'}, {}, "codex_backend (CODEX_TELEMETRY_CODEX_BACKEND): not a valid JSON object"),
    ({"CODEX_TELEMETRY_CODEX_BACKEND": '{"token": ["s3cret"]}'}, {}, "codex_backend.token (CODEX_TELEMETRY_CODEX_BACKEND): input should be a valid string (value not shown: secret)"),
    ({"CODEX_TELEMETRY_CODEX_BACKEND": '{"tokn": "s3cret"}'}, {}, "codex_backend.tokn (CODEX_TELEMETRY_CODEX_BACKEND): unknown setting"),
    ({"CODEX_TELEMETRY_OTLP": '"s3cret"'}, {}, "otlp (CODEX_TELEMETRY_OTLP): input should be a valid dictionary or instance of OTLPSettings (value not shown: secret)"),
    ({"CODEX_TELEMETRY_OTLP": '{"headers": ["s3cret"]}'}, {}, "otlp.headers (CODEX_TELEMETRY_OTLP): input should be a valid string (value not shown: secret)"),
    ({}, {"codex_backend__token": ["s3cret"]}, "codex_backend.token (CODEX_TELEMETRY_CODEX_BACKEND__TOKEN): input should be a valid string (value not shown: secret)"),
    # header names: RFC 7230 tokens; a name that is not one may be a misplaced secret
    ({"OTEL_EXPORTER_OTLP_HEADERS": "x y=s3cret"}, {}, "otlp.headers (OTEL_EXPORTER_OTLP_HEADERS): entry 1: the name (not shown) is not an RFC 7230 token: it contains U+0020"),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "a=1,Bearer s3cret=x"}, {}, "otlp.headers (OTEL_EXPORTER_OTLP_HEADERS): entry 2: the name (not shown) is not an RFC 7230 token: it contains U+0020"),
    ({}, {"otlp__headers": {"x:s3cret": "v"}}, "otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS): entry 1: the name (not shown) is not an RFC 7230 token: it contains U+003A"),
    ({"CODEX_TELEMETRY_OTLP__HEADERS": "s3cret"}, {}, "otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS): malformed header list: entry 1 is not 'name=value'"),
    # header values: no control characters (a newline would inject a header line)
    ({"OTEL_EXPORTER_OTLP_LOGS_HEADERS": "authorization=Bearer%20s3cret%0D%0Ax-injected:%201"}, {}, "otlp.headers (OTEL_EXPORTER_OTLP_LOGS_HEADERS): header 'authorization': the value (not shown) contains the control character U+000D"),
    ({}, {"otlp__headers": {"authorization": "s3cret\nx-injected: 1"}}, "otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS): header 'authorization': the value (not shown) contains the control character U+000A"),
    ({"CODEX_TELEMETRY_OTLP__HEADERS": "authorization=s3cret%00"}, {}, "otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS): header 'authorization': the value (not shown) contains the control character U+0000"),
    ({"CODEX_TELEMETRY_OTLP__HEADERS": "authorization=s3cret%7F"}, {}, "otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS): header 'authorization': the value (not shown) contains the control character U+007F"),
    # what cannot be sent: not UTF-8 once decoded, beyond ISO-8859-1 for HTTP
    ({"CODEX_TELEMETRY_OTLP__HEADERS": "authorization=s3cret%FF"}, {}, "otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS): entry 1: the value is not UTF-8 once URL-decoded"),
    ({"CODEX_TELEMETRY_OTLP__HEADERS": "s3cret%FF=x"}, {}, "otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS): entry 1: the name is not UTF-8 once URL-decoded"),
    ({"CODEX_TELEMETRY_OTLP__HEADERS": "authorization=s3cret%E2%82%AC"}, {}, "otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS): header 'authorization': the value (not shown) contains U+20AC, outside the ISO-8859-1 an HTTP header can carry"),
    # gRPC metadata: names of a-z 0-9 - _ . (not -bin), values of printable ASCII
    ({"OTEL_EXPORTER_OTLP_HEADERS": "authorization=s3cret%C3%A9"}, {"otlp__protocol": "grpc"}, "otlp.headers (OTEL_EXPORTER_OTLP_HEADERS): header 'authorization': the value (not shown) contains U+00E9; gRPC metadata values are printable ASCII"),
    ({"OTEL_EXPORTER_OTLP_HEADERS": "authorization=s3cret%09x"}, {"otlp__protocol": "grpc"}, "otlp.headers (OTEL_EXPORTER_OTLP_HEADERS): header 'authorization': the value (not shown) contains U+0009; gRPC metadata values are printable ASCII"),
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_HEADERS": "x!key=s3cret"}, {}, "otlp.headers (OTEL_EXPORTER_OTLP_HEADERS): header 'x!key': gRPC metadata names allow only a-z, 0-9, '-', '_' and '.', not U+0021"),
    ({"CODEX_TELEMETRY_OTLP__PROTOCOL": "grpc", "CODEX_TELEMETRY_OTLP__HEADERS": "key-bin=s3cret"}, {}, "otlp.headers (CODEX_TELEMETRY_OTLP__HEADERS): header 'key-bin': a gRPC '-bin' header carries bytes, not text"),
    # credentials in an endpoint URL
    ({}, {"otlp__endpoint": "me:s3cret@collector:4318/v1/logs"}, "otlp.endpoint (CODEX_TELEMETRY_OTLP__ENDPOINT): '***@collector:4318/v1/logs' is not an http:// or https:// URL, as http/protobuf needs"),
]  # fmt: skip


def _everything_shown(error: BaseException) -> str:
    """The message, repr, arguments and the whole printed traceback, chain included."""
    return "\n".join(
        [str(error), repr(error), repr(error.args), *traceback.format_exception(error)]
    )


@pytest.mark.parametrize("case", _SECRET_CASES)
def test_a_bad_secret_is_named_never_shown(
    case: tuple[dict[str, str], dict[str, Any], str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    environment, arguments, message = case
    monkeypatch.chdir(tmp_path)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(**arguments)
    assert caught.value.problems == (message,)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    assert SECRET not in _everything_shown(caught.value)
    captured = capfd.readouterr()
    assert SECRET not in captured.out + captured.err


def test_init_raises_the_masked_error_with_nothing_chained(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import codex_telemetry  # noqa: PLC0415

    monkeypatch.setenv("CODEX_TELEMETRY_CODEX_BACKEND", '"s3cret"')
    with pytest.raises(ConfigurationError) as caught:
        codex_telemetry.init()
    assert caught.value.problems == (_SECRET_CASES[0][2],)
    assert (caught.value.__cause__, caught.value.__context__) == (None, None)
    assert SECRET not in _everything_shown(caught.value)
    captured = capfd.readouterr()
    assert SECRET not in captured.out + captured.err


@pytest.mark.parametrize(
    ("protocol", "raw", "expected"),
    [
        # a quoting mistake is still a valid header value: sent as written, never printed
        ("http/protobuf", 'x-api-key="s3cret"', {"x-api-key": '"s3cret"'}),
        ("http/protobuf", "Authorization=Bearer%09s3cret", {"authorization": "Bearer\ts3cret"}),
        ("http/json", "x-name=caf%C3%A9", {"x-name": "caf\u00e9"}),
        ("http/protobuf", "x.Name_1~!#$&'*+^`|=v", {"x.name_1~!#$&'*+^`|": "v"}),
        ("grpc", "X-Api-Key=s3cret%20~ok", {"x-api-key": "s3cret ~ok"}),
        ("grpc", "x_key.v1=%22quoted%22", {"x_key.v1": '"quoted"'}),
    ],
)
def test_valid_headers_pass(
    protocol: str,
    raw: str,
    expected: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", raw)
    settings = load_settings(otlp__protocol=protocol)
    assert settings.otlp.headers_dict() == expected
    assert SECRET not in repr(settings) + str(settings.model_dump())
    captured = capfd.readouterr()
    assert SECRET not in captured.out + captured.err


# --- values no event could carry, and files that could block -----------------------------

# A byte that is not UTF-8, as the environment hands it to Python (surrogateescape).
_NOT_UTF8 = b"svc-\xff".decode("utf-8", "surrogateescape")
_NOT_UTF8_PROBLEM = "'svc-\\udcff' is not UTF-8 text (U+DCFF): no event could carry it"


@pytest.mark.parametrize(
    ("environment", "arguments", "message"),
    [
        (
            {"CODEX_TELEMETRY_ORIGINATOR": _NOT_UTF8},
            {},
            f"originator (CODEX_TELEMETRY_ORIGINATOR): {_NOT_UTF8_PROBLEM}",
        ),
        ({}, {"originator": _NOT_UTF8}, f"originator (CODEX_TELEMETRY_ORIGINATOR): {_NOT_UTF8_PROBLEM}"),
        (
            {"OTEL_SERVICE_NAME": _NOT_UTF8},
            {},
            f"service_name (OTEL_SERVICE_NAME): {_NOT_UTF8_PROBLEM}",
        ),
        (
            {},
            {"service_name": _NOT_UTF8},
            f"service_name (CODEX_TELEMETRY_SERVICE_NAME): {_NOT_UTF8_PROBLEM}",
        ),
        (
            {"CODEX_TELEMETRY_SERVICE_VERSION": _NOT_UTF8},
            {},
            f"service_version (CODEX_TELEMETRY_SERVICE_VERSION): {_NOT_UTF8_PROBLEM}",
        ),
        (
            {"CODEX_TELEMETRY_RUNTIME_VERSION": _NOT_UTF8},
            {},
            f"runtime_version (CODEX_TELEMETRY_RUNTIME_VERSION): {_NOT_UTF8_PROBLEM}",
        ),
        (
            {"OTEL_RESOURCE_ATTRIBUTES": f"service.name={_NOT_UTF8}"},
            {},
            "service_name (OTEL_RESOURCE_ATTRIBUTES): 'service.name=svc-\\udcff' is not UTF-8 "
            "text (U+DCFF): no event could carry it",
        ),
        (
            {"OTEL_RESOURCE_ATTRIBUTES": f"team=core,deployment.environment={_NOT_UTF8}"},
            {},
            "OTEL_RESOURCE_ATTRIBUTES (environment): the value of 'deployment.environment' "
            "is not UTF-8 text (U+DCFF): no event could carry it",
        ),
        (
            {},
            {"exporter": "codex_backend", "codex_backend__token": "t", "codex_backend__account_id": "a\nb"},
            "codex_backend.account_id (CODEX_TELEMETRY_CODEX_BACKEND__ACCOUNT_ID): 'a\\nb' "
            "contains the control character U+000A, which an HTTP header cannot carry",
        ),
        (
            {},
            {"exporter": "codex_backend", "codex_backend__token": "secret\r\nx: y"},
            "codex_backend.token (CODEX_TELEMETRY_CODEX_BACKEND__TOKEN): the value (not shown) "
            "contains the control character U+000D, which an HTTP header cannot carry",
        ),
    ],
)  # fmt: skip
def test_a_value_no_event_could_carry_is_refused_at_init(
    environment: dict[str, str],
    arguments: dict[str, Any],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert _problems_of(**arguments) == (message,)
    with pytest.raises(ConfigurationError) as caught:
        codex_telemetry.init(**arguments)
    assert caught.value.problems == (message,)
    assert caught.value.__context__ is None


def test_resource_attributes_are_not_checked_when_they_are_not_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"team={_NOT_UTF8}")
    assert load_settings(exporter="console").exporter == "console"
    assert load_settings(enabled=False).enabled is False


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _in_a_child(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh process: a blocking open() would hang it, not the tests."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CODEX_TELEMETRY_", "OTEL_", "PYTEST_"))
    }
    environment["HOME"] = str(cwd)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_dotenv_that_is_a_named_pipe_is_refused_not_waited_on(tmp_path: Path) -> None:
    _fifo(tmp_path / ".env")
    child = _in_a_child(
        "import codex_telemetry\n"
        "try:\n"
        "    codex_telemetry.init(exporter='console')\n"
        "except codex_telemetry.ConfigurationError as error:\n"
        "    print(error.problems)\n",
        tmp_path,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == str(
        (f".env file {tmp_path / '.env'}: is not a regular file (a named pipe)",)
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_file_path_that_is_a_named_pipe_is_refused_not_waited_on(tmp_path: Path) -> None:
    pipe = _fifo(tmp_path / "events.jsonl")
    child = _in_a_child(
        "import codex_telemetry\n"
        "try:\n"
        f"    codex_telemetry.init(exporter='file', file__path={str(pipe)!r})\n"
        "except codex_telemetry.ConfigurationError as error:\n"
        "    print(error.problems)\n",
        tmp_path,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == str(
        (
            f"file.path (CODEX_TELEMETRY_FILE__PATH): cannot open: [Errno 6] {pipe} is a "
            "named pipe with no reader, which would block the program: give a regular file",
        )
    )


def test_a_file_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    assert _problems_of(exporter="file", file__path=str(tmp_path)) == (
        f"file.path (CODEX_TELEMETRY_FILE__PATH): {str(tmp_path)!r} is a directory, "
        "not a file events can be appended to",
    )
