"""Settings: the precedence table, the OTEL_* fallbacks, and the configuration errors."""

# The precedence table reads best as one case per line.
# ruff: noqa: E501

from __future__ import annotations

import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

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
    ({"OTEL_EXPORTER_OTLP_LOGS_INSECURE": "false"}, [], {"otlp__insecure": True}, "otlp.insecure", True),
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
            "'collector:4318/v1/logs' is not an http:// or https:// URL, as http/json needs",
        ),
        ({}, {"exportr": "console"}, "exportr: unknown setting"),
        (
            {"CODEX_TELEMETRY_REDUCER__MAX_TURN": "3"},
            {},
            "reducer.max_turn: unknown setting",
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


def _fields(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str]]:
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _fields(annotation, (*prefix, name))
        else:
            yield (*prefix, name), info.description or ""


def test_every_setting_documents_its_variable() -> None:
    fields = list(_fields(TelemetrySettings))
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
    assert caught.value.problems == ("codex_telemetry_exportr: unknown setting",)


def test_a_dotenv_file_that_is_not_utf8_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(b"CODEX_TELEMETRY_EXPORTER=\xff\xfe\n")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.problems == (".env: cannot be read as UTF-8 text",)


SECRET = "s3cret"

# (environment, init arguments, the one problem reported). Each plants SECRET where a
# careless message, repr or chained exception would show it.
_SECRET_CASES: list[tuple[dict[str, str], dict[str, Any], str]] = [
    ({"CODEX_TELEMETRY_CODEX_BACKEND": '"s3cret"'}, {}, "codex_backend (CODEX_TELEMETRY_CODEX_BACKEND): input should be a valid dictionary or instance of CodexBackendSettings (value not shown: secret)"),
    ({"CODEX_TELEMETRY_CODEX_BACKEND": '{"token": "s3cret"'}, {}, "codex_backend (CODEX_TELEMETRY_CODEX_BACKEND): not a valid JSON object"),
    ({"CODEX_TELEMETRY_CODEX_BACKEND": '{"token": ["s3cret"]}'}, {}, "codex_backend.token (CODEX_TELEMETRY_CODEX_BACKEND): input should be a valid string (value not shown: secret)"),
    ({"CODEX_TELEMETRY_CODEX_BACKEND": '{"tokn": "s3cret"}'}, {}, "codex_backend.tokn: unknown setting"),
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
