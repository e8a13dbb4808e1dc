"""The rest of a long SMS tied to a link its number's routes no longer take, after a restart with the
routes changed, goes again whole by a link they do take.

Defect: the choice of link returned the link that took the SMS's first part without asking the routes:
the rest left by a link the config no longer allowed for that number (another operator's, say). Now it
waits as for a link gone from the config, its parts noted so, and after LONG_SMS_WAIT_SECONDS the whole
SMS goes again by the allowed link under a new reference (`mt.long_sms_moved`).

The daemon against fake SMSCs over TCP, a real SQLite file, time moved by the injected clock.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

from structlog.testing import capture_logs

from gateway.config import parse_config
from gateway.longsms import LONG_SMS_WAIT_SECONDS
from gateway.store.partnotes import LINK_OFF_ROUTE, TIED_WAIT
from tests.conftest import DOMAIN, config_text, mail, running_gateway, smsc_link
from tests.fakes.smsc import HappySMSC, HeldSMSC


async def test_a_long_sms_tied_to_a_link_its_route_no_longer_takes_goes_again_whole_by_one_it_does(
    tmp_path: Path,
) -> None:
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    async with HeldSMSC() as first, HappySMSC() as second:
        text = config_text(tmp_path, smsc_port=first.port)
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            assert (await gw.send(mail(f"601123456@{DOMAIN}", "x" * 400))).error is None  # three parts
            await first.wait_for(3)
            first.answer(3)
            await gw.until(lambda: gw.states() == ["submitted"])
        # As when the restart came after "main" took the first part alone.
        with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn, conn:
            conn.execute(
                "UPDATE parts SET state = 'queued', link = NULL, smsc_id = NULL, submitted_at = NULL"
                " WHERE message_id = 1 AND seq > 1"
            )
        # "main" now serves +4870 alone; the new default link "other" takes +4860.
        changed = config_text(tmp_path, smsc_port=first.port, smsc_extra='prefixes = ["+4870"]')
        changed += smsc_link("other", second.port)
        with capture_logs() as logs:
            async with running_gateway(parse_config(changed, base_dir=tmp_path), clock=clock) as gw:
                await gw.until(lambda: gw.daemon.dispatcher.choice.waiting() == 1)
                said = TIED_WAIT.format("main", LINK_OFF_ROUTE)
                notes = "SELECT error FROM parts WHERE seq > 1"
                await gw.until(lambda: [r[0] for r in gw.store.db.conn.execute(notes)] == [said, said])
                offset[0] += LONG_SMS_WAIT_SECONDS + 1
                await gw.until(lambda: any(e["event"] == "mt.long_sms_moved" for e in logs))
                await second.wait_for(3)
                await gw.until(lambda: gw.states() == ["delivered"])
    assert len(first.received) == 3  # the first link's three before the restart, none since
    assert sorted(sms.udh[-1] for sms in second.received) == [1, 2, 3]  # the whole SMS, again
