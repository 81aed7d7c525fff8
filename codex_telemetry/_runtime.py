"""The current process's runtime metadata, named as the Rust app-server names it.

The backend aggregates on the names the Rust standard library and the ``os_info`` crate
produce, so Python's own names are translated here: ``Darwin`` → ``macos``, ``AMD64`` →
``x86_64``, and an OS version is rendered the way ``os_info`` renders it (Debian's
``VERSION_ID="12"`` → ``12.0.0``). The translations are pure functions over literal inputs;
only :func:`current_runtime` looks at the machine, once per reported version.
"""

from __future__ import annotations

import functools
import platform
import re
import sys
from pathlib import Path

from codex_telemetry._internal_errors import handle_internal_errors
from codex_telemetry.facts import RuntimeMetadata

__all__ = [
    "current_runtime",
    "os_info_version",
    "os_release_version_id",
    "rust_arch_name",
    "rust_os_name",
]

_RUST_OS_NAMES = {"darwin": "macos", "linux": "linux", "windows": "windows"}
_RUST_ARCH_NAMES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}
# Rust's u64 parser: ASCII digits with an optional leading '+'.
_RUST_U64 = re.compile(r"\+?[0-9]+")
_U64_MAX = 2**64 - 1
_OS_RELEASE_FILES = ("/etc/os-release", "/usr/lib/os-release")


def rust_os_name(system: str) -> str:
    """``std::env::consts::OS`` for a ``platform.system()`` value."""
    lowered = system.lower()
    return _RUST_OS_NAMES.get(lowered, lowered)


def rust_arch_name(machine: str) -> str:
    """``std::env::consts::ARCH`` for a ``platform.machine()`` value.

    ``AMD64``/``amd64`` become ``x86_64`` and ``arm64`` becomes ``aarch64``; any other
    name is reported lower-case as it is.
    """
    lowered = machine.lower()
    return _RUST_ARCH_NAMES.get(lowered, lowered)


def _parse_u64(text: str) -> int | None:
    if _RUST_U64.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= _U64_MAX else None


def os_info_version(raw: str | None) -> str:
    """Render an OS version string as ``os_info``'s ``Version`` displays it.

    No or an empty version is ``"Unknown"``. A string of one to three dot-separated
    unsigned integers (one trailing dot allowed, surrounding whitespace ignored) is a
    semantic version printed as ``major.minor.patch`` with missing parts ``0``:
    ``"12"`` → ``"12.0.0"``, ``"22.04"`` → ``"22.4.0"``. Anything else is kept as is.
    """
    if not raw:
        return "Unknown"
    parts = raw.strip().split(".")
    if parts[-1] == "":  # Rust's split_terminator drops one empty trailing piece
        parts.pop()
    if not 1 <= len(parts) <= 3:
        return raw
    numbers = [_parse_u64(part) for part in parts]
    if any(number is None for number in numbers):
        return raw
    major, minor, patch = [*numbers, 0, 0][:3]
    return f"{major}.{minor}.{patch}"


def os_release_version_id(text: str) -> str | None:
    """The ``VERSION_ID`` of an ``os-release`` file's text, unquoted; None when absent."""
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key == "VERSION_ID":
            return value.strip().strip("\"'").strip()
    return None


def _linux_version_id() -> str | None:
    for name in _OS_RELEASE_FILES:
        try:
            text = Path(name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        return os_release_version_id(text)
    return None


def _raw_os_version(os_name: str) -> str | None:
    if os_name == "macos":
        return platform.mac_ver()[0]
    if os_name == "linux":
        return _linux_version_id()
    if os_name == "windows" and sys.platform == "win32":
        version = sys.getwindowsversion()
        return f"{version.major}.{version.minor}.{version.build}"
    return platform.release()


@functools.lru_cache(maxsize=16)
def current_runtime(codex_rs_version: str) -> RuntimeMetadata:
    """This process's runtime metadata, reported under ``codex_rs_version``.

    Computed once per version string: the same object is returned on every call, so that
    events built from it share it. Nothing here raises; an OS version that cannot be read
    is ``"Unknown"`` (a probe that raises is reported as an internal error).

    Differences from ``os_info``: on Linux the version comes from ``VERSION_ID`` of
    ``/etc/os-release`` (``/usr/lib/os-release`` as a fall-back) whatever the distribution,
    without running ``lsb_release``; on other Unix systems it is ``platform.release()``.
    """
    os_name = rust_os_name(platform.system())
    raw_version = None
    # A broken platform probe must not stop telemetry.
    with handle_internal_errors("runtime_probe", "reading the OS version (reported as Unknown)"):
        raw_version = _raw_os_version(os_name)
    return RuntimeMetadata(
        codex_rs_version=codex_rs_version,
        runtime_os=os_name,
        runtime_os_version=os_info_version(raw_version),
        runtime_arch=rust_arch_name(platform.machine()),
    )
