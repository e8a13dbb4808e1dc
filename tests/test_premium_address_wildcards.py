"""A premium service's addresses are compared whole: `premium add` and `premium set` refuse a wildcard
in `--email` and `--reply-acl`, as `user add` does, naming it. `--reply-acl '*@example.com'` was
stored, and no client's answer ever matched it.

The CLI in its own process over a real SQLite file.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.billing_world import cli, prepare
from tests.conftest import free_port


def _premium(tmp_path: Path) -> tuple[Path, Path]:
    config, cfg = prepare(tmp_path, free_port(), last_billed=None, traffic={"acme": []})
    config.write_text(config.read_text() + '\n[premium]\nnumbers = ["7355"]\n')
    return config, cfg.db_path


def _stored(db: Path) -> list[tuple[str, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        services = conn.execute("SELECT password, email FROM premium_services").fetchall()
        return services + conn.execute("SELECT address FROM premium_reply_acl").fetchall()


@pytest.mark.parametrize(
    ("option", "address", "wild"),
    [
        ("--reply-acl", "*@example.com", "*"),
        ("--reply-acl", "konkurs?@example.com", "?"),
        ("--email", "*@example.com", "*"),
        ("--email", "konkurs%*@example.com", "% *"),
    ],
)
def test_premium_add_and_set_refuse_a_wildcard(tmp_path: Path, option: str, address: str, wild: str) -> None:
    config, db = _premium(tmp_path)
    refused = (
        f"{option} {address!r} has a wildcard ({wild}): no address matches a pattern here, each is"
        " compared whole; give each mailbox's own address"
    )
    given = ["--email", "konkurs@example.com"] if option == "--reply-acl" else []
    res = cli(config, "premium", "add", "KP123", "--account", "acme", *given, option, address)
    assert res.returncode == 2 and refused in res.stderr, res.stderr
    assert _stored(db) == []
    res = cli(config, "premium", "add", "KP123", "--account", "acme", "--email", "konkurs@example.com")
    assert res.returncode == 0, res.stderr
    res = cli(config, "premium", "set", "KP123", option, address)
    assert res.returncode == 2 and refused in res.stderr, res.stderr
    assert sorted(_stored(db)) == [("KP123", "konkurs@example.com"), ("konkurs@example.com",)]
