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
