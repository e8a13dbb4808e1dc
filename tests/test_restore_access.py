"""`smsgw restore` and the security changes an admin made after the backup was taken.

Restored as the backup had them, a network removed since relayed again, a user removed since sent
again, a suspended account sent again, a demoted operator had the whole panel, a password changed
after a leak was the leaked one again, and the audit rows of those changes were gone; the restore
said nothing of it. Each is now named with the command that makes it again, and the audit rows kept.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from tests.conftest import config_text
from tests.test_process import smsgw


def _ok(config: Path, *args: str, stdin: str | None = None) -> str:
    res = smsgw(config, *args, stdin=stdin)
    assert res.returncode == 0, (args, res.stdout, res.stderr)
    return res.stdout


def _fresh(tmp_path: Path) -> tuple[Path, Path]:
    """A gateway's config with an empty state directory, and where its backup goes."""
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()
    return config, tmp_path / "backup.db"


def test_a_restore_names_each_access_change_it_reverts_and_keeps_the_audit_rows(tmp_path: Path) -> None:
    config, backup = _fresh(tmp_path)
    _ok(config, "account", "add", "ACME", "--relay-network", "192.0.2.0/24")
    _ok(config, "account", "add", "DEMO", "--relay-network", "127.0.0.0/8")
    for user, account in (
        ("anna@acme.example", "ACME"),
        ("demo@example.com", "DEMO"),
        ("bob@acme.example", "ACME"),
    ):
        _ok(config, "user", "add", user, "--account", account)
    _ok(config, "user", "set", "bob@acme.example", "--role", "operator")
    _ok(config, "user", "passwd", "anna@acme.example", stdin="Leaked-Password-1\n")
    _ok(config, "backup", str(backup))
    # Since the backup: the demo relay closed, a user removed, roles changed, a leaked password changed.
    _ok(config, "account", "set", "DEMO", "--remove-network", "127.0.0.0/8")
    _ok(config, "account", "set", "ACME", "--add-network", "198.51.100.0/24")
    _ok(config, "user", "remove", "demo@example.com")
    _ok(config, "account", "suspend", "DEMO", "--reason", "walkthrough account closed")
    _ok(config, "user", "set", "anna@acme.example", "--role", "operator")
    _ok(config, "user", "set", "bob@acme.example", "--role", "user")
    _ok(config, "user", "passwd", "anna@acme.example", stdin="New-Password-after-leak-2\n")
    _ok(config, "user", "add", "carol@acme.example", "--account", "ACME")
    (changes,) = _rows(tmp_path / "state" / "smsgw.db", "SELECT COUNT(*) FROM audit")[0]

    out = _ok(config, "restore", str(backup))

    assert "8 access settings changed since the backup are the backup's again" in out, out
    expected = [
        "account DEMO was suspended since the backup and is not now:"
        " `smsgw account suspend DEMO --reason 'walkthrough account closed'`",
        "account DEMO: network 127.0.0.0/8 was removed since the backup and relays again:"
        " `smsgw account set DEMO --remove-network 127.0.0.0/8`",
        "user demo@example.com was removed since the backup and may send again:"
        " `smsgw user remove demo@example.com`",
        "user bob@acme.example: role user since the backup, operator now:"
        " `smsgw user set bob@acme.example --role user`",
        "password of anna@acme.example changed since the backup, the old one is back: set it again"
        " (`smsgw user passwd anna@acme.example`)",
        "account ACME: network 198.51.100.0/24 added since the backup is not there:"
        " `smsgw account set ACME --add-network 198.51.100.0/24`",
        "user carol@acme.example added since the backup is not there:"
        " `smsgw user add carol@acme.example --account ACME`, `smsgw user passwd carol@acme.example`",
        "user anna@acme.example: role operator since the backup, user now:"
        " `smsgw user set anna@acme.example --role operator`",
    ]
    lines = [line.strip() for line in out.splitlines()]
    for line in expected:
        assert line in lines, (line, out)
    # The changes' audit rows are kept, and the restore's row follows them.
    db = tmp_path / "state" / "smsgw.db"
    assert _rows(db, "SELECT COUNT(*) FROM audit WHERE action != 'database.restore'") == [(changes,)]
    assert _rows(db, "SELECT action FROM audit ORDER BY id DESC LIMIT 2") == [
        ("database.restore",),
        ("user.add",),
    ]
    # Each command named does what it says (the first: the relay closed again).
    _ok(config, "account", "set", "DEMO", "--remove-network", "127.0.0.0/8")
    assert "127.0.0.0/8" not in _ok(config, "account", "show", "DEMO")


def test_a_restore_of_a_backup_with_nothing_changed_since_names_nothing(tmp_path: Path) -> None:
    config, backup = _fresh(tmp_path)
    _ok(config, "account", "add", "ACME", "--relay-network", "192.0.2.0/24")
    _ok(config, "user", "add", "anna@acme.example", "--account", "ACME")
    _ok(config, "backup", str(backup))
    out = _ok(config, "restore", str(backup))
    assert "access settings" not in out and "audit rows" not in out, out


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


def test_a_restore_names_the_limits_countries_and_hours_changed_since_and_a_user_moved(
    tmp_path: Path,
) -> None:
    """Limits, countries, quiet hours, bulk, overflow and transliteration decide whether, where to, when
    and at what cost a mail goes: each set since is named, as a user moved to another account since."""
    config, backup = _fresh(tmp_path)
    _ok(config, "account", "add", "ACME")
    _ok(config, "account", "add", "RIVAL")
    _ok(config, "account", "set", "ACME", "--daily-limit", "300")
    _ok(config, "user", "add", "bob@acme.example", "--account", "ACME")
    _ok(config, "backup", str(backup))
    _ok(
        config,
        "account",
        "set",
        "ACME",
        "--countries",
        "PL",
        "--monthly-limit",
        "5000",
        "--daily-limit",
        "none",
    )
    _ok(
        config,
        "account",
        "set",
        "ACME",
        "--quiet-hours",
        "22:00-07:00",
        "--bulk",
        "on",
        "--overflow",
        "reject",
    )
    _ok(config, "user", "set", "bob@acme.example", "--monthly-limit", "100")
    # No command moves a user: a row moved (by hand, or a later panel) keeps its id and creation time.
    with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn, conn:
        conn.execute("UPDATE users SET account_id = (SELECT id FROM accounts WHERE name = 'RIVAL')")

    out = _ok(config, "restore", str(backup))

    lines = [line.strip() for line in out.splitlines()]
    for line in (
        "account ACME: monthly-limit 5000 since the backup, none now:"
        " `smsgw account set ACME --monthly-limit 5000`",
        "account ACME: daily-limit none since the backup, 300 now:"
        " `smsgw account set ACME --daily-limit none`",
        "account ACME: countries PL since the backup, any now: `smsgw account set ACME --countries PL`",
        "account ACME: overflow reject since the backup, truncate now:"
        " `smsgw account set ACME --overflow reject`",
        "account ACME: bulk on since the backup, off now: `smsgw account set ACME --bulk on`",
        "account ACME: quiet-hours 22:00-07:00 since the backup, none now:"
        " `smsgw account set ACME --quiet-hours 22:00-07:00`",
        "user bob@acme.example: monthly-limit 100 since the backup, none now:"
        " `smsgw user set bob@acme.example --monthly-limit 100`",
        "user bob@acme.example moved to account RIVAL since the backup and sends on ACME's bill again:"
        " `smsgw user remove bob@acme.example`, `smsgw user add bob@acme.example --account RIVAL`,"
        " `smsgw user passwd bob@acme.example`, `smsgw user set bob@acme.example --monthly-limit 100"
        " --daily-limit none`",
    ):
        assert line in lines, (line, out)
    assert "8 access settings changed since the backup" in out, out
    # The stricter ones since come first: the daily limit the backup has is the stricter one.
    assert lines.index(
        "account ACME: daily-limit none since the backup, 300 now:"
        " `smsgw account set ACME --daily-limit none`"
    ) > max(i for i, line in enumerate(lines) if "moved to account" in line)
    # The commands named do what they say.
    _ok(config, "account", "set", "ACME", "--countries", "PL", "--monthly-limit", "5000")
    assert "5000" in _ok(config, "account", "show", "ACME")
