"""The ``codex-telemetry`` command-line tool, one module per command group.

Nothing in ``codex_telemetry/__init__.py`` imports this package: the library never pays
for the CLI or for click.
"""

from codex_telemetry._cli._main import cli, main

__all__ = ["cli", "main"]
