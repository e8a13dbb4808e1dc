"""A config that is not valid TOML, said as the other config errors are: the place and what to do.

A key given twice in one table (`window = 5` twice in an [[smsc]], after a paste) was said only as
TOML's own `Cannot overwrite a value (at line 78, column 11)`: no key named, nor that it was given
twice. The key, its table as every message names it (`gateway.configbase.at`), and both lines are
read back from the text here; any other TOML error keeps TOML's own words. Lines are counted as TOML
counts them, at "\n" only. A line inside a multi-line string that looks like a key is read as one:
the first line named can then be in the string (TOML's own line is still right). A header is read
only on a line that starts outside every open array, inline table and multi-line string: `["48"]`,
the last line of a multi-line array of arrays, is a value, not a table.
"""

from __future__ import annotations

import re
import tomllib

from gateway.configbase import at, quoted

_WHERE = re.compile(r"\(at line (\d+), column \d+\)")
_QUOTED = r"""(?:"(?:[^"\\]|\\.)*"|'[^']*')"""  # a basic string may hold `\"`
_PART = rf"(?:[A-Za-z0-9_\-]+|{_QUOTED})"
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
# A header is alone on its line: `  ["48", "main"],` in an array of arrays is a value, not a table.
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(rf"^\s*({_DOTTED})\s*=")
_NAME = re.compile(r"""^\s*name\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def toml_error(text: str, exc: tomllib.TOMLDecodeError) -> str:
    """The words for `exc` after "<config>: not valid TOML: ": for a key or table given twice, which
    and where both are; else TOML's own message."""
    said = str(exc)
    where = _WHERE.search(said)
    if where is None:
        return said
    lines = text.split("\n")  # as tomllib counts: U+2028 or NEL (splitlines() splits there) ends no line
    number = int(where.group(1))
    if not 0 < number <= len(lines):
        return said
    if said.startswith("Cannot overwrite a value") and (key := _KEY.match(lines[number - 1])):
        return _key_twice(lines, number, _bare(key.group(1))) or said
    if said.startswith("Cannot declare") and (header := _HEADER.match(lines[number - 1])):
        return _table_twice(lines, number, _bare(header.group(2))) or said
    header = _HEADER.match(lines[number - 1])
    if said.startswith("Cannot overwrite a value") and header is not None and header.group(1) == "[[":
        return _array_after_table(lines, number, _bare(header.group(2))) or said
    return said


def _array_after_table(lines: list[str], number: int, name: str) -> str | None:
    """`[[x]]` at line `number` after a `[x]`: the first link typed `[smsc]`, the second `[[smsc]]`
    (TOML's own words were `Cannot overwrite a value`). None where no such `[x]` is found."""
    first = next((n for n, table, array in _headers(lines, number - 1) if not array and table == name), None)
    if first is None:
        return None
    return (
        f"[{name}] at line {first} and [[{name}]] at line {number}: {name} is an array of tables; write"
        f" [[{name}]] at line {first} too"
    )


def _table_twice(lines: list[str], number: int, name: str) -> str | None:
    """`[x]` at line `number` declared before: in the same [[array]] element, or as that array
    itself (a second link typed `[smsc]` after `[[smsc]]`, where merging it into the first would be
    the wrong advice). None where the first line is not found."""
    above = _headers(lines, number - 1)
    arrays = [n for n, table, array in above if array and table == name]
    if arrays:
        return (
            f"[{name}] at line {number}: {name} is an array of tables ([[{name}]] at line {arrays[-1]});"
            f" write [[{name}]] for another one"
        )
    # A sub-table of an [[array]] element is declared anew in each element: only the element's own count.
    start = max((n for n, table, array in above if array and name.startswith(f"{table}.")), default=0)
    first = next((n for n, table, array in above if n > start and not array and table == name), None)
    if first is None:
        return None
    return (
        f"the table [{name}] is given twice, at line {first} and again at line {number}: put its keys"
        f" under one [{name}]"
    )


def _key_twice(lines: list[str], number: int, key: str) -> str | None:
    """`[[smsc]] "main" window is given twice, ...`, or None where the first line is not found."""
    start = next((n for n, _, _ in reversed(_headers(lines, number - 1))), 0)  # the table's header line
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


def _headers(lines: list[str], before: int) -> list[tuple[int, str, bool]]:
    """(line number, table name as messages write it, whether it is an `[[array]]` header) of each
    table header above line `before` + 1."""
    found = []
    for n, (line, top) in enumerate(zip(lines[:before], _tops(lines), strict=False), start=1):
        if top and (header := _HEADER.match(line)):
            found.append((n, _bare(header.group(2)), header.group(1) == "[["))
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
    for line, top in zip(lines[start:], _tops(lines)[start:], strict=True):
        if top and _HEADER.match(line):
            break
        if name := _NAME.match(line):
            return f"[[{table}]] {quoted(name.group(1) if name.group(1) is not None else name.group(2))}"
    return f"[[{table}]] (line {start})"


def _tops(lines: list[str]) -> list[bool]:
    """Whether each line starts outside every open array, inline table and multi-line string: only
    such a line can be a header. Brackets are counted outside strings and comments."""
    tops, depth, within = [], 0, ""  # within: the quote of the multi-line string the line is in
    for line in lines:
        tops.append(depth == 0 and not within)
        i, quote = 0, within
        while i < len(line):
            if quote:
                if quote[0] == '"' and line[i] == "\\":
                    i += 2
                elif line.startswith(quote, i):
                    i += len(quote)
                    while len(quote) == 3 and line.startswith(quote[0], i):  # `""""`: a quote, then the end
                        i += 1
                    quote = ""
                else:
                    i += 1
                continue
            if line[i] == "#":
                break
            if line[i] in "\"'":
                quote = line[i] * 3 if line.startswith(line[i] * 3, i) else line[i]
                i += len(quote)
                continue
            depth += (line[i] in "[{") - (line[i] in "]}")
            depth = max(depth, 0)
            i += 1
        within = quote if len(quote) == 3 else ""  # a one-line string ends at its line's end
    return tops


def _bare(key: str) -> str:
    """A dotted key as messages write it: its parts without the blanks around the dots."""
    return ".".join(part.strip() for part in re.split(rf"\s*\.\s*(?=(?:[^\"']|{_QUOTED})*$)", key))
