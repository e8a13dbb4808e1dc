"""The first operator is made once per installation. Made again at any start that found none, the first
address of the config's first [[account]] (removed when its holder left, re-added for a new employee)
became operator over every account the moment the admin gave it a mail password. A real store file and
the daemon's own start function; the CLI's notes through the real command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gateway.adminrules import seed_accounts
from gateway.web.server import INITIAL_PASSWORD_FILE, first_operator
from tests.conftest import STAFF, config_text
from tests.test_planted_files import ACCOUNT, SMSGW, _fresh
from tests.test_process import ROOT

SEEDED = STAFF  # the first address of the config's first [[account]]


def test_a_re_added_first_address_is_not_made_operator_at_the_next_start(tmp_path: Path) -> None:
    cfg, store = _fresh(tmp_path)
    try:
        made = first_operator(store, cfg)
        assert made is not None and made[0] == SEEDED
        # Its holder leaves; the address goes to a new employee, a plain user; the daemon starts again.
        store.accounts.remove_user(SEEDED)
        (cfg.state_dir / INITIAL_PASSWORD_FILE).unlink(missing_ok=True)
        store.accounts.add_user(SEEDED, "acme")  # `smsgw user add`, as a plain user
        seed_accounts(store, cfg)  # the next start's seeding, then its first_operator
        assert store.accounts.find_user(SEEDED).role == "user"
        assert first_operator(store, cfg) is None
        assert store.accounts.find_user(SEEDED).role == "user"
        assert not (cfg.state_dir / INITIAL_PASSWORD_FILE).exists()
    finally:
        store.close()


def test_an_install_from_before_the_mark_that_has_an_operator_is_marked(tmp_path: Path) -> None:
    cfg, store = _fresh(tmp_path)
    try:
        store.accounts.add_user("op@example.com", "demo")
        store.accounts.set_user("op@example.com", role="operator", password_hash="x")
        assert first_operator(store, cfg) is None  # an operator exists: marked, nothing made
        store.accounts.remove_user("op@example.com")
        assert first_operator(store, cfg) is None
        assert store.accounts.find_user(SEEDED).role == "user"
    finally:
        store.close()


def cli(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SMSGW, "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        input=stdin,
        timeout=60,
    )


def test_the_cli_says_when_the_last_operator_goes_and_what_an_operators_password_opens(
    tmp_path: Path,
) -> None:
    cfg, store = _fresh(tmp_path)
    try:
        assert first_operator(store, cfg) is not None
        store.accounts.add_user("op2@example.com", "demo")
    finally:
        store.close()
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=1, extra=ACCOUNT))
    config.chmod(0o640)
    assert cfg.db_path == cfg.state_dir / "smsgw.db"
    res = cli(config, "user", "passwd", SEEDED, stdin="Correct-horse-battery-9\nCorrect-horse-battery-9\n")
    assert res.returncode == 0, res.stderr
    assert (
        f"note: {SEEDED} is operator of the web panel: this password also logs in there, over every account"
        in (res.stdout)
    )
    res = cli(config, "user", "set", SEEDED, "--role", "user")
    assert res.returncode == 0, res.stderr
    assert "note: no operator is left: nobody can use the panel's operator pages" in res.stdout, res.stdout
    assert cli(config, "user", "set", "op2@example.com", "--role", "operator").returncode == 0
    res = cli(config, "user", "remove", "op2@example.com")
    assert res.returncode == 0 and "no operator is left" in res.stdout, res.stdout + res.stderr
