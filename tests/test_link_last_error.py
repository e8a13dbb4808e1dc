"""Why a link is not up, where admins look: the status file (`smsgw status`) and the panel's links.

A link that could not connect or whose bind was refused said only `reconnecting … reconnects 4`;
the reason (the SMSC's address refusing, a wrong password) was in the log alone, and on an
admin's first day a wrong host or password is the likeliest trouble.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.linkstatus import LinkView
from tests.conftest import make_config, running_gateway
from tests.fakes.ports import free_port
from tests.fakes.smsc import HappySMSC


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
