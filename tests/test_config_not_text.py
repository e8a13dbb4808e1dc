"""A file given to --config that is no config text at all is named for what it is.

`smsgw --config var/smsgw.db check-config` (the database for the config) was told the file is not
UTF-8 and to convert it from Windows-1250 with iconv. The CLI in a subprocess, on a real SQLite file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.cli.common import EXIT_CONFIG
from tests.conftest import config_text, free_port
from tests.test_config_checks import smsgw


def _refused(path: Path) -> str:
    res = smsgw("--config", str(path), "check-config")
    assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, res.stderr
    assert "iconv -f cp1250" not in res.stderr and "Windows-1250" not in res.stderr, res.stderr
    return " ".join(res.stderr.split())


def test_the_database_given_for_the_config_is_told_it_is_no_config_file(tmp_path: Path) -> None:
    path = tmp_path / "smsgw.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE email (id INTEGER PRIMARY KEY, subject TEXT)")
        db.executemany("INSERT INTO email (subject) VALUES (?)", [("Faktura ż",)] * 50)
    db.close()
    said = _refused(path)
    assert f"{path} is an SQLite database, not a config file (--config names the config.toml)" in said, said
    empty = tmp_path / "empty.db"  # its bytes may all be ASCII: TOML then spoke of an invalid character
    sqlite3.connect(empty).execute("PRAGMA user_version = 1").connection.close()
    assert f"{empty} is an SQLite database, not a config file" in _refused(empty)


def test_a_binary_file_is_told_so_and_a_utf16_config_to_be_saved_as_utf8(tmp_path: Path) -> None:
    binary = tmp_path / "smsgw.tar.gz"
    binary.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(range(256)))
    said = _refused(binary)
    assert f"{binary} holds NUL bytes: a binary file, not a config file" in said, said
    utf16 = tmp_path / "config.toml"  # Notepad's "Unicode"
    utf16.write_bytes(config_text(tmp_path, smsc_port=free_port()).encode("utf-16"))
    said = _refused(utf16)
    assert f"{utf16} is UTF-16, not UTF-8: save it as UTF-8 (iconv -f utf-16 -t utf-8" in said, said
