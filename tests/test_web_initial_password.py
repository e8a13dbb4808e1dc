"""var/web-initial-password, the first operator's password, outlived the password it held: it stayed
readable in state_dir after the operator changed it (or was removed). It goes when that login's password
is set anew, in the panel or with `smsgw user passwd`, and at a start when no operator's password is in
it any more."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gateway.adminrules import seed_accounts
from gateway.store.db import Store
from gateway.web.initialpassword import INITIAL_PASSWORD_FILE
from gateway.web.server import first_operator
from tests.conftest import STAFF, config_text, make_config
from tests.test_process import CLI, ROOT
from tests.web_helpers import OPERATOR, PASSWORD, as_user, csrf_of, seeded_store, web_context


def fresh(tmp_path: Path) -> tuple[Path, Path]:
    """(config, its state_dir) after the first start with the panel: STAFF, the config's first
    seeded user, is the operator, and the file holds its password."""
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=2775))
    cfg = make_config(tmp_path, smsc_port=2775)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.state_dir / "smsgw.db")
    try:
        seed_accounts(store, cfg)
        assert first_operator(store, cfg) is not None
    finally:
        store.close()
    assert (cfg.state_dir / INITIAL_PASSWORD_FILE).exists()
    return config, cfg.state_dir


def passwd(config: Path, email: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--config", str(config), "user", "passwd", email],
        input=password + "\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip


def test_user_passwd_of_the_first_operator_removes_the_file(tmp_path: Path) -> None:
    config, state = fresh(tmp_path)
    res = passwd(config, STAFF, "a new password 1")
    assert res.returncode == 0, res.stderr
    assert f"removed {state / INITIAL_PASSWORD_FILE}: it held the password just replaced" in res.stdout
    assert not (state / INITIAL_PASSWORD_FILE).exists()


def test_another_users_password_leaves_the_file(tmp_path: Path) -> None:
    config, state = fresh(tmp_path)
    subprocess.run([*CLI, "--config", str(config), "user", "add", "ben@example.com", "--account", "acme"],
                   check=True, capture_output=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert passwd(config, "ben@example.com", "bens password 1").returncode == 0
    assert (state / INITIAL_PASSWORD_FILE).exists()


def test_a_start_removes_a_file_no_operator_logs_in_with(tmp_path: Path) -> None:
    _config, state = fresh(tmp_path)
    cfg = make_config(tmp_path, smsc_port=2775)
    store = Store.open(state / "smsgw.db")
    try:
        assert first_operator(store, cfg) is None  # still the operator's password: kept
        assert (state / INITIAL_PASSWORD_FILE).exists()
        from acl.passwords import hash_password

        store.accounts.set_user(STAFF, password_hash=hash_password("changed elsewhere"))
        assert first_operator(store, cfg) is None
    finally:
        store.close()
    assert not (state / INITIAL_PASSWORD_FILE).exists()


async def test_the_panels_password_change_removes_the_file(tmp_path: Path) -> None:
    store = seeded_store(tmp_path)
    (tmp_path / INITIAL_PASSWORD_FILE).write_text(PASSWORD + "\n")  # the operator's, as made at start
    web = web_context(tmp_path, store)
    try:
        async with as_user(web, OPERATOR) as c:
            token = csrf_of((await c.get("/users")).text)
            data = {"action": "password", "email": OPERATOR, "password": "a new password 1", "csrf": token}
            data["current_password"] = PASSWORD  # one's own: the current one too
            page = (await c.post("/users", data=data, follow_redirects=True)).text
    finally:
        web.counts.close()
        store.close()
    assert f"{INITIAL_PASSWORD_FILE}, which held the password replaced, is removed" in page
    assert not (tmp_path / INITIAL_PASSWORD_FILE).exists()


def test_user_remove_of_the_first_operator_removes_the_file_at_once(tmp_path: Path) -> None:
    # It stayed until a start; and with no operator left, a start kept it for good.
    config, state = fresh(tmp_path)
    res = subprocess.run([*CLI, "--config", str(config), "user", "remove", STAFF],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert f"removed {state / INITIAL_PASSWORD_FILE}: it held the password of the login removed" in res.stdout
    assert not (state / INITIAL_PASSWORD_FILE).exists()


async def test_the_panels_user_removal_removes_the_file_that_held_the_login_s_password(
    tmp_path: Path,
) -> None:
    # The CLI's `user remove` did, the panel's removal left it (kept for good with no operator left).
    from acl.passwords import hash_password
    from tests.web_helpers import ADMIN

    store = seeded_store(tmp_path)
    store.accounts.set_user(ADMIN, password_hash=hash_password("the first password 1"))
    (tmp_path / INITIAL_PASSWORD_FILE).write_text("the first password 1\n")
    web = web_context(tmp_path, store)
    try:
        async with as_user(web, OPERATOR) as c:
            token = csrf_of((await c.get("/users")).text)
            data = {"action": "remove", "email": ADMIN, "csrf": token, "confirm": "yes"}
            page = (await c.post("/users", data=data, follow_redirects=True)).text
    finally:
        web.counts.close()
        store.close()
    assert f"user {ADMIN} removed" in page, page
    assert f"({INITIAL_PASSWORD_FILE}, which held its password, is removed)" in page
    assert not (tmp_path / INITIAL_PASSWORD_FILE).exists()
