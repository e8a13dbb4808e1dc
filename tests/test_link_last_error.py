"""Why a link is not up, where admins look: the status file (`smsgw status`) and the panel's links.

A link that could not connect or whose bind was refused said only `reconnecting … reconnects 4`;
the reason (the SMSC's address refusing, a wrong password) was in the log alone, and on an
admin's first day a wrong host or password is the likeliest trouble.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from gateway.housekeeping import read_status
from gateway.linkstatus import LinkView
from tests.conftest import make_config, running_gateway
from tests.fakes.ports import free_port
from tests.fakes.smsc import HappySMSC
from tests.test_process import smsgw, start_daemon, write_config
from tests.test_supervision import until
from tests.web_helpers import OPERATOR, as_user, panel_store, web_context


@pytest.mark.parametrize("kind", ["smpp", "cimd2"])
async def test_a_link_that_cannot_connect_says_why(tmp_path: Path, kind: str) -> None:
    port = free_port()  # nobody listens there
    cfg = make_config(tmp_path, smsc_port=port)
    cfg.smsc[0] = cfg.smsc[0].model_copy(update={"type": kind})
    async with running_gateway(cfg) as gw:
        assert type(gw.daemon.links["main"]).__name__.lower().startswith(kind)
        links = LinkView(gw.daemon.dispatcher)
        await gw.until(lambda: bool(links()["main"]["last_error"]))
        link = links()["main"]
        assert link["state"] != "active"
        assert link["last_error"].startswith(f"connect 127.0.0.1:{port}: "), link
        assert link["last_error"] == f"connect 127.0.0.1:{port}: Connection refused", link
        assert link["last_error_at"] is not None


async def test_a_refused_bind_says_so_and_a_bound_link_keeps_its_last_error_for_the_record(
    tmp_path: Path,
) -> None:
    async with HappySMSC(password="other") as smsc:
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
            links = LinkView(gw.daemon.dispatcher)
            await gw.until(lambda: bool(links()["main"]["last_error"]))
            link = links()["main"]
            assert link["last_error"].startswith("bind refused: "), link
            assert "secret" not in link["last_error"]  # never the password


async def test_smsgw_status_says_why_a_link_is_down(tmp_path: Path) -> None:
    smsc_port, smtp_port = free_port(), free_port()
    config = write_config(tmp_path, smsc_port, smtp_port)
    proc = await start_daemon(config, smtp_port)
    try:

        def said() -> bool:
            links = (read_status(tmp_path / "state") or {}).get("links", {})
            return bool(links.get("main", {}).get("last_error"))

        await until(said)
        res = await asyncio.to_thread(smsgw, config, "status")
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
    line = next(line for line in res.stdout.splitlines() if line.startswith("link main:"))
    assert "last error " in line, line
    assert line.endswith(f": connect 127.0.0.1:{smsc_port}: Connection refused"), line
    assert res.returncode == 1, res.stdout  # no link up: trouble


async def test_the_panels_links_page_says_why_a_link_is_down(tmp_path: Path) -> None:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store)
    down = {"state": "reconnecting", "rate": 0.0, "in_flight": 0, "window": 10, "submitted": 0}
    web.links = lambda: {
        "main": {**down, "last_error": "bind refused: <ESME_RINVPASWD> invalid password"},
        "spare": {**down, "state": "active", "last_error": "closed by peer"},
    }
    try:
        async with as_user(web, OPERATOR) as c:
            page = (await c.get("/operator/links")).text
    finally:
        web.counts.close()
        store.close()
    assert "bind refused: &lt;ESME_RINVPASWD&gt; invalid password" in page  # escaped, as every value
    assert "closed by peer" not in page  # a link that is up again has nothing to explain
