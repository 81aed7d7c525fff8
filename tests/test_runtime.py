"""Runtime metadata: Rust names for OS and architecture, os_info's rendering of versions."""

from __future__ import annotations

import platform
from collections.abc import Iterator

import pytest

from codex_telemetry import _runtime
from codex_telemetry._runtime import (
    current_runtime,
    os_info_version,
    os_release_version_id,
    rust_arch_name,
    rust_os_name,
)
from codex_telemetry.facts import RuntimeMetadata


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    current_runtime.cache_clear()
    yield
    current_runtime.cache_clear()


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("Darwin", "macos"),
        ("Linux", "linux"),
        ("Windows", "windows"),
        ("FreeBSD", "freebsd"),
        ("OpenBSD", "openbsd"),
        ("", ""),
    ],
)
def test_rust_os_name(system: str, expected: str) -> None:
    assert rust_os_name(system) == expected


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ("x86_64", "x86_64"),
        ("AMD64", "x86_64"),
        ("amd64", "x86_64"),
        ("arm64", "aarch64"),
        ("ARM64", "aarch64"),
        ("aarch64", "aarch64"),
        ("riscv64", "riscv64"),
        ("PPC64LE", "ppc64le"),
        ("i686", "i686"),
    ],
)
def test_rust_arch_name(machine: str, expected: str) -> None:
    assert rust_arch_name(machine) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12", "12.0.0"),  # Debian 12: what the real app-server reports
        ("22.04", "22.4.0"),  # Ubuntu: leading zeros are numbers
        ("15.3.1", "15.3.1"),  # macOS
        ("15.3", "15.3.0"),
        ("10.0.22631", "10.0.22631"),  # Windows 11
        ("1.", "1.0.0"),
        ("1.2.3.", "1.2.3"),
        ("  1.2.3.  ", "1.2.3"),
        ("+7", "7.0.0"),
        ("1.2.3.4", "1.2.3.4"),  # four parts: not semantic, kept
        ("1..2", "1..2"),
        ("9.2-RELEASE", "9.2-RELEASE"),
        ("rolling", "rolling"),
        ("18446744073709551616", "18446744073709551616"),  # beyond u64: kept
        ("", "Unknown"),
        (None, "Unknown"),
    ],
)
def test_os_info_version(raw: str | None, expected: str) -> None:
    assert os_info_version(raw) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\n', "12"),
        ("NAME=Ubuntu\nVERSION_ID=22.04\nVERSION_CODENAME=jammy\n", "22.04"),
        ("VERSION_ID='3.19.1'\n", "3.19.1"),
        ('  VERSION_ID = "8.1"  \n', None),  # a key with spaces is not VERSION_ID
        ('REDHAT_SUPPORT_PRODUCT_VERSION_ID="9"\nVERSION_ID="9.2"\n', "9.2"),
        ("NAME=Arch Linux\nBUILD_ID=rolling\n", None),
        ("", None),
    ],
)
def test_os_release_version_id(text: str, expected: str | None) -> None:
    assert os_release_version_id(text) == expected


def test_os_release_to_reported_version() -> None:
    text = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\n'
    assert os_info_version(os_release_version_id(text)) == "12.0.0"
    assert os_info_version(os_release_version_id("ID=arch\n")) == "Unknown"


def test_current_runtime_is_cached_per_version() -> None:
    first = current_runtime("1.2.3")
    assert current_runtime("1.2.3") is first
    other = current_runtime("2.0.0")
    assert other is not first
    assert other.codex_rs_version == "2.0.0"
    assert (other.runtime_os, other.runtime_os_version, other.runtime_arch) == (
        first.runtime_os,
        first.runtime_os_version,
        first.runtime_arch,
    )


def test_current_runtime_on_this_machine() -> None:
    runtime = current_runtime("0.0.1")
    assert runtime.runtime_os == rust_os_name(platform.system())
    assert runtime.runtime_arch == rust_arch_name(platform.machine())
    assert runtime.runtime_os_version


def test_current_runtime_on_macos(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    monkeypatch.setattr(platform, "mac_ver", lambda: ("15.3", ("", "", ""), "arm64"))
    assert current_runtime("0.1.0") == RuntimeMetadata("0.1.0", "macos", "15.3.0", "aarch64")


def test_current_runtime_on_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(_runtime, "_linux_version_id", lambda: "22.04")
    assert current_runtime("0.1.0") == RuntimeMetadata("0.1.0", "linux", "22.4.0", "x86_64")


def test_current_runtime_on_other_unix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "system", lambda: "FreeBSD")
    monkeypatch.setattr(platform, "machine", lambda: "amd64")
    monkeypatch.setattr(platform, "release", lambda: "14.1-RELEASE")
    assert current_runtime("0.1.0") == RuntimeMetadata("0.1.0", "freebsd", "14.1-RELEASE", "x86_64")


def test_current_runtime_survives_a_failing_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> str:
        raise OSError("no /etc")

    monkeypatch.setattr(platform, "system", lambda: "Linux")
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(_runtime, "_linux_version_id", broken)
    assert current_runtime("0.1.0") == RuntimeMetadata("0.1.0", "linux", "Unknown", "aarch64")
