"""A key given twice in the config is named, with both lines, as the other config errors name a place.

`window = 5` pasted twice into an [[smsc]] was refused as TOML's `Cannot overwrite a value (at line
78, column 11)` alone: neither the key nor that it was given twice. check-config runs as a process
on a real file.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import config_text, free_port
from tests.test_process import smsgw


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_a_key_given_twice_in_a_link_is_named_with_both_lines(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=free_port())
    text = text.replace("window = 10\n", "window = 10\nmax_per_second = 5\nwindow = 5\n", 1)
    first = text.splitlines().index("window = 10") + 1
    res = smsgw(written(tmp_path, text), "check-config")
    assert res.returncode == 3, res.stderr
    assert (
        f'not valid TOML: [[smsc]] "main" window is given twice, at line {first} and again at line'
        f" {first + 2}: keep one of them"
    ) in res.stderr, res.stderr


def test_a_table_given_twice_is_named_with_both_lines(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=free_port()) + "\n[smtp]\nmax_connections = 50\n"
    first = text.splitlines().index("[smtp]") + 1
    again = len(text.splitlines()) - 1
    res = smsgw(written(tmp_path, text), "check-config")
    assert res.returncode == 3, res.stderr
    assert f"the table [smtp] is given twice, at line {first} and again at line {again}" in res.stderr


def test_a_second_link_typed_as_a_table_is_told_to_be_an_array_element(tmp_path: Path) -> None:
    # `[smsc]` after `[[smsc]]` was told "put its keys under one [smsc]": merged into the first link.
    text = config_text(tmp_path, smsc_port=free_port()) + '\n[smsc]\nname = "backup"\nport = 2776\n'
    lines = text.split("\n")
    first, again = lines.index("[[smsc]]") + 1, lines.index("[smsc]") + 1
    res = smsgw(written(tmp_path, text), "check-config")
    assert res.returncode == 3, res.stderr
    assert (
        f"[smsc] at line {again}: smsc is an array of tables ([[smsc]] at line {first}); write [[smsc]]"
        " for another one"
    ) in res.stderr, res.stderr
    assert "put its keys under one" not in res.stderr


def test_a_sub_table_twice_in_a_later_link_names_that_links_first_one(tmp_path: Path) -> None:
    # Each [[smsc]] declares its own [smsc.tls]: the first link's one is legal, not the first line.
    second = '[[smsc]]\nname = "backup"\n[smsc.tls]\nca_file = "a.pem"\n[smsc.tls]\nca_file = "b.pem"\n'
    text = config_text(tmp_path, smsc_port=free_port(), smsc_extra='[smsc.tls]\nca_file = "c.pem"') + second
    lines = text.split("\n")
    tls = [n for n, line in enumerate(lines, start=1) if line == "[smsc.tls]"]
    assert len(tls) == 3
    res = smsgw(written(tmp_path, text), "check-config")
    assert res.returncode == 3, res.stderr
    assert f"the table [smsc.tls] is given twice, at line {tls[1]} and again at line {tls[2]}" in res.stderr


def test_lines_are_counted_at_line_feeds_only_as_toml_counts_them(tmp_path: Path) -> None:
    # A U+2028 in a comment is no line end to TOML; counted as one, the lines named were off by one
    # and the message fell back to TOML's own words or named the wrong line.
    text = config_text(tmp_path, smsc_port=free_port())
    text = text.replace("[smtp]\n", "[smtp]\n# x below\u2028see the README\nx = 2\nx = 3\n", 1)
    first = text.split("\n").index("x = 2") + 1
    res = smsgw(written(tmp_path, text), "check-config")
    assert res.returncode == 3, res.stderr
    assert f"[smtp] x is given twice, at line {first} and again at line {first + 1}" in res.stderr, res.stderr


def test_a_first_link_typed_as_a_table_is_told_to_be_an_array_element_too(tmp_path: Path) -> None:
    # `[smsc]` for the first link and `[[smsc]]` for the second kept TOML's `Cannot overwrite a value`.
    text = config_text(tmp_path, smsc_port=free_port()).replace("[[smsc]]\n", "[smsc]\n", 1)
    text += '\n[[smsc]]\nname = "backup"\nport = 2776\n'
    lines = text.split("\n")
    first, again = lines.index("[smsc]") + 1, lines.index("[[smsc]]") + 1
    res = smsgw(written(tmp_path, text), "check-config")
    assert res.returncode == 3, res.stderr
    assert (
        f"[smsc] at line {first} and [[smsc]] at line {again}: smsc is an array of tables; write [[smsc]]"
        f" at line {first} too"
    ) in res.stderr, res.stderr


def test_a_line_of_an_array_of_arrays_is_no_table_header(tmp_path: Path) -> None:
    # `  ["48", "main"],` was read as the header of a table `["48", "main"]`, and the key given twice
    # after it named in that table, or not found at all when its first line was above the array.
    text = config_text(tmp_path, smsc_port=free_port())
    text = text.replace("[smtp]\n", '[smtp]\nwindow = 1\npairs = [\n  ["48", "main"]\n]\nwindow = 2\n', 1)
    lines = text.split("\n")
    first, again = lines.index("window = 1") + 1, lines.index("window = 2") + 1
    res = smsgw(written(tmp_path, text), "check-config")
    assert res.returncode == 3, res.stderr
    assert f"[smtp] window is given twice, at line {first} and again at line {again}" in res.stderr, (
        res.stderr
    )


def test_the_last_line_of_an_array_of_arrays_is_no_table_header(tmp_path: Path) -> None:
    # `  ["48"]`, a one-element array closing the list, was still read as the header of a table `["48"]`.
    text = config_text(tmp_path, smsc_port=free_port())
    text = text.replace("[smtp]\n", '[smtp]\npairs = [\n  ["48"]\n]\nwindow = 1\nwindow = 2\n', 1)
    first = text.split("\n").index("window = 1") + 1
    res = smsgw(written(tmp_path, text), "check-config")
    assert res.returncode == 3, res.stderr
    assert f"[smtp] window is given twice, at line {first} and again at line {first + 1}" in res.stderr, (
        res.stderr
    )


def test_a_table_whose_quoted_name_holds_an_escaped_quote_is_named(tmp_path: Path) -> None:
    # `["b\"c"]` was no header: the key given twice in it was named in the table above, from its line.
    text = config_text(tmp_path, smsc_port=free_port()) + '\n["b\\"c"]\nx = 2\nx = 3\n'
    first = text.split("\n").index("x = 2") + 1
    res = smsgw(written(tmp_path, text), "check-config")
    assert res.returncode == 3, res.stderr
    assert f'["b\\"c"] x is given twice, at line {first} and again at line {first + 1}' in res.stderr, (
        res.stderr
    )
