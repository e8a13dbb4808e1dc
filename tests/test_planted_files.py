"""Files planted where a private one belongs: a state directory open to every user before the first start
lets any local user put a symbolic link or a file of their own under the name of the first password or
the database, and read what is then written there. A secret is never written through a link or into
another user's file, an older wider file never stays wider, and a daemon whose state directory was
writable by every user refuses to start while it holds such entries.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import gateway.filemodes as filemodes
from gateway.adminrules import seed_accounts
from gateway.cli.common import EXIT_CONFIG
from gateway.config import Config
from gateway.store.db import Store, StoreUnusable
from gateway.web.server import INITIAL_PASSWORD_FILE, first_operator
from tests.conftest import config_text, free_port, make_config, mode
from tests.test_account_show import CLI
from tests.test_process import CLI as SMSGW
from tests.test_process import ROOT

ACCOUNT = '\n[[account]]\nname = "demo"\nrelay_networks = ["127.0.0.0/8"]\nusers = ["demo@example.com"]\n'
NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="making a file another user's needs root (as in CI)")


def _fresh(tmp_path: Path) -> tuple[Config, Store]:
    cfg = make_config(tmp_path, smsc_port=1, extra=ACCOUNT)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.state_dir / "smsgw.db")
    seed_accounts(store, cfg)
    return cfg, store


def _elsewhere(tmp_path: Path, owner: int | None = None) -> Path:
    """A file of the would-be reader, outside the state directory."""
    path = tmp_path / "attacker" / "pw"
    path.parent.mkdir(exist_ok=True)
    path.write_text("")
    if owner is not None:
        os.chown(path.parent, owner, owner)
        os.chown(path, owner, owner)
    return path


# ---- the first operator's password ---------------------------------------------------------------


def test_an_older_wider_initial_password_file_is_replaced_by_a_private_one(tmp_path: Path) -> None:
    cfg, store = _fresh(tmp_path)
    old = cfg.state_dir / INITIAL_PASSWORD_FILE
    old.write_text("from an earlier install\n")
    old.chmod(0o644)  # left behind, or restored by a copy that did not keep modes
    try:
        assert first_operator(store, cfg) is not None
    finally:
        store.close()
    assert mode(old) == 0o600 and "earlier" not in old.read_text()


def test_the_initial_password_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    cfg, store = _fresh(tmp_path)
    elsewhere = _elsewhere(tmp_path)
    link = cfg.state_dir / INITIAL_PASSWORD_FILE
    os.symlink(elsewhere, link)
    try:
        made = first_operator(store, cfg)
    finally:
        store.close()
    assert elsewhere.read_text() == ""
    assert made is not None and not link.is_symlink() and mode(link) == 0o600
    assert len(link.read_text().strip()) >= 16


@as_root
def test_the_initial_password_is_not_written_into_another_users_file(tmp_path: Path) -> None:
    cfg, store = _fresh(tmp_path)
    planted = cfg.state_dir / INITIAL_PASSWORD_FILE
    planted.write_text("")
    planted.chmod(0o644)
    os.chown(planted, NOBODY, NOBODY)
    with planted.open() as held:  # the planter keeps it open: what lands in this file stays theirs
        try:
            assert first_operator(store, cfg) is not None
        finally:
            store.close()
        assert held.read() == ""
    assert planted.stat().st_uid == os.geteuid() and mode(planted) == 0o600


def test_a_password_file_that_cannot_be_written_leaves_no_operator_without_a_known_password(
    tmp_path: Path,
) -> None:
    cfg, store = _fresh(tmp_path)
    (cfg.state_dir / INITIAL_PASSWORD_FILE).mkdir()  # a directory there: cannot be replaced by a file
    try:
        with pytest.raises(OSError):
            first_operator(store, cfg)
        user = store.accounts.find_user("demo@example.com")
        assert user is not None and not user.password_hash and user.role != "operator"
    finally:
        store.close()
    (cfg.state_dir / INITIAL_PASSWORD_FILE).rmdir()
    store = Store.open(cfg.state_dir / "smsgw.db")
    try:
        assert first_operator(store, cfg) is not None  # the next start makes it
    finally:
        store.close()


# ---- the private files' helpers -------------------------------------------------------------------


def test_a_private_file_is_never_written_through_a_symbolic_link(tmp_path: Path) -> None:
    elsewhere = _elsewhere(tmp_path)
    for write, data in ((filemodes.write_private, "hash"), (filemodes.write_private_bytes, b"text")):
        link = tmp_path / "status.tmp"
        os.symlink(elsewhere, link)
        with pytest.raises(OSError, match="symbolic link"):
            write(link, data)  # type: ignore[operator]
        assert elsewhere.read_text() == "" and link.is_symlink()
        link.unlink()


def test_a_fifo_in_a_private_files_place_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "status.tmp"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # its planter reads what is written into it
    try:
        with pytest.raises(OSError, match="not a regular file"):
            filemodes.write_private(fifo, "{}")
        assert os.read(reader, 100) == b""  # nothing came through
    finally:
        os.close(reader)
    with pytest.raises(OSError, match="not a regular file"):  # with no reader: refused, not waited on
        filemodes.write_private(fifo, "{}")


@as_root
def test_another_users_file_is_refused_and_left_whole(tmp_path: Path) -> None:
    planted = tmp_path / "status.tmp"
    planted.write_text("theirs")
    os.chown(planted, NOBODY, NOBODY)
    for write, data in ((filemodes.write_private, "x"), (filemodes.write_private_bytes, b"x")):
        with pytest.raises(OSError, match="belongs to user nobody"):
            write(planted, data)  # type: ignore[operator]
        assert planted.read_text() == "theirs"  # not emptied before the refusal either
    with pytest.raises(OSError, match="belongs to user nobody"):
        filemodes.create_private(planted)


# ---- the database and its companions ---------------------------------------------------------------


@as_root
def test_a_planted_database_of_another_user_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    db = state / "smsgw.db"
    db.write_bytes(b"")
    os.chown(db, NOBODY, NOBODY)
    with pytest.raises(StoreUnusable, match=f"{db} belongs to user nobody"):
        Store.open(db).close()
    assert db.read_bytes() == b"" and not (state / "smsgw.db-wal").exists()


def test_a_database_that_is_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    elsewhere = _elsewhere(tmp_path)
    db = tmp_path / "smsgw.db"
    os.symlink(elsewhere, db)
    with pytest.raises(StoreUnusable, match="symbolic link"):
        Store.open(db).close()
    assert elsewhere.read_bytes() == b""


@pytest.mark.parametrize("companion", ["-wal", "-shm"])
def test_a_planted_wal_or_shm_link_is_refused_before_sqlite_opens_it(tmp_path: Path, companion: str) -> None:
    db = tmp_path / "smsgw.db"
    Store.open(db).close()
    elsewhere = _elsewhere(tmp_path)
    os.symlink(elsewhere, f"{db}{companion}")
    with pytest.raises(StoreUnusable, match=f"smsgw.db{companion} is a symbolic link"):
        Store.open(db).close()
    assert elsewhere.read_bytes() == b""


@as_root
def test_a_planted_wal_of_another_user_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "smsgw.db"
    Store.open(db).close()
    wal = tmp_path / "smsgw.db-wal"
    wal.write_bytes(b"")
    os.chown(wal, NOBODY, NOBODY)
    with pytest.raises(StoreUnusable, match=f"{wal} belongs to user nobody"):
        Store.open(db).close()
    assert wal.stat().st_uid == NOBODY and wal.read_bytes() == b""


@as_root
def test_a_cli_command_names_a_planted_database_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=2775))
    db = tmp_path / "state" / "smsgw.db"
    Store.open(db).close()  # a real database, as a planter could copy one in
    os.chown(db, NOBODY, NOBODY)
    code, _out, err = CLI(config, capsys)("account", "list")
    assert code == EXIT_CONFIG and f"{db} belongs to user nobody" in err and "move it aside" in err, err


# ---- the daemon's start in a state directory that was writable by every user ---------------------------


def _start(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port(), smtp_port=free_port()))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SMSGW_CONFIG", None)
    proc = subprocess.Popen(
        [*SMSGW, "--config", str(config), "run"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        _out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.communicate(timeout=60)
        pytest.fail("`smsgw run` started in a state_dir holding what another user may have planted")
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", err)


def test_the_daemon_refuses_to_start_beside_a_link_planted_in_an_open_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    os.symlink(_elsewhere(tmp_path), state / INITIAL_PASSWORD_FILE)
    res = _start(tmp_path)
    assert res.returncode == EXIT_CONFIG, res.stderr
    assert f"{INITIAL_PASSWORD_FILE} (a symbolic link to {tmp_path / 'attacker' / 'pw'})" in res.stderr
    assert "move them aside" in res.stderr
    assert mode(state) == 0o770  # narrowed all the same
    assert sorted(p.name for p in state.iterdir()) == [INITIAL_PASSWORD_FILE]  # nothing written beside it


@as_root
def test_the_daemon_refuses_to_start_beside_another_users_file_in_an_open_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    (state / "smsgw.db-wal").write_bytes(b"")
    os.chown(state / "smsgw.db-wal", NOBODY, NOBODY)
    res = _start(tmp_path)
    assert res.returncode == EXIT_CONFIG, res.stderr
    assert "smsgw.db-wal (belongs to user nobody)" in res.stderr, res.stderr
    assert not (state / "smsgw.db").exists()


def test_only_a_state_dir_others_could_write_is_searched_for_planted_entries(tmp_path: Path) -> None:
    (tmp_path / "billing").mkdir()
    (tmp_path / "smsgw.db").write_bytes(b"")
    assert filemodes.planted(tmp_path, 0o40777) is None  # this user's own files and directories
    os.symlink("/srv/billing", tmp_path / "books")  # an admin's own link, in a directory only it writes
    for was in (None, 0o40755, 0o40750):
        assert filemodes.planted(tmp_path, was) is None
    assert "books (a symbolic link to /srv/billing)" in (filemodes.planted(tmp_path, 0o40777) or "")
