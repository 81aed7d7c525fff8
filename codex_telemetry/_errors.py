"""The SDK's configuration error, apart from the settings model so that raising or
catching it does not import pydantic-settings."""

from __future__ import annotations

__all__ = ["ConfigurationError"]


class ConfigurationError(ValueError):
    """A setting has a bad value; raised by ``init()``, never at run time.

    The message names each offending setting and the environment variable it is read
    from; :attr:`problems` holds one line per setting.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("invalid codex_telemetry settings: " + "; ".join(problems))
