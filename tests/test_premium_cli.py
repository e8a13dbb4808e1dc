"""`smsgw premium` on the command line: add (and what it refuses), the reply list taking a new
destination, verify with and without resend, and stats in PLN. Split from test_premium.py by subject
(it was over 400 lines); `run_cli` stays there, as other test modules import it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.premium import handlers
from tests.test_premium import BASE, CLIENT, World, run_cli


def test_premium_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli.common import open_store

    add = ["premium", "add", "KPkpk", "--account", "acme", "--email", CLIENT]
    assert run_cli(tmp_path, "account", "add", "acme") == 0
    assert run_cli(tmp_path, *add, "--number", "7355", "--reply-acl", "bot@acme.pl") == 0
    out = capsys.readouterr().out
    assert "premium service KPKPK added" in out and "confirmation was mailed to konkurs@acme.pl" in out
    # Taken whatever the case; malformed; a number that is not configured; an unknown account.
    assert run_cli(tmp_path, "premium", "add", "KPKPK", "--account", "acme", "--email", CLIENT) == 1
    assert "taken" in capsys.readouterr().err
    assert run_cli(tmp_path, "premium", "add", "KP12", "--account", "acme", "--email", CLIENT) == 2
    assert "KP followed by three letters or digits" in capsys.readouterr().err
    assert run_cli(tmp_path, *add[:2], "KP124", *add[3:], "--number", "7455") == 2
    assert "not a configured premium number" in capsys.readouterr().err
    assert run_cli(tmp_path, "premium", "add", "KP125", "--account", "nope", "--email", CLIENT) == 1
    capsys.readouterr()
    assert run_cli(tmp_path, "premium", "list") == 0
    out = capsys.readouterr().out
    assert "KPKPK  account acme  → konkurs@acme.pl  numbers 7355  reply ACL bot@acme.pl  UNCONFIRMED" in out
    assert run_cli(tmp_path, "premium", "verify", "kpkpk", "--resend") == 0
    store = open_store(_cfg_at(tmp_path))  # type: ignore[arg-type]
    (first, second) = store.db.conn.execute(
        "SELECT created_at, expires_at FROM premium_verifications ORDER BY created_at"
    ).fetchall()
    assert first[1] <= second[0] and second[1] - second[0] == 7 * 86400  # the old token stopped working
    kinds = [r[0] for r in store.db.conn.execute("SELECT kind FROM outbox")]
    assert kinds == ["premium-verify", "premium-verify"]
    assert run_cli(tmp_path, "premium", "set", "KPKPK", "--email", "new@acme.pl", "--all-numbers") == 0
    assert "confirmation was mailed to new@acme.pl" in capsys.readouterr().out
    assert run_cli(tmp_path, "premium", "remove", "KPKPK") == 0
    assert run_cli(tmp_path, "premium", "list") == 0
    assert "no premium services" in capsys.readouterr().out
    assert run_cli(tmp_path, *add) == 0  # a removed service's password is free again


def test_a_new_destination_takes_the_old_ones_place_on_the_reply_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `add` puts the destination on the reply list; `set --email` left the old address there, so
    # every answer from the new destination was refused ("not on the service's reply list").
    assert run_cli(tmp_path, "account", "add", "acme") == 0
    assert run_cli(tmp_path, "premium", "add", "KP123", "--account", "acme", "--email", "old@acme.pl") == 0
    add_bot = ["premium", "add", "KP124", "--account", "acme", "--email", "old@acme.pl", "--reply-acl"]
    assert run_cli(tmp_path, *add_bot, "bot@acme.pl") == 0
    assert run_cli(tmp_path, "premium", "set", "KP123", "--email", "New@acme.pl") == 0
    assert "reply list: New@acme.pl" in capsys.readouterr().out
    assert run_cli(tmp_path, "premium", "set", "KP124", "--email", "new@acme.pl") == 0  # a list of its own
    assert "reply list: bot@acme.pl" in capsys.readouterr().out
    assert run_cli(tmp_path, "premium", "list") == 0
    out = capsys.readouterr().out
    assert "KP123  account acme  → New@acme.pl  numbers" in out and "reply ACL New@acme.pl" in out
    assert "reply ACL bot@acme.pl" in out


def test_verify_without_resend_says_whether_the_address_confirmed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli.common import open_store

    assert run_cli(tmp_path, "account", "add", "acme") == 0
    assert run_cli(tmp_path, "premium", "add", "KP123", "--account", "acme", "--email", CLIENT) == 0
    capsys.readouterr()
    # Only a look: the token mailed to the client keeps working (a resend would replace it).
    assert run_cli(tmp_path, "premium", "verify", "kp123") == 0
    out = capsys.readouterr().out
    assert f"premium service KP123: {CLIENT} has not confirmed; 0 SMS kept until it does" in out
    assert "`smsgw premium verify KP123 --resend` mails a new confirmation" in out
    store = open_store(_cfg_at(tmp_path))  # type: ignore[arg-type]
    live = "SELECT COUNT(*) FROM premium_verifications WHERE expires_at > ?"
    assert store.db.conn.execute(live, (store.clock(),)).fetchone()[0] == 1
    assert [r[0] for r in store.db.conn.execute("SELECT kind FROM outbox")] == ["premium-verify"]
    service = handlers.repo(store).active_service("KP123")
    assert service is not None
    handlers.repo(store).update_service(service.id, verified_at=store.clock())
    assert run_cli(tmp_path, "premium", "verify", "KP123") == 0
    assert f"premium service KP123: {CLIENT} confirmed 20" in capsys.readouterr().out
    assert run_cli(tmp_path, "premium", "verify", "KP123", "--resend") == 1  # nothing to confirm
    assert run_cli(tmp_path, "premium", "verify", "KP999") == 1
    assert "no premium service KP999" in capsys.readouterr().err


def _cfg_at(tmp_path: Path) -> object:
    return parse_config(BASE.replace("[gateway]", f'[gateway]\nstate_dir = "{tmp_path}"'), source="t")


async def test_premium_stats_in_pln(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    w = World(tmp_path)
    w.service()
    w.now = datetime(2027, 3, 31, 23, 30, tzinfo=ZoneInfo("Europe/Warsaw")).timestamp()
    await w.mo("KP123 A")
    await w.mo("KP123 A", to="7955", source="+48601123457")
    await w.mo("KP999 A", source="+48601123458")
    w.now += 3600  # April in Warsaw: not counted in March
    await w.mo("KP123 B")
    w.store.close()
    conf = tmp_path / "config.toml"
    conf.write_text(BASE.replace("[gateway]", f'[gateway]\nstate_dir = "{tmp_path}"'))
    (tmp_path / "db.sqlite").rename(tmp_path / "smsgw.db")
    from gateway.cli.main import main

    assert main(["-c", str(conf), "premium", "stats", "--month", "2027-03"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("20")]  # log lines
    assert lines[2].split() == ["KP123", "7355", "1", "1", "3.00", "1.10"]
    assert lines[3].split() == ["KP123", "7955", "1", "1", "9.00", "3.40"]
    # No client took it: no commission is owed for it (as the monthly summary says).
    assert lines[4].split() == ["(none)", "7355", "1", "1", "3.00", "0.00"]
    assert lines[5].split() == ["total", "3", "3", "15.00", "4.50"]
