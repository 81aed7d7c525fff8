"""The command group and the entry point shared by the console script and ``-m``."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from codex_telemetry._cli._check import check
from codex_telemetry._cli._config import config
from codex_telemetry._cli._events import show, tail
from codex_telemetry._cli._replay import replay
from codex_telemetry._cli._report import report
from codex_telemetry._cli._spool import spool
from codex_telemetry._version import __version__

__all__ = ["cli", "main"]

_PROG = "codex-telemetry"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name=_PROG, message="%(prog)s %(version)s")
def cli() -> None:
    """Inspect and test codex-telemetry: settings, delivery, recorded events.

    \b
    Start with:
      codex-telemetry config       what the SDK would do here, and why
      codex-telemetry check        send one test record to the configured sink
      codex-telemetry report FILE  totals of a JSON Lines file of events

    Settings come from CODEX_TELEMETRY_* variables, a .env file in the working directory
    and the standard OTEL_* variables, exactly as for codex_telemetry.init().
    """


cli.add_command(config)
cli.add_command(check)
cli.add_command(show)
cli.add_command(tail)
cli.add_command(report)
cli.add_command(replay)
cli.add_command(spool)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the tool; every error ends as one line on stderr and a non-zero exit code."""
    try:
        code = cli.main(args=argv, prog_name=_PROG, standalone_mode=False)
    except click.UsageError as error:
        where = error.ctx.command_path if error.ctx is not None else _PROG
        click.echo(f"{where}: {error.format_message()} (see '{where} --help')", err=True)
        sys.exit(error.exit_code)
    except click.ClickException as error:
        click.echo(f"{_PROG}: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except (click.Abort, KeyboardInterrupt):
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as other Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    sys.exit(code if isinstance(code, int) else 0)
