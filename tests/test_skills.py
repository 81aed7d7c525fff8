"""Skill ids (events.md 4.5), URL credential stripping and the git repository lookup."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from codex_telemetry import normalize_path_for_skill_id, skill_id_for_local_skill
from codex_telemetry._skills import GitRepoLookup, RepoInfo, strip_url_userinfo

# --- the worked values of events.md 4.5 ------------------------------------------------------


def test_worked_value_personal_skill_id() -> None:
    assert (
        skill_id_for_local_skill(None, None, "/Users/abc/.codex/skills/doc/SKILL.md", "doc")
        == "037cfe53fd881d2ea36aec8302ccde76376a0f7a"
    )


def test_worked_value_repo_relative_path() -> None:
    assert (
        normalize_path_for_skill_id(
            "https://example.com/repo.git", "/repo/root", "/repo/root/.codex/skills/doc/SKILL.md"
        )
        == ".codex/skills/doc/SKILL.md"
    )


def test_repo_skill_id() -> None:
    # sha1("repo_https://example.com/repo.git_.codex/skills/doc/SKILL.md_doc")
    assert (
        skill_id_for_local_skill(
            "https://example.com/repo.git",
            "/repo/root",
            "/repo/root/.codex/skills/doc/SKILL.md",
            "doc",
        )
        == "e5e54e96f1513b6a4a97096fc574ac2c22d5dcb2"
    )


# --- normalize_path_for_skill_id ----------------------------------------------------------


@pytest.mark.parametrize(
    ("repo_url", "repo_root", "skill_path", "expected"),
    [
        # No URL: absolute, even inside the root.
        (None, "/repo/root", "/repo/root/s/SKILL.md", "/repo/root/s/SKILL.md"),
        # A URL without a root: absolute.
        ("https://x/r.git", None, "/repo/root/s/SKILL.md", "/repo/root/s/SKILL.md"),
        # Not under the root: absolute. A shared name prefix is not "under".
        ("https://x/r.git", "/repo/root", "/elsewhere/SKILL.md", "/elsewhere/SKILL.md"),
        ("https://x/r.git", "/repo/root", "/repo/rootx/SKILL.md", "/repo/rootx/SKILL.md"),
        # Backslashes become slashes.
        (None, None, "C:\\Users\\abc\\SKILL.md", "C:/Users/abc/SKILL.md"),
    ],
)
def test_normalize_path(
    repo_url: str | None, repo_root: str | None, skill_path: str, expected: str
) -> None:
    assert normalize_path_for_skill_id(repo_url, repo_root, skill_path) == expected


def test_normalize_resolves_symlinks_of_path_and_root(tmp_path: Path) -> None:
    real_root = tmp_path / "real"
    skill = real_root / "skills" / "doc" / "SKILL.md"
    skill.parent.mkdir(parents=True)
    skill.write_text("x")
    link_root = tmp_path / "link"
    link_root.symlink_to(real_root, target_is_directory=True)
    linked_skill = link_root / "skills" / "doc" / "SKILL.md"

    assert normalize_path_for_skill_id("u", str(link_root), str(linked_skill)) == (
        "skills/doc/SKILL.md"
    )
    assert normalize_path_for_skill_id(None, None, str(linked_skill)) == str(
        skill.resolve()
    ).replace("\\", "/")


def test_normalize_of_an_existing_relative_path_is_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "SKILL.md").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert normalize_path_for_skill_id(None, None, "SKILL.md") == str(
        (tmp_path / "SKILL.md").resolve()
    )


def test_normalize_keeps_a_missing_relative_path_raw() -> None:
    assert normalize_path_for_skill_id(None, None, "no/such/SKILL.md") == "no/such/SKILL.md"


def test_normalize_keeps_an_empty_path_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rust's fs::canonicalize("") fails, so the raw (empty) path is kept: not the cwd.
    monkeypatch.chdir(tmp_path)
    assert normalize_path_for_skill_id(None, None, "") == ""
    assert normalize_path_for_skill_id("u", str(tmp_path), "") == ""
    # sha1("personal__doc")
    assert (
        skill_id_for_local_skill(None, None, "", "doc")
        == hashlib.sha1(b"personal__doc").hexdigest()
    )


def test_skill_id_accepts_path_objects() -> None:
    assert (
        skill_id_for_local_skill(None, None, Path("/Users/abc/.codex/skills/doc/SKILL.md"), "doc")
        == "037cfe53fd881d2ea36aec8302ccde76376a0f7a"
    )


# --- strip_url_userinfo ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:tok@host/x.git", "https://host/x.git"),
        ("https://ghp_token@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("http://u:p@host:8080/r", "http://host:8080/r"),
        ("https://github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("https://host/path/with@sign", "https://host/path/with@sign"),
        ("ssh://git@github.com/org/repo.git", "ssh://git@github.com/org/repo.git"),
        ("ssh://git:secret@host:22/r.git", "ssh://git@host:22/r.git"),
        ("git+ssh://me:pw@host/r", "git+ssh://me@host/r"),
        ("ssh://:pw@host/r", "ssh://host/r"),
        # An unencoded "@" in a password: all of the user-info goes, up to the last "@".
        ("https://user:p@ss@host/x.git", "https://host/x.git"),
        ("https://tok@en@host/x@y.git?a=b@c", "https://host/x@y.git?a=b@c"),
        ("ssh://git:p@ss@host/r.git", "ssh://git@host/r.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("/srv/git/repo.git", "/srv/git/repo.git"),
        ("file:///srv/git/repo.git", "file:///srv/git/repo.git"),
        ("", ""),
    ],
)
def test_strip_url_userinfo(url: str, expected: str) -> None:
    assert strip_url_userinfo(url) == expected


# --- GitRepoLookup ---------------------------------------------------------------------------


def make_repo(root: Path, config: str | None) -> Path:
    """A repository at ``root`` with ``config`` as .git/config; returns a skill path in it."""
    git_dir = root / ".git"
    git_dir.mkdir(parents=True)
    if config is not None:
        (git_dir / "config").write_text(config)
    skill = root / ".codex" / "skills" / "doc" / "SKILL.md"
    skill.parent.mkdir(parents=True)
    skill.write_text("# doc\n")
    return skill


ORIGIN_WITH_TOKEN = (
    "[core]\n"
    "\trepositoryformatversion = 0\n"
    '[remote "upstream"]\n'
    "\turl = https://example.com/upstream.git\n"
    '[remote "origin"]\n'
    "\turl = https://alice:ghp_secret@github.com/acme/project.git\n"
    "\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
    '[branch "main"]\n'
    "\tremote = origin\n"
)


def test_lookup_finds_the_root_and_strips_credentials(tmp_path: Path) -> None:
    skill = make_repo(tmp_path / "project", ORIGIN_WITH_TOKEN)
    assert GitRepoLookup()(str(skill)) == RepoInfo(
        root=str(tmp_path / "project"), origin_url="https://github.com/acme/project.git"
    )


def test_lookup_outside_any_repository_is_none(tmp_path: Path) -> None:
    skill = tmp_path / "SKILL.md"
    skill.write_text("x")
    # tmp_path may itself sit inside a repository on a developer machine; look just there.
    lookup = GitRepoLookup()
    found = lookup(str(skill))
    assert found is None or not found.root.startswith(str(tmp_path))


def test_lookup_of_a_missing_path_walks_up_its_parents(tmp_path: Path) -> None:
    make_repo(tmp_path / "project", ORIGIN_WITH_TOKEN)
    info = GitRepoLookup()(str(tmp_path / "project" / "not" / "there" / "SKILL.md"))
    assert info == RepoInfo(str(tmp_path / "project"), "https://github.com/acme/project.git")


def test_repository_without_origin(tmp_path: Path) -> None:
    config = '[remote "upstream"]\n\turl = https://example.com/upstream.git\n'
    skill = make_repo(tmp_path / "project", config)
    assert GitRepoLookup()(str(skill)) == RepoInfo(str(tmp_path / "project"), None)


def test_repository_without_config_file(tmp_path: Path) -> None:
    skill = make_repo(tmp_path / "project", None)
    assert GitRepoLookup()(str(skill)) == RepoInfo(str(tmp_path / "project"), None)


def test_nearest_repository_wins(tmp_path: Path) -> None:
    make_repo(tmp_path / "outer", ORIGIN_WITH_TOKEN)
    inner = make_repo(tmp_path / "outer" / "vendor" / "inner", "[remote 'x']\n")
    assert GitRepoLookup()(str(inner)) == RepoInfo(
        str(tmp_path / "outer" / "vendor" / "inner"), None
    )


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ('[remote "origin"]\n  url = git@github.com:org/repo.git\n', "git@github.com:org/repo.git"),
        ('[remote "origin"]\nurl="https://host/quoted repo.git"\n', "https://host/quoted repo.git"),
        ('[remote "origin"]\n\tURL = https://host/r.git ; a comment\n', "https://host/r.git"),
        ('[remote "origin"]\n\turl = https://host/r.git # a comment\n', "https://host/r.git"),
        ('[Remote "origin"]\n\turl = https://host/r.git\n', "https://host/r.git"),
        ("[remote.origin]\n\turl = https://host/legacy.git\n", "https://host/legacy.git"),
        ('[remote "origin"] url = https://host/inline.git\n', "https://host/inline.git"),
        ('[remote "origin"]\n\turl = https://host/\\\nsplit.git\n', "https://host/split.git"),
        # The first url of the remote, as `git remote get-url origin` prints it.
        (
            '[remote "origin"]\n\turl = https://a/1.git\n\turl = https://a/2.git\n',
            "https://a/1.git",
        ),
        # Subsection names are case-sensitive: "Origin" is another remote.
        ('[remote "Origin"]\n\turl = https://host/r.git\n', None),
        ('# [remote "origin"]\n; url = https://host/r.git\n', None),
        ("\x00\xff garbage [[[\n=\n", None),
    ],
)
def test_config_parsing(tmp_path: Path, config: str, expected: str | None) -> None:
    skill = make_repo(tmp_path / "project", config)
    assert GitRepoLookup()(str(skill)) == RepoInfo(str(tmp_path / "project"), expected)


def test_config_include_is_followed(tmp_path: Path) -> None:
    skill = make_repo(tmp_path / "project", "[include]\n\tpath = ../extra.conf\n")
    (tmp_path / "project" / "extra.conf").write_text(
        '[remote "origin"]\n\turl = https://bot:pw@host/included.git\n'
    )
    assert GitRepoLookup()(str(skill)) == RepoInfo(
        str(tmp_path / "project"), "https://host/included.git"
    )


def test_config_include_cycle_terminates(tmp_path: Path) -> None:
    skill = make_repo(tmp_path / "project", "[include]\n\tpath = config\n")
    assert GitRepoLookup()(str(skill)) == RepoInfo(str(tmp_path / "project"), None)


def test_linked_worktree_reads_the_shared_config(tmp_path: Path) -> None:
    make_repo(tmp_path / "main", ORIGIN_WITH_TOKEN)
    worktree_git_dir = tmp_path / "main" / ".git" / "worktrees" / "feature"
    worktree_git_dir.mkdir(parents=True)
    (worktree_git_dir / "commondir").write_text("../..\n")
    worktree = tmp_path / "feature"
    worktree.mkdir()
    (worktree / ".git").write_text(f"gitdir: {worktree_git_dir}\n")
    skill = worktree / "skills" / "SKILL.md"
    skill.parent.mkdir()
    skill.write_text("x")
    assert GitRepoLookup()(str(skill)) == RepoInfo(
        str(worktree), "https://github.com/acme/project.git"
    )


def test_submodule_reads_its_own_config_through_a_relative_gitdir(tmp_path: Path) -> None:
    make_repo(tmp_path / "super", ORIGIN_WITH_TOKEN)
    module_git_dir = tmp_path / "super" / ".git" / "modules" / "lib"
    module_git_dir.mkdir(parents=True)
    (module_git_dir / "config").write_text('[remote "origin"]\n\turl = https://host/lib.git\n')
    submodule = tmp_path / "super" / "lib"
    submodule.mkdir()
    (submodule / ".git").write_text("gitdir: ../.git/modules/lib\n")
    skill = submodule / "SKILL.md"
    skill.write_text("x")
    assert GitRepoLookup()(str(skill)) == RepoInfo(str(submodule), "https://host/lib.git")


def test_unreadable_gitdir_file_means_no_origin(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / ".git").write_text("not a gitdir pointer\n")
    assert GitRepoLookup()(str(root / "SKILL.md")) == RepoInfo(str(root), None)


def test_origin_is_cached_per_root(tmp_path: Path) -> None:
    skill = make_repo(tmp_path / "project", ORIGIN_WITH_TOKEN)
    lookup = GitRepoLookup()
    first = lookup(str(skill))
    (tmp_path / "project" / ".git" / "config").write_text(
        '[remote "origin"]\n\turl = https://changed/r.git\n'
    )
    other_skill = tmp_path / "project" / "SKILL.md"
    assert lookup(str(other_skill)) == first


def test_cache_is_bounded(tmp_path: Path) -> None:
    lookup = GitRepoLookup(max_cached_roots=2)
    skills = [
        make_repo(tmp_path / name, f'[remote "origin"]\n\turl = https://h/{name}.git\n')
        for name in ("a", "b", "c")
    ]
    for skill in skills:
        lookup(str(skill))
    (tmp_path / "a" / ".git" / "config").write_text('[remote "origin"]\n\turl = https://h/a2.git\n')
    (tmp_path / "c" / ".git" / "config").write_text('[remote "origin"]\n\turl = https://h/c2.git\n')
    # "a" was evicted from the cache and is read again; "c" is still cached.
    assert lookup(str(skills[0])) == RepoInfo(str(tmp_path / "a"), "https://h/a2.git")
    assert lookup(str(skills[2])) == RepoInfo(str(tmp_path / "c"), "https://h/c.git")


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root reads everything")
def test_unreadable_config_means_no_origin(tmp_path: Path) -> None:
    skill = make_repo(tmp_path / "project", ORIGIN_WITH_TOKEN)
    config = tmp_path / "project" / ".git" / "config"
    config.chmod(0)
    try:
        assert GitRepoLookup()(str(skill)) == RepoInfo(str(tmp_path / "project"), None)
    finally:
        config.chmod(0o644)


def test_lookup_never_raises_on_odd_paths() -> None:
    lookup = GitRepoLookup()
    for path in ("", "\x00", "relative/only", "/"):
        info = lookup(path)
        assert info is None or isinstance(info, RepoInfo)


def test_skill_id_from_a_looked_up_repository(tmp_path: Path) -> None:
    skill = make_repo(tmp_path / "project", ORIGIN_WITH_TOKEN)
    info = GitRepoLookup()(str(skill))
    assert info is not None
    raw_id = "repo_https://github.com/acme/project.git_.codex/skills/doc/SKILL.md_doc"
    assert (
        skill_id_for_local_skill(info.origin_url, info.root, str(skill), "doc")
        == hashlib.sha1(raw_id.encode()).hexdigest()
    )


def test_the_root_of_a_skill_path_is_cached_for_max_age(tmp_path: Path) -> None:
    now = [0.0]
    lookup = GitRepoLookup(max_age=60.0, clock=lambda: now[0])
    skill = tmp_path / "outer" / "inner" / "SKILL.md"
    skill.parent.mkdir(parents=True)
    skill.write_text("x")
    make_repo(tmp_path / "outer", ORIGIN_WITH_TOKEN)
    assert lookup(str(skill)) == RepoInfo(
        str(tmp_path / "outer"), "https://github.com/acme/project.git"
    )
    make_repo(tmp_path / "outer" / "inner", '[remote "origin"]\n\turl = https://h/inner.git\n')
    now[0] = 59.0
    cached = lookup(str(skill))
    assert cached is not None
    assert cached.root == str(tmp_path / "outer")
    now[0] = 60.0  # expired: the walk up finds the new, nearer repository
    assert lookup(str(skill)) == RepoInfo(str(tmp_path / "outer" / "inner"), "https://h/inner.git")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("fifo", ["config", "included"])
def test_lookup_never_waits_on_a_pipe(tmp_path: Path, fifo: str) -> None:
    # A pipe where a config file should be would block the reading worker forever.
    config = '[include]\n\tpath = included\n[remote "origin"]\n\turl = https://h/r.git\n'
    skill = make_repo(tmp_path / "project", None if fifo == "config" else config)
    os.mkfifo(skill.parents[3] / ".git" / fifo)
    found: list[RepoInfo | None] = []
    worker = threading.Thread(target=lambda: found.append(GitRepoLookup()(str(skill))), daemon=True)
    worker.start()
    worker.join(timeout=5)
    if worker.is_alive():  # unblock the reader so that the thread ends
        with open(skill.parents[3] / ".git" / fifo, "w"):
            pass
        worker.join(timeout=5)
        pytest.fail("the lookup blocked on a named pipe")
    expected = None if fifo == "config" else "https://h/r.git"
    assert found == [RepoInfo(str(tmp_path / "project"), expected)]
