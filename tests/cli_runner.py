"""Run ``codex-telemetry`` as a user would: a child process, a fresh HOME, a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CLI", "Result"]


@dataclass(frozen=True)
class Result:
    """What the command printed, and its exit code."""

    code: int
    out: str
    err: str


class CLI:
    """The tool in a working directory of its own (so no stray ``.env``), with a fresh HOME."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.cwd = root / "work"
        self.home.mkdir()
        self.cwd.mkdir()

    def run(
        self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> Result:
        """``python -m codex_telemetry ARGS`` with only PATH, HOME and ``env`` set."""
        environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), **(env or {})}
        done = subprocess.run(
            [sys.executable, "-m", "codex_telemetry", *args],
            cwd=self.cwd,
            env=environment,
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)
