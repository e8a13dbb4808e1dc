"""The README's module map names modules that exist: a module renamed or removed without its row
sent a contributor looking for a file that is not there. A row names a module by its path, or by
its name alone within the package its row (or the path before it in the row) names."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway/", "smsc/", "acl/", "billing_reports/")


def map_rows() -> list[str]:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index("### Module map")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
    return [line for line in lines[start:end] if line.startswith("| `")]


def named_modules(row: str) -> list[tuple[str, str]]:
    """Each `.py` (or `.js`) name in a row, with the directory it is read in: the last package or
    module path given before it in the row, else the row's first cell's."""
    found: list[tuple[str, str]] = []
    here = ""
    for token in re.findall(r"`([\w./+-]+)`", row):
        if token.startswith(PACKAGES):
            here = token if token.endswith("/") else token.rsplit("/", 1)[0] + "/"
            if token.endswith("/"):
                continue
        if token.endswith((".py", ".js")):
            found.append((here, token))
    return found


def exists(here: str, token: str) -> bool:
    if token.startswith((*PACKAGES, "tests/")):
        return (ROOT / token).is_file()
    # A bare name: in the directory the row speaks of, or one below it (`static/forms.js`).
    return (ROOT / here / token).is_file() or any((ROOT / here).glob(f"*/{token}"))


def test_the_module_map_has_rows() -> None:
    assert len(map_rows()) > 30


def test_every_module_the_map_names_exists() -> None:
    missing = [
        f"{token} (in {here or 'no package'})"
        for row in map_rows()
        for here, token in named_modules(row)
        if not exists(here, token)
    ]
    assert missing == []


def test_the_modules_a_contributor_looks_for_first_are_named() -> None:
    text = "\n".join(map_rows())
    for module in (
        "migrations_since_61.py",
        "startcheck.py",
        "startundo.py",
        "linkprotocol.py",
        "linkmoves.py",
        "deliveries.py",
        "gsmshifts.py",
        "sendernotes.py",
        "lowport.py",
        "serviceunit.py",
    ):
        assert f"`{module}`" in text or f"/{module}`" in text, module
