"""Saves in the panel while the gateway's disk is full: a page saying the change was not saved and
why (503), a warning in the log without a traceback, and the panel goes on over the same connection.

They answered a bare 500 "Internal Server Error" with "Exception in ASGI application" and a
traceback in the log, and the browser's next request on that connection was reset; the CLI said
"database or disk is full" plainly. Against the real daemon, the panel over real HTTP (httpx over
TCP, one connection kept alive as a browser keeps it).

The store is made full as in tests/test_outbox_full_disk.py: packed by VACUUM and not allowed to
grow (`PRAGMA max_page_count`); then the audit trail's last pages are filled to the last byte, so
that a save's record (every save writes one with its change) finds no room, as on a full disk.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from acl.passwords import hash_password
from tests.conftest import make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_outbox_full_disk import fill_store, free_store
from tests.test_web_browser import WEB
from tests.test_web_stale_forms import (
    ADMIN,
    ADMIN_PASSWORD,
    _with_admin,
    account_sets,
    logged_in,
    settings_form,
)
from tests.web_helpers import csrf_of

OPERATOR = "op@gw.example"
NOT_SAVED = "the change was not saved: the gateway&#39;s disk is full; free space there (old logs, backups)"


def peer(r: httpx.Response) -> Any:
    """The client's end of the TCP connection the response came over (None: closed under it)."""
    try:
        return r.extensions["network_stream"].get_extra_info("client_addr")
    except OSError:
        return None


def fill_audit(gw: Any) -> None:
    """No room left in the audit trail's pages either (rows of the test's own, none a save's)."""
    conn = gw.store.db.conn
    sql = "INSERT INTO audit (at, actor, account_id, action, detail) VALUES (0, '', NULL, 'filler', ?)"
    for size in (1000, 200, 40, 8, 1, 0):
        try:
            while True:
                conn.execute(sql, ("x" * size,))
        except sqlite3.OperationalError as exc:
            assert exc.sqlite_errorcode == sqlite3.SQLITE_FULL, exc


def optout_rows(gw: Any) -> int:
    sql = "SELECT (SELECT COUNT(*) FROM optouts) + (SELECT COUNT(*) FROM account_optouts)"
    return int(gw.store.db.conn.execute(sql).fetchone()[0])


async def test_a_save_on_a_full_disk_says_it_was_not_saved_and_the_panel_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=WEB)) as gw,
    ):
        await _with_admin(gw)
        digest = hash_password(ADMIN_PASSWORD)

        def operator() -> None:
            gw.store.accounts.add_user(OPERATOR, "acme", password_hash=digest)
            gw.store.accounts.set_user(OPERATOR, role="operator")

        await gw.store.write(operator)
        base = f"http://127.0.0.1:{gw.daemon.web.port}"
        async with logged_in(base, ADMIN, ADMIN_PASSWORD) as c:
            page = await c.get("/account")
            form = settings_form(page.text)
            before = gw.store.accounts.get_account("acme").end_marker
            fill_store(gw.store)
            fill_audit(gw)
            with capture_logs() as logs:
                r = await c.post("/account", data={**form, "end_marker": "KONIEC"})
                where = peer(r)
                assert r.status_code == 503, r.text
                assert NOT_SAVED in r.text
                # The same connection serves the next page, and other pages work.
                again = await c.get("/account")
                assert again.status_code == 200 and peer(again) == where
                assert (await c.get("/")).status_code == 200

                # The operator's opt-out (an admin adds only numbers its account has sent to).
                async with logged_in(base, OPERATOR, ADMIN_PASSWORD) as op:
                    page = await op.get("/account?account=acme")
                    assert page.status_code == 200
                    data = {"csrf": csrf_of(page.text), "action": "add", "number": "601500003"}
                    r = await op.post("/optouts?account=acme", data=data)
                    assert r.status_code == 503, r.text
                    assert NOT_SAVED in r.text
                    assert (await op.get("/account?account=acme")).status_code == 200
            assert gw.store.accounts.get_account("acme").end_marker == before
            assert account_sets(gw.store) == [] and optout_rows(gw) == 0

            refused = [e for e in logs if e["event"] == "web.store_refused"]
            assert refused and refused[0]["log_level"] == "warning", logs
            assert refused[0]["path"] == "/account" and "full" in refused[0]["error"]
            # The store's own line says what it refused (`store.commit_failed`); the panel adds a
            # warning, no error and no traceback (uvicorn's "Exception in ASGI application").
            assert not [e for e in logs if e["event"].startswith("web.") and e["log_level"] != "warning"
                        and e["event"] != "web.login"]  # fmt: skip
            assert not [e for e in logs if "exc_info" in e and not e["event"].startswith("store.")], logs
            tracebacks = [r for r in caplog.records if r.exc_info or "Exception in ASGI" in r.getMessage()]
            assert not tracebacks, [r.getMessage() for r in tracebacks]

            # Room again: the same form saves.
            free_store(gw.store)
            r = await c.post("/account", data={**form, "end_marker": "KONIEC"})
            assert r.status_code == 303, r.text
            assert gw.store.accounts.get_account("acme").end_marker == "KONIEC"
