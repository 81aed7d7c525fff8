"""Every Python snippet of README.md type-checks with ``mypy --strict`` as written, and the
ones that need nothing beyond this package run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from codex_telemetry import facts
from tests.mypy_snippets import mypy_cache_dir, type_check

_README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
_HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)


def _snippets() -> dict[str, str]:
    """Each ```python block of the README, named after its section (``use_it_1``)."""
    text = _README.read_text()
    snippets: dict[str, str] = {}
    for block in _BLOCK.finditer(text):
        headings = _HEADING.findall(text, 0, block.start())
        section = re.sub(r"\W+", "_", headings[-1].lower()).strip("_") if headings else "top"
        number = 1
        while f"{section}_{number}" in snippets:
            number += 1
        snippets[f"{section}_{number}"] = block.group(1)
    return snippets


_SNIPPETS = _snippets()


def test_the_readme_has_the_snippets_this_file_expects() -> None:
    assert {"use_it_1", "instrument_an_openai_codex_program_1", "test_your_own_code_1"} <= set(
        _SNIPPETS
    )


@pytest.fixture(scope="module")
def readme_type_errors(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[str]]:
    # One mypy run for every snippet: most of its time is loading the package's types.
    directory = tmp_path_factory.mktemp("readme")
    return type_check(_SNIPPETS, directory, mypy_cache_dir(request, tmp_path_factory))


@pytest.mark.parametrize("name", sorted(_SNIPPETS))
def test_snippet_passes_mypy_strict(name: str, readme_type_errors: dict[str, list[str]]) -> None:
    assert readme_type_errors[name] == []


_SEQUENCES = """\
from collections import deque
from codex_telemetry import facts
tracking = facts.TrackingContext(model_slug="m", thread_id="t", turn_id="u")
app = facts.AppInvocation(connector_id="c", app_name=None, invocation_type=None)
by_deque = facts.AppMentioned(tracking=tracking, mentions=deque([app]))
by_list = facts.AppMentioned(tracking=tracking, mentions=[app])
by_set = facts.AppMentioned(tracking=tracking, mentions={app})
"""


def test_a_fact_sequence_is_typed_as_what_is_accepted(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    errors = type_check(
        {"sequences": _SEQUENCES}, tmp_path, mypy_cache_dir(request, tmp_path_factory)
    )
    assert len(errors["sequences"]) == 1
    assert errors["sequences"][0].startswith('7: error: Argument "mentions" to "AppMentioned"')


def test_a_fact_sequence_is_accepted_as_typed_and_stored_as_a_tuple() -> None:
    namespace: dict[str, object] = {}
    with pytest.raises(ValidationError, match="mentions"):  # the set, refused
        exec(_SEQUENCES, namespace)
    for name in ("by_deque", "by_list"):
        mentioned = namespace[name]
        assert isinstance(mentioned, facts.AppMentioned)
        assert isinstance(mentioned.mentions, tuple)
        assert len(mentioned.mentions) == 1


def _run(args: list[str], directory: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CODEX_TELEMETRY_", "OTEL_", "PYTEST_"))
    }
    # Shown on the console, so that the snippet needs no collector; a fresh HOME.
    environment |= {"HOME": str(directory), "CODEX_TELEMETRY_EXPORTER": "console"}
    return subprocess.run(
        [sys.executable, *args],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(_SNIPPETS))
def test_snippet_runs(name: str, tmp_path: Path) -> None:
    source = _SNIPPETS[name]
    if "openai_codex" in source:
        pytest.skip("drives a real codex app-server, which talks to the OpenAI API")
    path = tmp_path / f"snippet_{name}.py"
    path.write_text(source)
    if re.search(r"^def test_", source, re.MULTILINE):
        result = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", path.name], tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert " passed" in result.stdout
    else:
        result = _run([path.name], tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    if name == "use_it_1":  # its one event, on the console
        lines = result.stderr.splitlines()
        assert sum('"skill_name": "doc"' in line for line in lines) == 1, result.stderr
