"""Skill ids and the git lookup behind them (events.md 4.5).

A skill's id is the SHA-1 of where it lives: its repository's ``origin`` URL and its path
inside the repository, or its absolute path for a personal skill. Finding the repository
is the only I/O of the reducer, so it sits behind the :class:`RepoLookup` protocol; the
default :class:`GitRepoLookup` reads ``.git`` and the git config file directly (no
subprocess, so it cannot stall the worker) and caches what it found per repository.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Generic, Protocol, TypeVar

__all__ = [
    "GitRepoLookup",
    "RepoInfo",
    "RepoLookup",
    "normalize_path_for_skill_id",
    "skill_id_for_local_skill",
    "strip_url_userinfo",
]


@dataclass(frozen=True, slots=True)
class RepoInfo:
    """The git repository holding a skill: its root directory and ``origin`` URL.

    ``origin_url`` is None when the repository has no ``origin`` remote, and is already
    stripped of user-info (see :func:`strip_url_userinfo`).
    """

    root: str
    origin_url: str | None


class RepoLookup(Protocol):
    """Finds the git repository holding a skill file; None when it is in none.

    Called on the reducer's worker: it must not raise and must not block for long.
    """

    def __call__(self, skill_path: str) -> RepoInfo | None: ...


_T = TypeVar("_T")


class _RecentPaths(Generic[_T]):
    """What was found for a path, kept for ``max_age`` seconds, the ``max_paths`` used
    last (a skill is invoked again and again, and each look costs ``stat`` calls)."""

    def __init__(self, max_paths: int, max_age: float, clock: Callable[[], float]) -> None:
        self._max_paths = max(1, max_paths)
        self._max_age = max_age
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, _T]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str, find: Callable[[str], _T]) -> _T:
        """The value kept for ``path``, or ``find(path)``'s, then kept."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(path)
            if entry is not None and now < entry[0]:
                self._entries.move_to_end(path)
                return entry[1]
        value = find(path)
        with self._lock:
            self._entries[path] = (now + self._max_age, value)
            self._entries.move_to_end(path)
            if len(self._entries) > self._max_paths:
                self._entries.popitem(last=False)
        return value


def _resolve(path: str) -> str:
    # Rust's fs::canonicalize fails on a missing path, and the caller then keeps it raw.
    try:
        return os.path.realpath(path, strict=True)
    except (OSError, ValueError):
        return path


# Canonical paths, remembered like the repository lookup's roots.
_canonical_paths: _RecentPaths[str] = _RecentPaths(256, 60.0, time.monotonic)


def _canonical(path: str) -> str:
    # An empty path is missing too (realpath would make it the working directory).
    if not path:
        return path
    return _canonical_paths.get(path, _resolve)


def _relative_to(path: str, root: str) -> str | None:
    """``path`` relative to ``root``, compared by path components; None if not under it."""
    path_parts = PurePath(path).parts
    root_parts = PurePath(root).parts
    if path_parts[: len(root_parts)] != root_parts:
        return None
    return "/".join(path_parts[len(root_parts) :])


def normalize_path_for_skill_id(
    repo_url: str | None,
    repo_root: str | os.PathLike[str] | None,
    skill_path: str | os.PathLike[str],
) -> str:
    """The path part of a skill id.

    The skill path is made canonical (symlinks resolved; the raw path if that fails; a
    path's canonical form is remembered for up to a minute, like the repository lookup's
    roots).
    With both a repository URL and a root, and the path under the (canonical) root, it is
    made relative to the root; otherwise it stays absolute. Backslashes become ``/``.
    """
    resolved = _canonical(os.fspath(skill_path))
    if repo_url is not None and repo_root is not None:
        relative = _relative_to(resolved, _canonical(os.fspath(repo_root)))
        if relative is not None:
            return relative.replace("\\", "/")
    return resolved.replace("\\", "/")


def skill_id_for_local_skill(
    repo_url: str | None,
    repo_root: str | os.PathLike[str] | None,
    skill_path: str | os.PathLike[str],
    skill_name: str,
) -> str:
    """The ``skill_id`` of a local skill: lower-case hex SHA-1 of ``{prefix}_{path}_{name}``.

    ``prefix`` is ``repo_{repo_url}`` with a repository URL, else ``personal``; ``path`` is
    :func:`normalize_path_for_skill_id`.
    """
    path = normalize_path_for_skill_id(repo_url, repo_root, skill_path)
    prefix = f"repo_{repo_url}" if repo_url is not None else "personal"
    raw_id = f"{prefix}_{path}_{skill_name}"
    return hashlib.sha1(raw_id.encode("utf-8", "surrogatepass")).hexdigest()


# scheme://[userinfo@]host... : the user-info of a URL with a scheme. It runs to the last
# "@" of the authority, so that a password holding an unencoded "@" goes entirely.
_URL_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#]*)@")
_SSH_SCHEMES = frozenset({"ssh://", "git+ssh://", "ssh+git://"})


def strip_url_userinfo(url: str) -> str:
    """Remove credentials from a remote URL before it is used or sent.

    - A URL with a scheme loses its whole user-info: ``https://user:tok@host/x.git`` →
      ``https://host/x.git``. The user name goes too, because a token is often given as
      the user name alone (``https://ghp_xxx@github.com/...``).
    - Except over SSH (``ssh://``, ``git+ssh://``), where only a password is removed: the
      user name is the SSH login (``ssh://git@host/x.git`` stays as it is).
    - An scp-style address (``git@github.com:org/repo.git``) is kept as is: its ``git@``
      is likewise the SSH login, public, and how the backend already sees such remotes.
    """
    match = _URL_USERINFO.match(url)
    if match is None:
        return url
    scheme = match.group("scheme")
    if scheme.lower() in _SSH_SCHEMES:
        user = match.group("userinfo").partition(":")[0]
        return f"{scheme}{user}@{url[match.end() :]}" if user else f"{scheme}{url[match.end() :]}"
    return scheme + url[match.end() :]


# --- git -------------------------------------------------------------------------------

_MAX_INCLUDE_DEPTH = 5
_MAX_CONFIG_BYTES = 1 << 20


def _find_repo_root(path: Path) -> Path | None:
    """The first of ``path`` and its parents holding a ``.git`` entry (directory or file)."""
    # String operations, not pathlib: this runs for every skill invocation, and building
    # a Path per parent cost ten times the stat calls themselves.
    directory = os.fspath(path)
    while True:
        if os.path.exists(os.path.join(directory, ".git")):
            return Path(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _git_dir(root: Path) -> Path | None:
    """The git directory of a repository root: ``.git``, or where a ``.git`` file points."""
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    text = _read_text(dot_git)
    if text is None:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "gitdir" and value.strip():
            return root / value.strip()  # an absolute value replaces root
    return None


def _config_file(git_dir: Path) -> Path:
    # A linked worktree's git dir names the shared one in ``commondir``; a submodule's has none.
    common = _read_text(git_dir / "commondir")
    if common is not None and common.strip():
        return git_dir / common.strip() / "config"
    return git_dir / "config"


# Opening a named pipe for reading waits for a writer; without blocking, it returns at once.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def _read_text(path: Path) -> str | None:
    """The start of a regular file; None for anything else (a pipe or a device would stall
    the worker)."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(_MAX_CONFIG_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="replace")


_SECTION = re.compile(r'^\[\s*([A-Za-z0-9.\-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]')


def _config_value(raw: str) -> str:
    """A git config value: quotes removed, escapes resolved, trailing comment dropped."""
    out: list[str] = []
    quoted = False
    index = 0
    pending_space = ""
    while index < len(raw):
        char = raw[index]
        if char == "\\" and index + 1 < len(raw):
            out.append(pending_space)
            pending_space = ""
            escaped = raw[index + 1]
            out.append({"n": "\n", "t": "\t", "b": "\b"}.get(escaped, escaped))
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "#;":
            break
        elif not quoted and char.isspace():
            pending_space += char
        else:
            out.append(pending_space)
            pending_space = ""
            out.append(char)
        index += 1
    return "".join(out).strip()


def _origin_url_in_config(path: Path, depth: int = 0) -> str | None:
    """The first ``remote.origin.url`` of a git config file, following ``include.path``."""
    text = _read_text(path)
    if text is None:
        return None
    section: tuple[str, str | None] = ("", None)
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        index += 1
        # A value continued on the next line ends with an unescaped backslash.
        while line.endswith("\\") and not line.endswith("\\\\") and index < len(lines):
            line = line[:-1] + lines[index].strip()
            index += 1
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            match = _SECTION.match(line)
            if match is None:
                section = ("", None)
                continue
            name, subsection = match.group(1), match.group(2)
            if subsection is None and "." in name:  # legacy [remote.origin]
                name, _, subsection = name.partition(".")
                subsection = subsection.lower()
            elif subsection is not None:
                subsection = re.sub(r"\\(.)", r"\1", subsection)
            section = (name.lower(), subsection)
            line = line[match.end() :].strip()
            if not line:
                continue
        key, sep, value = line.partition("=")
        key = key.strip().lower()
        if section == ("remote", "origin") and key == "url" and sep:
            return _config_value(value)
        if section == ("include", None) and key == "path" and sep and depth < _MAX_INCLUDE_DEPTH:
            included = Path(os.path.expanduser(_config_value(value)))
            found = _origin_url_in_config(path.parent / included, depth + 1)
            if found is not None:
                return found
    return None


class GitRepoLookup:
    """The default :class:`RepoLookup`: reads the repository from the file system.

    Walks up from the skill path to the first directory holding ``.git`` (a directory, or
    a ``gitdir:`` file for worktrees and submodules), then reads ``remote.origin.url``
    from the repository's config file (a linked worktree's shared one; ``include.path``
    followed). No ``git`` process is run, so a lookup cannot stall: the cost is a few
    ``stat`` calls and, once per repository root, reading one small file. The origin per
    root is kept in a bounded LRU cache; so is the root found for a skill path, for
    ``max_age`` seconds (a skill is invoked again and again, and each walk up costs a
    ``stat`` per parent directory). Any failure means "no repository" or "no origin".

    Unlike ``git remote get-url origin``, this does not apply ``url.<base>.insteadOf``
    rewriting, conditional includes, or an origin defined only in the user's global
    config. User-info is stripped from the URL (:func:`strip_url_userinfo`).
    """

    def __init__(
        self,
        *,
        max_cached_roots: int = 256,
        max_age: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_cached_roots = max(1, max_cached_roots)
        self._origin_by_root: OrderedDict[Path, str | None] = OrderedDict()
        self._root_by_path: _RecentPaths[Path | None] = _RecentPaths(
            max_cached_roots, max_age, clock
        )

    def __call__(self, skill_path: str) -> RepoInfo | None:
        try:
            root = self._root(os.path.abspath(skill_path))
            if root is None:
                return None
            return RepoInfo(root=str(root), origin_url=self._origin_url(root))
        except (OSError, ValueError):
            return None

    def _root(self, path: str) -> Path | None:
        return self._root_by_path.get(path, lambda found: _find_repo_root(Path(found)))

    def _origin_url(self, root: Path) -> str | None:
        cache = self._origin_by_root
        if root in cache:
            cache.move_to_end(root)
            return cache[root]
        git_dir = _git_dir(root)
        url = _origin_url_in_config(_config_file(git_dir)) if git_dir is not None else None
        origin = strip_url_userinfo(url) if url else None
        cache[root] = origin
        if len(cache) > self._max_cached_roots:
            cache.popitem(last=False)
        return origin
