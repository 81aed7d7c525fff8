"""``codex-telemetry config``: effective settings, their sources, why collection is off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codex_telemetry import __version__
from codex_telemetry._settings import SettingSource, load_settings, setting_sources
from tests.cli_runner import CLI


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path)


def test_defaults(cli: CLI) -> None:
    result = cli.run("config")
    assert (result.code, result.err) == (0, "")
    assert result.out == (
        "collection: on (otlp http/protobuf to http://localhost:4318/v1/logs)\n"
        "\n"
        "setting                       value                            source\n"
        "enabled                       true                             default\n"
        "general_analytics             false                            default\n"
        "originator                    codex_cli_rs                     default\n"
        "exporter                      otlp                             default\n"
        "service_name                  codex-telemetry                  default\n"
        "service_version               -                                default\n"
        f"runtime_version               {__version__:<33}default\n"
        "max_queue_size                10000                            default\n"
        "max_export_queue_size         2048                             default\n"
        "export_batch_size             512                              default\n"
        "export_interval               1.0                              default\n"
        "shutdown_timeout              1.0                              default\n"
        "strict                        false                            default\n"
        "debug                         false                            default\n"
        "otlp.protocol                 http/protobuf                    default\n"
        "otlp.endpoint                 http://localhost:4318/v1/logs    default\n"
        "otlp.headers                  -                                default\n"
        "otlp.timeout                  10.0                             default\n"
        "otlp.compression              gzip                             default\n"
        "otlp.certificate              -                                default\n"
        "otlp.client_key               -                                default\n"
        "otlp.client_certificate       -                                default\n"
        "otlp.insecure                 -                                default\n"
        "file.path                     -                                default\n"
        "codex_backend.base_url        https://chatgpt.com/backend-api  default\n"
        "codex_backend.token           -                                default\n"
        "codex_backend.account_id      -                                default\n"
        "codex_backend.timeout         10.0                             default\n"
        "reducer.max_connections       1024                             default\n"
        "reducer.max_threads           16384                            default\n"
        "reducer.max_pending_requests  4096                             default\n"
        "reducer.max_turns             4096                             default\n"
        "reducer.idle_seconds          86400.0                          default\n"
        "spool.enabled                 true                             default\n"
        "spool.directory               ~/.cache/codex-telemetry/spool   default\n"
        "spool.max_bytes               67108864                         default\n"
        "event_types.include           -                                default\n"
        "event_types.exclude           -                                default\n"
        "before_send                   -                                default\n"
    )


def test_each_value_names_its_source_and_secrets_are_masked(cli: CLI) -> None:
    (cli.cwd / ".env").write_text(
        "CODEX_TELEMETRY_GENERAL_ANALYTICS=true\n"
        "CODEX_TELEMETRY_OTLP__TIMEOUT=9\n"  # loses to the environment
        "DATABASE_URL=postgres://elsewhere\n"
    )
    result = cli.run(
        "config",
        env={
            "CODEX_TELEMETRY_OTLP__TIMEOUT": "3",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example:4318",
            "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20sekrit-value,x-team=blue",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "500",  # loses to CODEX_TELEMETRY_OTLP__TIMEOUT
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=checkout,team=blue",
        },
    )
    assert (result.code, result.err) == (0, "")
    assert "sekrit" not in result.out
    lines = result.out.splitlines()
    assert lines[0] == (
        "collection: on (otlp http/protobuf to https://collector.example:4318/v1/logs)"
    )
    rows = {line.split()[0]: line for line in lines[2:]}
    assert rows["general_analytics"] == (
        "general_analytics             true"
        "                                    .env CODEX_TELEMETRY_GENERAL_ANALYTICS"
    )
    assert rows["service_name"].split() == ["service_name", "checkout", "OTEL_RESOURCE_ATTRIBUTES"]
    assert rows["otlp.endpoint"].split() == [
        "otlp.endpoint",
        "https://collector.example:4318/v1/logs",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    assert rows["otlp.headers"].split() == [
        "otlp.headers",
        "authorization=***,x-team=***",
        "OTEL_EXPORTER_OTLP_HEADERS",
    ]
    assert rows["otlp.timeout"].split() == [
        "otlp.timeout",
        "3.0",
        "CODEX_TELEMETRY_OTLP__TIMEOUT",
    ]
    assert rows["exporter"].split() == ["exporter", "otlp", "default"]


@pytest.mark.parametrize(
    ("env", "dotenv", "first_line"),
    [
        ({"DO_NOT_TRACK": "1"}, "", "collection: off (DO_NOT_TRACK=1 opts out)"),
        (
            {"OTEL_SDK_DISABLED": "true", "CODEX_TELEMETRY_ENABLED": "true"},
            "",
            "collection: off (OTEL_SDK_DISABLED=true opts out)",
        ),
        (
            {"CODEX_TELEMETRY_ENABLED": "false"},
            "",
            "collection: off (enabled is false (CODEX_TELEMETRY_ENABLED))",
        ),
        (
            {},
            "CODEX_TELEMETRY_EXPORTER=none\n",
            "collection: off (exporter is 'none' (.env CODEX_TELEMETRY_EXPORTER))",
        ),
    ],
)
def test_says_why_collection_is_off(
    cli: CLI, env: dict[str, str], dotenv: str, first_line: str
) -> None:
    if dotenv:
        (cli.cwd / ".env").write_text(dotenv)
    result = cli.run("config", env=env)
    assert (result.code, result.err) == (0, "")
    assert result.out.splitlines()[0] == first_line


def test_json(cli: CLI) -> None:
    result = cli.run(
        "config",
        "--json",
        env={
            "CODEX_TELEMETRY_EXPORTER": "codex_backend",
            "CODEX_TELEMETRY_CODEX_BACKEND__TOKEN": "sekrit-token",
            "DO_NOT_TRACK": "true",
        },
    )
    assert (result.code, result.err) == (0, "")
    assert "sekrit" not in result.out
    document = json.loads(result.out)
    assert document["collecting"] is False
    assert document["reason"] == "DO_NOT_TRACK=true opts out"
    settings = document["settings"]
    assert settings["enabled"] == {"value": False, "source": "opt_out", "variable": "DO_NOT_TRACK"}
    assert settings["exporter"] == {
        "value": "codex_backend",
        "source": "environment",
        "variable": "CODEX_TELEMETRY_EXPORTER",
    }
    assert settings["codex_backend.token"] == {
        "value": "***",
        "source": "environment",
        "variable": "CODEX_TELEMETRY_CODEX_BACKEND__TOKEN",
    }
    assert settings["otlp.timeout"] == {"value": 10.0, "source": "default", "variable": None}
    assert len(settings) == 39  # 32, debug, event_types.include, .exclude, before_send, spool.*


def test_a_bad_value_is_one_line_naming_the_setting_and_variable(cli: CLI) -> None:
    result = cli.run("config", env={"CODEX_TELEMETRY_OTLP__PROTOCOL": "xml"})
    assert (result.code, result.out) == (1, "")
    assert result.err == (
        "codex-telemetry: invalid codex_telemetry settings: otlp.protocol "
        "(CODEX_TELEMETRY_OTLP__PROTOCOL): 'xml' is not one of grpc, http/protobuf, "
        "http/json\n"
    )


# --- setting_sources(): the same precedence as load_settings() -----------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("argument", "variable", "dotenv", "otel", "value", "source"),
    [
        (None, None, None, None, 10.0, SettingSource("default")),
        (None, None, None, "2000", 2.0, SettingSource("otel", "OTEL_EXPORTER_OTLP_TIMEOUT")),
        (
            None,
            None,
            "3",
            "2000",
            3.0,
            SettingSource("dotenv", "CODEX_TELEMETRY_OTLP__TIMEOUT"),
        ),
        (
            None,
            "4",
            "3",
            "2000",
            4.0,
            SettingSource("environment", "CODEX_TELEMETRY_OTLP__TIMEOUT"),
        ),
        (5.0, "4", "3", "2000", 5.0, SettingSource("argument")),
    ],
)
def test_sources_follow_the_precedence_of_load_settings(
    *,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    argument: float | None,
    variable: str | None,
    dotenv: str | None,
    otel: str | None,
    value: float,
    source: SettingSource,
) -> None:
    if variable is not None:
        monkeypatch.setenv("CODEX_TELEMETRY_OTLP__TIMEOUT", variable)
    if dotenv is not None:
        (workdir / ".env").write_text(f"CODEX_TELEMETRY_OTLP__TIMEOUT={dotenv}\n")
    if otel is not None:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", otel)
    overrides = {"otlp__timeout": argument}
    assert load_settings(**overrides).otlp.timeout == value
    assert setting_sources(**overrides)["otlp.timeout"] == source


def test_a_group_given_as_json_names_the_group_variable(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_TELEMETRY_OTLP", '{"endpoint": "http://h:1/v1/logs"}')
    sources = setting_sources()
    assert sources["otlp.endpoint"] == SettingSource("environment", "CODEX_TELEMETRY_OTLP")
    assert sources["otlp.protocol"] == SettingSource("default")


def test_the_opt_out_wins_over_every_source(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_TELEMETRY_ENABLED", "true")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert load_settings(enabled=True).enabled is False
    assert setting_sources(enabled=True)["enabled"] == SettingSource("opt_out", "OTEL_SDK_DISABLED")


def test_a_class_that_ignores_the_environment_reports_defaults(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codex_telemetry.testing import _CaptureSettings  # noqa: PLC0415

    monkeypatch.setenv("DO_NOT_TRACK", "1")
    monkeypatch.setenv("CODEX_TELEMETRY_EXPORTER", "file")
    sources = setting_sources(_CaptureSettings, strict=True)
    assert load_settings(_CaptureSettings, strict=True).enabled is True
    assert sources["enabled"] == SettingSource("default")
    assert sources["exporter"] == SettingSource("default")
    assert sources["strict"] == SettingSource("argument")
