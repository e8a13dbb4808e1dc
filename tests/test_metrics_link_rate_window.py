"""/metrics' link rate covers the time since the scrape before, whatever the panel read meanwhile.

The rate gauge (`smsgw_link_submit_rate`) is the submits since the last reading of the links'
snapshot over the time since. The daemon's web had one snapshot for every reader: each company
admin's message page (it names the link a waiting part waits for) and each /healthz started the
gauge's window afresh, and a scrape after one read the submits of the last instant alone: 0.0 with
every SMS of the interval sent. /metrics now has its own window, and readers that show no rate move
none (`gateway.linkstatus`).

The daemon in-process with a real SMPP SMSC (`tests/fakes/smsc.py`) over TCP, the panel and /metrics
over HTTP. No timing is asserted: the times taken around the scrapes bound what the rate may read.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from gateway.config import load_config
from tests.conftest import STAFF, mail, running_gateway
from tests.fakes.ports import free_port
from tests.fakes.smsc import HappySMSC
from tests.test_outage_visible import written
from tests.test_policy import to
from tests.web_helpers import login, password_hash

SENT = 4  # SMS sent between the two scrapes
ROUNDED = 0.05  # the gauge is rounded to a tenth


def _gauge(metrics: str, name: str) -> float:
    found = re.search(rf'^{name}\{{link="main"\}} (\S+)$', metrics, re.M)
    assert found is not None, metrics
    return float(found[1])


async def test_message_pages_and_healthz_between_scrapes_leave_the_rate_window(tmp_path: Path) -> None:
    port = free_port()
    path = written(tmp_path, port)
    async with HappySMSC(port=port), running_gateway(load_config(path)) as gw:
        store = gw.store
        await store.write(lambda: store.accounts.set_user(STAFF, password_hash=password_hash(), role="admin"))
        assert (await gw.send(mail(to("601123456"), "Before the window"))).error is None
        await gw.until(lambda: gw.states() == ["delivered"])
        message_id = store.db.conn.execute("SELECT MAX(id) FROM messages").fetchone()[0]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
            assert (await login(c, STAFF)).status_code == 303
            started = time.monotonic()
            first = (await c.get("/metrics")).text
            first_read = time.monotonic()
            assert _gauge(first, "smsgw_link_submitted_total") == 1.0, first
            for n in range(SENT):
                assert (await gw.send(mail(to(f"60112345{n}"), f"In the window {n}"))).error is None
            await gw.until(lambda: gw.states() == ["delivered"] * (1 + SENT))
            # A company admin looks at a message, and a load balancer at /healthz: no rate shown.
            for _ in range(3):
                page = await c.get(f"/messages/{message_id}")
                assert page.status_code == 200 and "Before the window" in page.text
                assert (await c.get("/healthz")).status_code == 200
            asked = time.monotonic()
            second = (await c.get("/metrics")).text
            ended = time.monotonic()
    assert _gauge(second, "smsgw_link_submitted_total") == 1.0 + SENT, second
    rate = _gauge(second, "smsgw_link_submit_rate")
    # The window runs from the first scrape's reading to the second's, each inside its request.
    assert SENT / (ended - started) - ROUNDED <= rate <= SENT / (asked - first_read) + ROUNDED, (
        rate,
        ended - started,
        asked - first_read,
    )
