"""What an installed wheel carries: every file the packages read at run time that is not Python.

The panel's script (`static/forms.js`) worked from the source tree and would have been missing from
an installed wheel, since package-data named only the stylesheet: the pages still loaded, and what a
form kept over a login was silently lost. Checked against pyproject.toml's own patterns, not a build
(a wheel build costs seconds and needs no peer that the patterns lack).
"""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {".py", ".pyc", ".pyi"}


def test_every_data_file_of_the_packages_is_in_package_data() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    tops = [p.rstrip("*") for p in setuptools["packages"]["find"]["include"]]
    patterns: dict[str, list[str]] = setuptools["package-data"]
    missing = []
    for top in tops:
        for path in (ROOT / top).rglob("*"):
            if not path.is_file() or path.suffix in SKIPPED or "__pycache__" in path.parts:
                continue
            rel = path.relative_to(ROOT)
            covered = False
            for package, globs in patterns.items():
                base = Path(*package.split("."))
                if rel.is_relative_to(base):
                    inner = rel.relative_to(base).as_posix()
                    covered = covered or any(fnmatch(inner, g) for g in globs)
            if not covered:
                missing.append(rel.as_posix())
    assert not missing, f"not in [tool.setuptools.package-data], so not installed: {missing}"
