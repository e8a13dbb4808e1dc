"""pyproject.toml tells the truth: what the installed gateway imports is declared, and what is declared
at run time is imported by it, so that a production install gets exactly what the code needs.

Module names are mapped to distribution names through the installed metadata
(importlib.metadata.packages_distributions), so the test runs where the package and its extras are
installed, as the suite always does.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "smsc", "acl", "billing_reports")  # what [tool.setuptools.packages.find] ships
FIRST_PARTY = {*PACKAGES, "tests", "bench"}
# Declared runtime dependencies that the package code may leave unimported: Starlette parses
# forms with python-multipart, imported by Starlette itself.
RUNTIME_UNUSED_ALLOWED: set[str] = {"python-multipart"}
# Imported by tests but declared neither at run time nor in the test extra.
TEST_OPTIONAL: set[str] = set()


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(requirements: list[str]) -> set[str]:
    """Distribution names of PEP 508 requirement strings (versions and markers dropped)."""
    found = set()
    for req in requirements:
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
        assert m, f"cannot read requirement {req!r}"
        found.add(_norm(m.group(1)))
    return found


def _project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _third_party_imports(*dirs: str) -> dict[str, set[str]]:
    """Top-level third-party module -> files importing it, function-level imports included."""
    found: dict[str, set[str]] = {}
    for d in dirs:
        for path in (ROOT / d).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@cache
def _installed() -> dict[str, list[str]]:
    return packages_distributions()


def _distributions(module: str) -> set[str]:
    dists = {_norm(d) for d in _installed().get(module, [])}
    assert dists, f"module {module!r} is imported but no installed distribution provides it"
    return dists


def test_every_module_the_package_imports_is_a_declared_dependency() -> None:
    declared = _names(_project()["dependencies"])
    missing = {
        module: sorted(files)
        for module, files in _third_party_imports(*PACKAGES).items()
        if not _distributions(module) & declared
    }
    assert not missing, f"imported by the package but not in [project].dependencies: {missing}"


def test_every_declared_runtime_dependency_is_imported_by_the_package() -> None:
    # A dependency only the tests import belongs in the test extra, not in every production install.
    used = set().union(*(_distributions(m) for m in _third_party_imports(*PACKAGES)))
    unused = _names(_project()["dependencies"]) - used - RUNTIME_UNUSED_ALLOWED
    assert not unused, f"in [project].dependencies but not imported by {PACKAGES}: {sorted(unused)}"


def test_every_module_the_tests_import_is_declared() -> None:
    project = _project()
    declared = _names(project["dependencies"]) | _names(project["optional-dependencies"]["test"])
    missing = {
        module: sorted(files)
        for module, files in _third_party_imports("tests").items()
        if not _distributions(module) & (declared | TEST_OPTIONAL)
    }
    assert not missing, f"imported by tests but declared neither at run time nor in the test extra: {missing}"


def test_the_readme_says_why_each_declared_package_is_there() -> None:
    # Each dependency earns its place with a line in the README's table: orjson had none.
    project = _project()
    declared = _names(project["dependencies"]) | _names(project["optional-dependencies"]["test"])
    readme = (ROOT / "README.md").read_text(encoding="utf-8").split("## Dependencies", 1)[1]
    rows = [line.split("|")[1] for line in readme.splitlines() if line.startswith("| ") and "---" not in line]
    named = {_norm(n.strip()) for row in rows for n in re.sub(r"\(.*?\)", "", row).split(",")}
    assert declared - named == set(), (
        f"declared but not in the README's Dependencies table: {declared - named}"
    )
