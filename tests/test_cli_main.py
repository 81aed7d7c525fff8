"""The command group: help, version, usage errors, and how it is installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from codex_telemetry import __version__
from tests.cli_runner import CLI


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path)


def test_help_lists_every_command(cli: CLI) -> None:
    result = cli.run("--help")
    assert (result.code, result.err) == (0, "")
    assert result.out == (
        "Usage: codex-telemetry [OPTIONS] COMMAND [ARGS]...\n"
        "\n"
        "  Inspect and test codex-telemetry: settings, delivery, recorded events.\n"
        "\n"
        "  Start with:\n"
        "    codex-telemetry config       what the SDK would do here, and why\n"
        "    codex-telemetry check        send one test record to the configured sink\n"
        "    codex-telemetry report FILE  totals of a JSON Lines file of events\n"
        "\n"
        "  Settings come from CODEX_TELEMETRY_* variables, a .env file in the working\n"
        "  directory and the standard OTEL_* variables, exactly as for\n"
        "  codex_telemetry.init().\n"
        "\n"
        "Options:\n"
        "  --version   Show the version and exit.\n"
        "  -h, --help  Show this message and exit.\n"
        "\n"
        "Commands:\n"
        "  check   Send one test record to the configured sink and say what happened.\n"
        "  config  Show the effective settings and where each value came from.\n"
        "  replay  Turn a recorded app-server session into its events, as JSON Lines.\n"
        "  report  Totals of JSON Lines files of events: turns, tokens, steers, ...\n"
        "  show    Print the events of a JSON Lines file, one readable line each.\n"
        "  spool   Undelivered events kept on disk: list, flush or purge them.\n"
        "  tail    Print the last events of a JSON Lines file; -f follows it.\n"
    )


@pytest.mark.parametrize("command", ["config", "check", "show", "tail", "report", "replay"])
def test_each_command_explains_itself(cli: CLI, command: str) -> None:
    result = cli.run(command, "--help")
    assert (result.code, result.err) == (0, "")
    assert result.out.startswith(f"Usage: codex-telemetry {command} [OPTIONS]")
    assert "-h, --help" in result.out


def test_version(cli: CLI) -> None:
    assert cli.run("--version").out == f"codex-telemetry {__version__}\n"


def test_an_unknown_command_is_one_line_on_stderr(cli: CLI) -> None:
    result = cli.run("confg")
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        "codex-telemetry: No such command 'confg'. Did you mean 'config'? "
        "(see 'codex-telemetry --help')\n"
    )


def test_a_bad_option_value_is_one_line_on_stderr(cli: CLI) -> None:
    result = cli.run("report", "--top", "0")
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        "codex-telemetry report: Invalid value for '--top': 0 is not in the range x>=1. "
        "(see 'codex-telemetry report --help')\n"
    )


def test_a_missing_file_is_one_line_on_stderr(cli: CLI) -> None:
    result = cli.run("show", "missing.jsonl")
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        "codex-telemetry show: Invalid value for '[FILE]': 'missing.jsonl': "
        "No such file or directory (see 'codex-telemetry show --help')\n"
    )


def test_the_console_script_is_installed(cli: CLI) -> None:
    script = Path(sys.executable).parent / "codex-telemetry"
    done = subprocess.run(
        [str(script), "--version"],
        capture_output=True,
        text=True,
        env={"HOME": str(cli.home), "PATH": ""},
        cwd=cli.cwd,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"codex-telemetry {__version__}\n",
        "",
    )


def test_importing_the_package_loads_neither_the_cli_nor_click() -> None:
    code = (
        "import sys, codex_telemetry; "
        "print(sorted(m for m in sys.modules if m == 'click' or m.startswith('click.') "
        "or m.split('.')[:2] == ['codex_telemetry', '_cli']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"
