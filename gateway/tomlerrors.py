"""A config that is not valid TOML, said as the other config errors are: the place and what to do.

A key given twice in one table (`window = 5` twice in an [[smsc]], after a paste) was said only as
TOML's own `Cannot overwrite a value (at line 78, column 11)`: no key named, nor that it was given
twice. The key, its table as every message names it (`gateway.configbase.at`), and both lines are
read back from the text here; any other TOML error keeps TOML's own words.
"""

from __future__ import annotations

import re
import tomllib

from gateway.configbase import at, quoted

_WHERE = re.compile(r"\(at line (\d+), column \d+\)")
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'))*)\s*="""
)
_NAME = re.compile(r"""^\s*name\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def toml_error(text: str, exc: tomllib.TOMLDecodeError) -> str:
    """The words for `exc` after "<config>: not valid TOML: ": for a key or table given twice, which
    and where both are; else TOML's own message."""
    said = str(exc)
    where = _WHERE.search(said)
    if where is None:
        return said
    lines = text.splitlines()
    number = int(where.group(1))
    if not 0 < number <= len(lines):
        return said
    if said.startswith("Cannot overwrite a value") and (key := _KEY.match(lines[number - 1])):
        return _key_twice(lines, number, _bare(key.group(1))) or said
    if said.startswith("Cannot declare") and (header := _HEADER.match(lines[number - 1])):
        table = f"[{_bare(header.group(2))}]"
        first = next((n for n, line in _headers(lines, number - 1) if line == table), None)
        if first is not None:
            return (
                f"the table {table} is given twice, at line {first} and again at line {number}: put its keys"
                f" under one {table}"
            )
    return said


def _key_twice(lines: list[str], number: int, key: str) -> str | None:
    """`[[smsc]] "main" window is given twice, ...`, or None where the first line is not found."""
    start = next((n for n, _ in reversed(_headers(lines, number - 1))), 0)  # the table's header line
    first = next(
        (n for n in range(start + 1, number) if (m := _KEY.match(lines[n - 1])) and _bare(m.group(1)) == key),
        None,
    )
    if first is None:
        return None
    table = _table_at(lines, start)
    return (
        f"{at(table, key)} is given twice, at line {first} and again at line {number}: keep one of them"
        " (the TOML format takes a key once in a table)"
    )


def _headers(lines: list[str], before: int) -> list[tuple[int, str]]:
    """(line number, `[table]` as written without its array brackets) of each table header above
    line `before` + 1."""
    found = []
    for n, line in enumerate(lines[:before], start=1):
        if header := _HEADER.match(line):
            found.append((n, f"[{_bare(header.group(2))}]"))
    return found


def _table_at(lines: list[str], start: int) -> str:
    """The table whose header is line `start` (0: above every table), as messages name it: an
    [[smsc]] or [[account]] by its `name`, as the other errors name a link or an account."""
    if start == 0:
        return ""
    header = _HEADER.match(lines[start - 1])
    assert header is not None  # (found as one by `_headers`)
    table = _bare(header.group(2))
    if header.group(1) == "[":
        return f"[{table}]"
    for line in lines[start:]:
        if _HEADER.match(line):
            break
        if name := _NAME.match(line):
            return f"[[{table}]] {quoted(name.group(1) if name.group(1) is not None else name.group(2))}"
    return f"[[{table}]] (line {start})"


def _bare(key: str) -> str:
    """A dotted key as messages write it: its parts without the blanks around the dots."""
    return ".".join(part.strip() for part in re.split(r"\s*\.\s*(?=(?:[^\"']|\"[^\"]*\"|'[^']*')*$)", key))
