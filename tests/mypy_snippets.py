"""Type-check small programs with mypy's API, as a user's ``mypy --strict`` would see them.

No configuration file is read (so neither this project's settings nor the pydantic mypy
plugin apply): the package must type-check for a user who only runs ``mypy --strict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from mypy import api

__all__ = ["mypy_cache_dir", "type_check"]


def mypy_cache_dir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A cache kept between test runs (pytest's own cache), so that only the first run is slow."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("mypy-snippets"))
    return tmp_path_factory.mktemp("mypy-cache")


def type_check(
    sources: Mapping[str, str], directory: Path, cache_dir: Path
) -> dict[str, list[str]]:
    """Write each source to ``directory/<name>.py``, run one ``mypy --strict`` over all of
    them, and return each name's error lines (``<line>: error: <message>  [<code>]``)."""
    paths = []
    for name, source in sources.items():
        path = directory / f"{name}.py"
        path.write_text(source)
        paths.append(path)
    stdout, stderr, status = api.run(
        [
            "--strict",
            "--config-file",
            "",
            "--cache-dir",
            str(cache_dir),
            "--no-error-summary",
            "--no-color-output",
            "--show-error-codes",
            "--hide-error-context",
            *(str(path) for path in paths),
        ]
    )
    # 0: clean, 1: type errors; anything else (2) is mypy itself failing.
    assert status in (0, 1), f"mypy failed to run:\n{stdout}{stderr}"
    # Lines are matched by file name: mypy may report an unchanged module that it read
    # from its cache under the path it had when the cache was written.
    errors: dict[str, list[str]] = {name: [] for name in sources}
    for line in stdout.splitlines():
        location, separator, message = line.partition(":")
        name = Path(location).name.removesuffix(".py")
        assert separator and name in errors, f"unexpected mypy output: {line}"
        if ": note: " not in message:
            errors[name].append(message)
    return errors
