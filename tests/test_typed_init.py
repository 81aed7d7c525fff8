"""``init()``'s keywords are typed: a type checker rejects a wrong name or value, the types
never drift from ``TelemetrySettings``, and ``help(init)`` lists every setting."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import os
import pydoc
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, is_typeddict

import pytest
from pydantic import BaseModel, SecretStr

import codex_telemetry
from codex_telemetry import ReducerLimits, _init_options
from codex_telemetry._init_options import InitOptions
from codex_telemetry._settings import (
    CodexBackendSettings,
    FileSettings,
    OTLPSettings,
    ReducerSettings,
    TelemetrySettings,
    load_settings,
)
from tests.mypy_snippets import mypy_cache_dir, type_check

_NAMESPACE = {
    **vars(_init_options),
    "SecretStr": SecretStr,
    "OTLPSettings": OTLPSettings,
    "FileSettings": FileSettings,
    "CodexBackendSettings": CodexBackendSettings,
    "ReducerSettings": ReducerSettings,
}


def _hints(typed_dict: type) -> dict[str, Any]:
    return typing.get_type_hints(typed_dict, localns=_NAMESPACE)


def _members(annotation: Any) -> list[Any]:
    """The members of a union, with ``Annotated`` constraints taken off."""
    if get_origin(annotation) is typing.Annotated:
        return _members(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [member for arg in get_args(annotation) for member in _members(arg)]
    return [annotation]


def _groups(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    return {
        name: info.annotation
        for name, info in model.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    }


def _token(member: Any) -> Any:
    """A comparable stand-in for one member of a union (a Literal by its values)."""
    if get_origin(member) is Literal:
        return ("Literal", frozenset(get_args(member)))
    return member


# What init() accepts beyond the stored type: a mapping of headers is joined into the
# ``k=v`` form by the settings' own validator.
_ALSO_ACCEPTED: dict[tuple[str, ...], set[Any]] = {
    ("otlp", "headers"): {Mapping[str, str]},
}


def _expected_tokens(path: tuple[str, ...], annotation: Any) -> set[Any]:
    """The types a keyword for a settings field of ``annotation`` should be declared with."""
    tokens: set[Any] = {type(None)}  # None counts as not given, for every setting
    for member in _members(annotation):
        if member is Path:
            tokens |= {str, os.PathLike[str]}
        elif member is SecretStr:
            tokens |= {str, SecretStr}
        elif isinstance(member, type) and issubclass(member, BaseModel):
            tokens |= {member, "TypedDict"}
        else:
            tokens.add(_token(member))
    return tokens | _ALSO_ACCEPTED.get(path, set())


def _declared_tokens(annotation: Any) -> set[Any]:
    return {"TypedDict" if is_typeddict(m) else _token(m) for m in _members(annotation)}


def _typed_dict_in(annotation: Any) -> type:
    (typed_dict,) = [member for member in _members(annotation) if is_typeddict(member)]
    return typing.cast(type, typed_dict)


def test_init_options_has_one_key_per_setting_and_per_nested_field() -> None:
    expected = set(TelemetrySettings.model_fields)
    for group, model in _groups(TelemetrySettings).items():
        expected |= {f"{group}__{field}" for field in model.model_fields}
    assert set(_hints(InitOptions)) == expected
    assert InitOptions.__required_keys__ == frozenset()


@pytest.mark.parametrize("group", sorted(_groups(TelemetrySettings)))
def test_a_group_dict_has_one_key_per_field_of_its_model(group: str) -> None:
    model = _groups(TelemetrySettings)[group]
    typed_dict = _typed_dict_in(_hints(InitOptions)[group])
    assert set(_hints(typed_dict)) == set(model.model_fields)
    assert typed_dict.__required_keys__ == frozenset()  # type: ignore[attr-defined]


def _every_setting() -> list[tuple[tuple[str, ...], Any]]:
    settings: list[tuple[tuple[str, ...], Any]] = []
    for name, info in TelemetrySettings.model_fields.items():
        settings.append(((name,), info.annotation))
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            for field, nested in info.annotation.model_fields.items():
                settings.append(((name, field), nested.annotation))
    return settings


@pytest.mark.parametrize(
    ("path", "annotation"), _every_setting(), ids=[".".join(p) for p, _ in _every_setting()]
)
def test_each_keyword_is_typed_as_its_setting(path: tuple[str, ...], annotation: Any) -> None:
    options = _hints(InitOptions)
    declared = [options["__".join(path)]]
    if len(path) == 2:  # also the key of the group's dict
        declared.append(_hints(_typed_dict_in(options[path[0]]))[path[1]])
    for declaration in declared:
        assert _declared_tokens(declaration) == _expected_tokens(path, annotation)


def _sample_values(tmp_path: Path) -> dict[str, Any]:
    """One valid value, not the default, for every keyword of InitOptions."""
    readable = tmp_path / "ca.pem"
    readable.write_text("not checked until used")
    return {
        "enabled": False,
        "general_analytics": True,
        "originator": "my_app",
        "exporter": "console",
        "service_name": "svc",
        "service_version": "1.2.3",
        "runtime_version": "9.9.9",
        "max_queue_size": 5,
        "max_export_queue_size": 6,
        "export_batch_size": 7,
        "export_interval": 0.5,
        "shutdown_timeout": 0.25,
        "strict": False,
        "debug": True,
        "otlp": {"endpoint": "https://collector.example/v1/logs", "compression": "none"},
        "otlp__protocol": "grpc",
        "otlp__endpoint": "https://collector.example/v1/logs",
        "otlp__headers": {"authorization": "Bearer x"},
        "otlp__timeout": 3,
        "otlp__compression": "none",
        "otlp__certificate": readable,
        "otlp__client_key": str(readable),
        "otlp__client_certificate": readable,
        "otlp__insecure": False,
        "file": FileSettings(path=tmp_path / "events.jsonl"),
        "file__path": tmp_path / "events.jsonl",
        "codex_backend": {"token": "t", "account_id": "a"},
        "codex_backend__base_url": "https://backend.example/api",
        "codex_backend__token": SecretStr("t"),
        "codex_backend__account_id": "account",
        "codex_backend__timeout": 2.5,
        "reducer": ReducerSettings(max_turns=3),
        "reducer__max_connections": 1,
        "reducer__max_threads": 2,
        "reducer__max_pending_requests": 3,
        "reducer__max_turns": 4,
        "reducer__idle_seconds": 60,
    }


def test_every_keyword_is_accepted_at_run_time(tmp_path: Path) -> None:
    samples = _sample_values(tmp_path)
    assert set(samples) == set(_hints(InitOptions))
    default = load_settings()
    for key, value in samples.items():
        settings = load_settings(**{key: value})
        given: Any = settings
        expected: Any = default
        for part in key.split("__"):
            given, expected = getattr(given, part), getattr(expected, part)
        assert given != expected, key


def test_init_is_annotated_with_the_options() -> None:
    parameters = inspect.signature(codex_telemetry.init).parameters
    assert [(p.name, p.kind) for p in parameters.values()] == [
        ("logger_provider", inspect.Parameter.KEYWORD_ONLY),
        ("instrument", inspect.Parameter.KEYWORD_ONLY),
        ("overrides", inspect.Parameter.VAR_KEYWORD),
    ]
    assert parameters["overrides"].annotation == "Unpack[InitOptions]"


def _documented_settings(docstring: str) -> list[str]:
    section = docstring.split("\nSettings:\n", 1)[1]
    return re.findall(r"^ {4}([a-z_]+(?:\.[a-z_]+)?):", section, re.MULTILINE)


def _default_of(path: list[str]) -> Any:
    if path[0] == "reducer":  # None in the settings: the reducer's own default applies
        return {field.name: field.default for field in dataclasses.fields(ReducerLimits)}[path[1]]
    value: Any = load_settings()  # the environment is clean: the defaults, resolved
    for part in path:
        value = getattr(value, part)
    return value


def test_the_defaults_in_help_of_init_are_the_settings_defaults() -> None:
    docstring = inspect.getdoc(codex_telemetry.init) or ""
    checked = 0
    for name, shown in re.findall(r"^ {4}([a-z_.]+): \w+ = (\S+)", docstring, re.MULTILINE):
        try:
            value = ast.literal_eval(shown.rstrip(","))
        except ValueError:
            continue  # "the package version", "on under pytest"
        assert value == _default_of(name.split(".")), name
        checked += 1
    assert checked == 19


def test_help_of_init_lists_every_setting_once() -> None:
    expected = [".".join(path) for path, _ in _every_setting() if len(path) == 2] + [
        name for name in TelemetrySettings.model_fields if name not in _groups(TelemetrySettings)
    ]
    documented = _documented_settings(inspect.getdoc(codex_telemetry.init) or "")
    assert sorted(documented) == sorted(expected)
    shown = pydoc.plain(pydoc.render_doc(codex_telemetry.init))
    assert "**overrides: 'Unpack[InitOptions]'" in shown
    assert "        otlp.endpoint: str = " in shown


# --- what a type checker says ----------------------------------------------------------------

_VALID = """\
from pathlib import Path

import codex_telemetry
from codex_telemetry._settings import OTLPSettings, ReducerSettings

codex_telemetry.init(exporter="console", general_analytics=True)
codex_telemetry.init(
    exporter="otlp",
    otlp={"endpoint": "http://localhost:4318/v1/logs", "headers": {"authorization": "x"}},
    file__path=Path("events.jsonl"),
    reducer=ReducerSettings(max_turns=3),
    max_queue_size=100,
    export_interval=1,
    strict=None,
    instrument=["openai_codex"],
    logger_provider=None,
)
codex_telemetry.init(otlp=OTLPSettings(protocol="grpc"), otlp__timeout=2.5)
codex_telemetry.init(file={"path": "events.jsonl"}, exporter="file")
codex_telemetry.init(codex_backend__token="secret", exporter="codex_backend")
"""

_REJECTED = {
    "exporter_typo": 'codex_telemetry.init(exporter="consol")',
    "setting_typo": "codex_telemetry.init(general_analytic=True)",
    "nested_typo": 'codex_telemetry.init(otlp={"endpiont": "http://localhost:4318"})',
    "nested_keyword_value": 'codex_telemetry.init(otlp__protocol="xml")',
    "wrong_type": 'codex_telemetry.init(max_queue_size="10")',
}


@pytest.fixture(scope="module")
def type_errors(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[str]]:
    sources = {"valid": _VALID}
    sources |= {name: f"import codex_telemetry\n{call}\n" for name, call in _REJECTED.items()}
    directory = tmp_path_factory.mktemp("typed-init")
    return type_check(sources, directory, mypy_cache_dir(request, tmp_path_factory))


def test_valid_calls_pass_mypy_strict(type_errors: dict[str, list[str]]) -> None:
    assert type_errors["valid"] == []


# Each error by its start and its code: how mypy spells the expected type (``X | None``
# or ``Optional[X]``) has changed between releases.
@pytest.mark.parametrize(
    ("name", "start", "code"),
    [
        (
            "exporter_typo",
            '2: error: Argument "exporter" to "init" has incompatible type "Literal[\'consol\']"',
            "[arg-type]",
        ),
        (
            "setting_typo",
            '2: error: Unexpected keyword argument "general_analytic" for "init"',
            "[call-arg]",
        ),
        (
            "nested_typo",
            '2: error: Argument "otlp" to "init" has incompatible type "dict[str, str]"',
            "[arg-type]",
        ),
        (
            "nested_keyword_value",
            '2: error: Argument "otlp__protocol" to "init" has incompatible type '
            "\"Literal['xml']\"",
            "[arg-type]",
        ),
        (
            "wrong_type",
            '2: error: Argument "max_queue_size" to "init" has incompatible type "str"',
            "[arg-type]",
        ),
    ],
)
def test_mypy_strict_rejects(
    name: str, start: str, code: str, type_errors: dict[str, list[str]]
) -> None:
    (error,) = type_errors[name]
    assert error.startswith(start), error
    assert error.endswith(code), error
