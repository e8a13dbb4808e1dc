"""README's upgrade notes name each release by its commit, and each named commit is that release.

There are no tags: an admin going back to 0.2.38 built "the commit before" 0.2.39's and got a build
that says 0.2.38 at 0.2.39's schema (72), which migrates the restored backup past what 0.2.38 opens.
The release is the commit that sets the version in pyproject.toml; README names them, checked here
against the repository's history (skipped in a copy without it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAMED = re.compile(r"(0\.\d+\.\d+) `([0-9a-f]{8})`")


def version_at(commit: str) -> str | None:
    res = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:pyproject.toml"], capture_output=True, text=True
    )
    found = re.search(r'^version = "([^"]+)"', res.stdout, re.M)
    return found[1] if res.returncode == 0 and found else None


def test_the_release_commits_readme_names_are_the_version_bumps() -> None:
    text = " ".join((ROOT / "README.md").read_text().split())
    start = text.find("To go back, build the previous version's release commit")
    assert start >= 0, "README names no release commits"
    named = NAMED.findall(text[start : start + 600])
    assert len(named) >= 3, named
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("no git history here to check the commits against")
    for version, commit in named:
        if version_at(commit) is None:
            pytest.skip(f"commit {commit} is not in this clone's history")
        assert version_at(commit) == version, (version, commit)
        assert version_at(f"{commit}~1") != version, f"{commit} is not where {version} was set"
