"""The panel's message page says why a part waits as `smsgw queue show` does: the link down, since
when, and the next try.

During an outage the page showed only the row's note, while `queue show` named the link and since
when it was down: the operator looking at the panel did not learn which link to see to. Both now print
the words of `gateway.waitwords`. The daemon in-process with a real SMPP SMSC (`tests/fakes/smsc.py`)
over TCP that then dies, the panel over HTTP, `queue show` as a real process.
"""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path

import httpx

from gateway.config import load_config
from gateway.housekeeping import read_status
from gateway.linkstatus import LinkView
from tests.conftest import STAFF, mail, running_gateway
from tests.fakes.ports import free_port
from tests.fakes.smsc import HappySMSC
from tests.test_outage_visible import Clock, written
from tests.test_policy import to
from tests.test_process import smsgw
from tests.web_helpers import login, password_hash


async def test_the_page_names_the_link_down_and_since_when_as_queue_show(tmp_path: Path) -> None:
    port = free_port()
    path = written(tmp_path, port)
    cfg = load_config(path)
    smsc = HappySMSC(port=port)
    await smsc.__aenter__()
    async with running_gateway(cfg, Clock()) as gw:
        links = LinkView(gw.daemon.dispatcher)
        await gw.until(lambda: links()["main"]["state"] == "active")
        store = gw.store
        await store.write(
            lambda: store.accounts.set_user(STAFF, password_hash=password_hash(), role="operator")
        )
        smsc.drop_all()
        await smsc.__aexit__(None, None, None)  # nothing listens on its port now
        await gw.until(lambda: links()["main"]["down_since"] is not None)
        assert (await gw.send(mail(to("601123456"), "Waiting for the SMSC"))).error is None
        message_id = store.db.conn.execute("SELECT MAX(id) FROM messages").fetchone()[0]
        await gw.until(lambda: gw.daemon.dispatcher.backlog == 1)
        since = links()["main"]["down_since"]
        await gw.until(
            lambda: (
                (read_status(cfg.state_dir) or {}).get("links", {}).get("main", {}).get("down_since") == since
            )
        )
        shown = await asyncio.to_thread(smsgw, path, "queue", "show", str(message_id))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
            assert (await login(c, STAFF)).status_code == 303
            page = (await c.get(f"/messages/{message_id}")).text
    [cli] = [line.strip() for line in shown.stdout.splitlines() if line.strip().startswith("waiting: ")]
    said = re.search(r'<span class="waits" id="waits-1">(.*?)</span>', page, re.S)
    assert said is not None, page
    panel = html.unescape(said[1])
    # The same words up to the age, which each read at its own moment.
    assert cli.startswith("waiting: no link up for +48601123456 (link main down since "), cli
    assert panel.split(" (link main down since ")[1][:19] == cli.split(" (link main down since ")[1][:19]
    assert panel.split(" down since ")[0] == cli.split(" down since ")[0], (panel, cli)
