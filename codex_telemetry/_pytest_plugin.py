"""pytest plugin of codex-telemetry: registers the fixtures of ``codex_telemetry.testing``."""
