"""A long SMS whose validity ends while its exclusive link is down bounces once, saying all its parts expired.

Defect: the dispatcher, claiming the parts at their validity's end, expired them one by one, each settling
the message at once: the bounce went when the first part ended and said "part 1 of 4: validity period
expired ... (parts 2, 3, 4 being sent)" of parts that ended in the same write, and the message's reason
was written again twice after it. Now the parts claimed together end together and their message is
settled once, as the opted-out parts of a long SMS are (`gateway.claims`).

Real daemon with its clock injected, a real SMTP client, the SMPP fake over TCP as the other link (up),
nobody listening on the exclusive link's port, an aiosmtpd sink as the relay catching the bounce.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gateway import housekeeping
from gateway.config import parse_config
from gateway.linkwaits import PARKED
from gateway.store.partnotes import NO_LINK_EXPIRED
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smsc_link, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_dsn_wording import dsns, human
from tests.test_link_waits import count, up
from tests.test_mail_expiry import Clock


async def test_a_long_sms_expired_while_its_exclusive_link_was_down_bounces_once_for_all_its_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The housekeeping's expiry (one statement for every part) is kept away: the claim at the validity's
    # end is the one under test.
    monkeypatch.setattr(housekeeping, "EXPIRY_INTERVAL", 3600.0)
    clock, sink_port = Clock(), free_port()
    async with HappySMSC() as backup, smtp_sink(sink_port) as sink:
        text = config_text(
            tmp_path,
            smsc_port=free_port(),  # nobody listens: "main" stays down
            smsc_extra='prefixes = ["+4860"]\nexclusive = true',
            relay_port=sink_port,
        )
        text += smsc_link("backup", backup.port)
        async with running_gateway(parse_config(text, source="test", base_dir=tmp_path), clock) as gw:
            await gw.until(up(gw, "backup"))
            body = " ".join(f"word{i:03d}" for i in range(60))  # 4 parts
            assert (await gw.send(mail(f"601000077@{DOMAIN}", body))).error is None
            await gw.until(lambda: count(gw, PARKED) == 4)
            expires = gw.store.db.conn.execute("SELECT MAX(expires_at) FROM parts").fetchone()[0]
            clock.skew = expires - time.time() + 1
            gw.daemon.dispatcher.wake()
            await gw.until(lambda: gw.states() == ["expired"])
            await gw.until(lambda: len(dsns(sink)) == 1)
            await asyncio.sleep(0.5)  # a second bounce would have come by now
            reason = gw.store.db.conn.execute("SELECT reason FROM messages").fetchone()[0]
            states = [r[0] for r in gw.store.db.conn.execute("SELECT state FROM parts ORDER BY seq")]
    assert backup.received == []
    assert states == ["expired"] * 4
    assert reason == f"all 4 parts: {NO_LINK_EXPIRED}", reason
    [(_from, _rcpts, report)] = dsns(sink)
    said = " ".join(human(report).split())
    assert f"Reason: all 4 parts: {NO_LINK_EXPIRED}" in said, said
    assert "being sent" not in said and "part 1 of" not in said, said
