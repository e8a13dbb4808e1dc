"""The users an `[[account]]` seeds: what `smsgw user add` and the panel refuse as no single mailbox
(a wildcard, an IP-address domain, a BATV-tagged address) was seeded from the config as a user that
no envelope sender matches, or that matches one day's mail. The config refuses them alike, in its
own wording (`[[account]] "acme" users: ...`), and `check-config` says so before a start would. A
one-label domain (`ops@ACME`), which `user add` refused later, is no refusal of the config: a block
naming a stored account changes nothing, and the start makes no new account with one.

`check-config`, `smsgw user add` and the daemon run as real processes on a real config file."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_config
from tests.conftest import STAFF, config_text, free_port
from tests.test_config_checks import EXIT_CONFIG, smsgw, write
from tests.test_process import start_daemon
from tests.test_relay_network_shared import logged

BAD = {
    "*@acme.example": "'*@acme.example' has a wildcard (*)",
    "prvs=0123abcdef=anna@acme.example": "'prvs=0123abcdef=anna@acme.example' carries a BATV tag",
    "anna@[192.0.2.1]": "'anna@[192.0.2.1]' names an IP address, not a mail domain",
}
ONE_LABEL = "'ops@ACME': its domain 'ACME' has no dot; a mail domain has at least two labels"


def seeding(tmp_path: Path, *users: str) -> str:
    text = config_text(tmp_path, smsc_port=free_port())
    listed = ", ".join(f'"{u}"' for u in users)
    return text.replace(f'users = ["{STAFF}"]', f"users = [{listed}]")


@pytest.mark.parametrize("user", list(BAD))
def test_a_user_that_is_no_single_mailbox_is_refused_as_user_add_refuses_it(
    tmp_path: Path, user: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(seeding(tmp_path, STAFF, user), source="config.toml", base_dir=tmp_path)
    assert f'[[account]] "acme" users: {BAD[user]}' in str(caught.value)
    # What the CLI says of the same address, for the same reason.
    path = write(tmp_path, config_text(tmp_path, smsc_port=free_port()))
    res = smsgw("--config", str(path), "user", "add", "--account", "acme", user)
    assert res.returncode != 0 and BAD[user] in res.stderr + res.stdout, (res.stdout, res.stderr)


def test_check_config_names_the_user(tmp_path: Path) -> None:
    path = write(tmp_path, seeding(tmp_path, "*@acme.example"))
    res = smsgw("--config", str(path), "check-config")
    assert res.returncode == EXIT_CONFIG, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert "[[account]] \"acme\" users: '*@acme.example' has a wildcard (*)" in res.stderr


async def test_a_one_label_domain_makes_no_account_at_the_start_which_goes_on(tmp_path: Path) -> None:
    # `user add` refused `ops@ACME` while the [[account]] block seeded it at the first start. The
    # config refusing it stopped the start of a site whose stored account the block named (where it
    # changes nothing): now the start makes no new account with it, and check-config says why.
    port = free_port()
    text = config_text(tmp_path, smsc_port=free_port(), smtp_port=port)
    path = write(tmp_path, text.replace(f'users = ["{STAFF}"]', 'users = ["demo@example", "ops@ACME"]'))
    res = smsgw("--config", str(path), "check-config")
    assert res.returncode == 0, (res.stdout, res.stderr)
    said = (
        "smsgw: warning: [[account]] \"acme\": the start does not create account 'acme': users:"
        " 'demo@example': its domain 'example' has no dot"
    )
    assert said in res.stderr and "write the whole domain" in res.stderr, res.stderr
    user_add = smsgw("--config", str(path), "user", "add", "--account", "acme", "ops@ACME")
    assert user_add.returncode != 0 and ONE_LABEL in user_add.stderr, user_add.stderr
    proc = await start_daemon(path, port)
    try:
        [entry] = await asyncio.to_thread(logged, tmp_path / "daemon.log", "account.not_seeded", 10.0)
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
    assert entry["account"] == "acme" and "write the whole domain" in str(entry["problem"]), entry
    with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn:
        assert conn.execute("SELECT name FROM accounts").fetchall() == []


def test_mailboxes_are_seeded_as_before(tmp_path: Path) -> None:
    cfg = parse_config(seeding(tmp_path, STAFF, "ops-team@mail.acme.example"), source="t", base_dir=tmp_path)
    assert cfg.account[0].users == [STAFF, "ops-team@mail.acme.example"]
