"""Start-up cost: what ``import codex_telemetry`` and ``init()`` load, checked in fresh
processes; the fact validators are built on first use, and validate as strictly then.

No timing is asserted here (``python -m benchmarks`` measures it): only which modules a
step imports and what each fact type does the first time it is built.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import codex_telemetry
from tests.otlp_receiver import HttpReceiver, records_of

_ROOT = Path(__file__).resolve().parent.parent

# Modules whose import is the cost the package defers: none is needed before the first
# call, and only the chosen exporter's are needed by init().
_HEAVY = ("pydantic_settings", "grpc", "google.protobuf", "opentelemetry.sdk", "requests")


def run_child(script: str, home: Path) -> Any:
    """Run ``script`` in a fresh interpreter with an empty HOME; the JSON it prints last.

    The script can call ``loaded(*prefixes)``: the imported modules named so or below.
    """
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CODEX_TELEMETRY_", "OTEL_", "PYDANTIC_"))
    }
    # pydantic plugins installed beside the package (logfire's) load when a first model is
    # built, and bring their own imports: not the package's to account for.
    environment.update(HOME=str(home), PYTHONPATH=str(_ROOT), PYDANTIC_DISABLE_PLUGINS="__all__")
    done = subprocess.run(
        [sys.executable, "-c", _LOADED + textwrap.dedent(script)],
        cwd=home,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


_LOADED = f"""
import sys

HEAVY = {_HEAVY!r}


def loaded(*prefixes):
    return sorted(
        name for name in sys.modules if any(name == p or name.startswith(p + ".") for p in prefixes)
    )
"""


def test_import_codex_telemetry_imports_only_the_package_itself(tmp_path: Path) -> None:
    added = run_child(
        """
        import json
        before = set(sys.modules)
        import codex_telemetry
        print(json.dumps(sorted(set(sys.modules) - before)))
        """,
        tmp_path,
    )
    assert [name for name in added if name.startswith("codex_telemetry")] == [
        "codex_telemetry",
        "codex_telemetry._errors",
        "codex_telemetry._version",
    ]
    # Not even pydantic or typing: each public name is imported when first used.
    for prefix in ("pydantic", "pydantic_core", "typing", "opentelemetry", *_HEAVY):
        assert not [name for name in added if name == prefix or name.startswith(prefix + ".")]


def test_the_facts_import_pydantic_but_build_no_validator(tmp_path: Path) -> None:
    result = run_child(
        """
        import json
        from pydantic.dataclasses import is_pydantic_dataclass
        from codex_telemetry import facts
        classes = [value for value in vars(facts).values() if is_pydantic_dataclass(value)]
        print(json.dumps({
            "heavy": loaded(*HEAVY),
            "classes": len(classes),
            "built": [cls.__name__ for cls in classes if cls.__pydantic_complete__],
        }))
        """,
        tmp_path,
    )
    assert result == {"heavy": [], "classes": 47, "built": []}


def test_init_imports_only_the_chosen_exporter(tmp_path: Path) -> None:
    result = run_child(
        """
        import json
        import codex_telemetry
        codex_telemetry.init(exporter="none")
        disabled = loaded("grpc", "google.protobuf", "opentelemetry", "requests")
        codex_telemetry.init(exporter="otlp", otlp={"endpoint": "http://127.0.0.1:9/v1/logs"})
        print(json.dumps({
            "disabled": disabled,
            "http": loaded("grpc", "opentelemetry.exporter.otlp.proto.grpc"),
        }))
        codex_telemetry.shutdown(0)
        """,
        tmp_path,
    )
    assert result == {"disabled": [], "http": []}


def test_every_fact_type_validates_strictly_and_names_the_field_when_first_built(
    tmp_path: Path,
) -> None:
    # Each class's first construction is a bad one, with every argument positional and of
    # no type a fact accepts: the validator built then refuses each field by name.
    result = run_child(
        """
        import dataclasses, json
        from pydantic import ValidationError
        from pydantic.dataclasses import is_pydantic_dataclass
        from codex_telemetry import facts

        refused = {}
        for name, cls in sorted(vars(facts).items()):
            if not is_pydantic_dataclass(cls):
                continue
            arguments = [object() for _ in dataclasses.fields(cls)]
            try:
                cls(*arguments)
            except ValidationError as error:
                refused[name] = sorted({str(line["loc"][0]) for line in error.errors()})
            else:
                refused[name] = "accepted"
        print(json.dumps(refused))
        """,
        tmp_path,
    )
    assert len(result) == 47
    assert result["Thread"] == ["created_at", "ephemeral", "id", "source"]
    assert result["TokenUsage"] == [
        "cached_input_tokens",
        "input_tokens",
        "output_tokens",
        "reasoning_output_tokens",
        "total_tokens",
    ]
    assert result["JsonRpcError"] == ["code", "message"]  # ``data`` is any JSON value
    for name, fields in result.items():
        cls = getattr(codex_telemetry.facts, name)
        expected = sorted(field.name for field in dataclasses.fields(cls) if field.type != "Any")
        assert fields == expected, name


def test_a_fact_built_first_by_many_threads_at_once_is_built_once_and_validates(
    tmp_path: Path,
) -> None:
    result = run_child(
        """
        import json, threading
        from pydantic import ValidationError
        from codex_telemetry import facts

        barrier = threading.Barrier(8)
        built = []

        def build():
            barrier.wait()
            built.append(facts.TokenUsage(1, 2, 3, 4, 10))

        threads = [threading.Thread(target=build) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        try:
            facts.TokenUsage(1, 2, 3, 4, "10")
        except ValidationError as error:
            refused = [list(line["loc"]) for line in error.errors()]
        print(json.dumps({"built": len(built), "refused": refused}))
        """,
        tmp_path,
    )
    assert result == {"built": 8, "refused": [["total_tokens"]]}


def test_a_fact_class_keeps_its_signature_before_and_after_its_first_fact() -> None:
    expected = "(id: 'str', ephemeral: 'bool', created_at: 'int', source: 'SessionSource') -> None"
    assert str(inspect.signature(codex_telemetry.facts.Thread)) == expected
    codex_telemetry.facts.Thread("thread-1", False, 1, "cli")
    assert str(inspect.signature(codex_telemetry.facts.Thread)) == expected
    assert str(inspect.signature(codex_telemetry.facts.JsonRpcError)) == (
        "(code: 'int', message: 'str', data: Any = None) -> None"
    )


@pytest.mark.parametrize("name", codex_telemetry.__all__)
def test_each_public_name_is_the_object_its_module_defines(name: str) -> None:
    value = getattr(codex_telemetry, name)
    if name in {"events", "facts"}:
        assert value is sys.modules[f"codex_telemetry.{name}"]
    elif name != "__version__":
        assert value is getattr(sys.modules[value.__module__], name)
    assert name in dir(codex_telemetry)


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Telemetri'"):
        _ = codex_telemetry.Telemetri  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        from codex_telemetry import Telemetri  # type: ignore[attr-defined]  # noqa: F401, PLC0415


def test_init_leaves_the_otlp_sink_to_its_first_batch_which_exit_still_delivers(
    tmp_path: Path,
) -> None:
    with HttpReceiver() as receiver:
        result = run_child(
            f"""
            import json
            import codex_telemetry
            from codex_telemetry import facts
            codex_telemetry.init(otlp__endpoint={receiver.url()!r})
            after_init = loaded("requests", "google.protobuf", "codex_telemetry._export._otlp")
            codex_telemetry.track_fact(
                facts.HookRun(
                    tracking=facts.TrackingContext("gpt-5", "thread-1", "turn-1"),
                    hook_name="Stop",
                    hook_source="user",
                    status="completed",
                )
            )
            print(json.dumps({{"after_init": after_init}}))
            """,
            tmp_path,
        )
        # The process exited at once: its exit made the sink and delivered the event.
        names = [record.event_name for record in records_of(receiver.received)]
    assert result == {"after_init": []}
    assert names == ["codex_hook_run"]
