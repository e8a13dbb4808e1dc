"""`smsgw restore` of another gateway's database over one that holds data is refused unless `--force`.

A copy of a second gateway's database given as the backup was put in place without a word (exit 0,
"nothing carried ... it is not the same database as the backup's"): the next start had lost the
company and its users, and sent the other gateway's queued SMS from this one. A fresh install, a
missing database, and an old backup of the very database (its mails purged since) are restored as
before. And with no systemd unit installed, restore's hints named `systemctl`, which only answers
"Unit smsgw.service not loaded".
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.sudoline import UNITS
from tests.conftest import config_text, running_gateway
from tests.test_account_show import CLI

no_unit = pytest.mark.skipif(any(u.exists() for u in UNITS), reason="an smsgw unit is installed here")


def gateways(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[CLI, CLI]:
    """Two installations, each with its config and state directory."""
    clis = []
    for name in ("ours", "theirs"):
        (tmp_path / name / "state").mkdir(parents=True)
        path = tmp_path / name / "config.toml"
        path.write_text(config_text(tmp_path / name, smsc_port=2775))
        clis.append(CLI(path, capsys))
    return clis[0], clis[1]


def a_mail(db: Path, text: str, received_at: float) -> None:
    """A mail accepted (what `smsgw send` through the daemon leaves, its SMS aside)."""
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(
            "INSERT INTO emails (mail_from, text, received_at) VALUES ('anna@kowalski.example', ?, ?)",
            (text, received_at),
        )
        conn.commit()


def state_files(state: Path) -> set[str]:
    return {p.name for p in state.iterdir() if not p.name.endswith(("-wal", "-shm", ".wal-in-use"))}


@no_unit
def test_another_gateways_database_is_refused_over_one_with_data_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ours, theirs = gateways(tmp_path, capsys)
    ours.ok("account", "add", "Kowalski")
    ours.ok("user", "add", "anna@kowalski.example", "--account", "Kowalski")
    db = tmp_path / "ours" / "state" / "smsgw.db"
    a_mail(db, "Ours", 1_764_000_000.0)  # 2025-11-24
    theirs.ok("account", "add", "Nowak")
    (bk := tmp_path / "bk").mkdir()
    foreign = bk / "foreign.db"
    theirs.ok("backup", str(foreign))
    before = state_files(db.parent) | {"smsgw.pid"}

    code, out, err = ours("restore", str(foreign))
    assert code == 1, out  # it was restored over, exit 0
    assert f"{foreign} is not a backup of {db}, which holds data" in err, err
    assert (
        "smsgw.db: accounts Kowalski (1 user), 1 mail received 2025-11-24 to 2025-11-24 UTC"
        " (the newest id 1)." in err
    ), err
    assert "foreign.db: accounts Nowak (0 users), no mails. Restored, the backup's accounts" in err, err
    assert "Nothing was changed; to replace this database with it all the same" in err, err
    assert f"`smsgw restore --force {foreign}`" in err, err
    assert state_files(db.parent) == before
    assert any("Kowalski" in line for line in ours.ok("account", "list"))

    # An old backup of this very database, its newest mail purged since (retention), is its own.
    own = bk / "own.db"
    ours.ok("backup", str(own))
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("DELETE FROM emails")
        conn.commit()
    a_mail(db, "Later", 1_764_100_000.0)
    ours.ok("restore", str(own))

    out = ours.ok("restore", "--force", str(foreign))
    assert any(
        line.startswith("nothing carried from the replaced database: it is not the same") for line in out
    )
    assert not any("systemctl" in line for line in out), out  # no unit here: started by hand
    assert any("start the daemon (`smsgw run`, as it was started before)" in line for line in out), out
    listed = ours.ok("account", "list")
    assert any("Nowak" in line for line in listed) and not any("Kowalski" in line for line in listed)
    assert len(list(db.parent.glob("smsgw.db.before-restore-*[0-9Z]"))) == 2  # both kept


async def test_a_fresh_or_missing_database_is_replaced_without_asking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ours, theirs = gateways(tmp_path, capsys)
    theirs.ok("account", "add", "Nowak")
    foreign = tmp_path / "foreign.db"
    theirs.ok("backup", str(foreign))
    db = tmp_path / "ours" / "state" / "smsgw.db"
    code, _out, err = ours("restore", str(foreign))  # no database at all yet
    assert code == 0, err
    for own in (False, True):
        for path in db.parent.glob("smsgw.db*"):
            path.unlink()  # with its marker: a new install
        # The first start of a new install: the config's [[account]] seeded, nothing else.
        async with running_gateway(load_config(ours.path)):
            pass
        with closing(sqlite3.connect(db)) as conn:
            assert conn.execute("SELECT name FROM accounts").fetchall() == [("acme",)]
            assert conn.execute("SELECT COUNT(*) FROM users").fetchone() == (1,)
        if not own:
            ours.ok("restore", str(foreign))
            assert any("Nowak" in line for line in ours.ok("account", "list"))
            continue
        ours.ok("account", "add", "Kowalski")  # one account of its own: data to lose
        code, _out, err = ours("restore", str(foreign))
        assert code == 1 and "smsgw.db: accounts acme, Kowalski (1 user), no mails." in err, err


@no_unit
def test_restore_beside_a_daemon_started_by_hand_says_how_to_stop_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ours, _theirs = gateways(tmp_path, capsys)
    ours.ok("account", "add", "Kowalski")
    backup = tmp_path / "backup.db"
    ours.ok("backup", str(backup))
    state = tmp_path / "ours" / "state"
    holder = (
        "import sys; from pathlib import Path; from gateway import statelock\n"
        f"with statelock.held(Path({str(state)!r})):\n"
        "    print('held', flush=True); sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as daemon:  # a process holding the state directory's lock, as `smsgw run` started by hand does
        assert daemon.stdin is not None and daemon.stdout is not None
        try:
            assert daemon.stdout.readline() == "held\n"
            code, _out, err = ours("restore", str(backup))
        finally:
            daemon.stdin.close()
    assert code == 1 and f"smsgw is running (pid {daemon.pid})" in err, err
    assert "systemctl" not in err, err  # "Unit smsgw.service not loaded"
    assert f"started by hand: stop it there, or `kill {daemon.pid}`, the pid in {state / 'smsgw.pid'}" in err
