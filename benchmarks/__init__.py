"""Benchmarks of codex_telemetry side by side with the plain OpenTelemetry SDK.

Run ``python -m benchmarks`` (about 5 minutes) or ``python -m benchmarks --quick``
(about 1 minute) from the repository root. Each side of each figure runs in a fresh
process; the loopback collector runs in a process of its own. The table of medians
and ratios is printed, and the raw results are written to ``benchmarks/results/``.
"""
