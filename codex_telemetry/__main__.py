"""``python -m codex_telemetry``: the ``codex-telemetry`` command-line tool."""

from codex_telemetry._cli import main

if __name__ == "__main__":
    main()
