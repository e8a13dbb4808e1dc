"""A link removed from the config with a long SMS half sent by it: the start's `dlr.links_gone` said
every part it took stays 'submitted' until it expires, but the long SMS goes again whole by another
link (`mt.long_sms_moved`), once it waited LONG_SMS_WAIT_SECONDS for the link as for one down. The daemon
against fake SMSCs over TCP and a real SQLite file; time moved by the injected clock."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

from structlog.testing import capture_logs

from gateway.config import parse_config
from gateway.longsms import LONG_SMS_WAIT_SECONDS
from tests.conftest import DOMAIN, config_text, mail, running_gateway
from tests.fakes.smsc import HeldSMSC


async def test_the_start_counts_a_long_sms_sent_again_whole_apart_from_the_sms_left_waiting(
    tmp_path: Path,
) -> None:
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    async with HeldSMSC() as first, HeldSMSC() as second:
        text = config_text(tmp_path, smsc_port=first.port)
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            assert (await gw.send(mail(f"601123456@{DOMAIN}", "x" * 400))).error is None  # three parts
            assert (await gw.send(mail(f"601123457@{DOMAIN}", "short"))).error is None
            await first.wait_for(4)
            first.answer(4)
            await gw.until(lambda: gw.states() == ["submitted", "submitted"])
        # As when the link was taken out of the config after its SMSC took the long SMS's first part.
        with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn, conn:
            conn.execute(
                "UPDATE parts SET state = 'queued', link = NULL, smsc_id = NULL, submitted_at = NULL"
                " WHERE message_id = 1 AND seq > 1"
            )
        removed = text.replace('name = "main"', 'name = "other"', 1).replace(
            f"port = {first.port}", f"port = {second.port}", 1
        )
        with capture_logs() as logs:
            async with running_gateway(parse_config(removed, base_dir=tmp_path), clock=clock) as gw:
                await gw.until(lambda: gw.daemon.dispatcher.choice.waiting() == 1)
                offset[0] += LONG_SMS_WAIT_SECONDS + 1
                await gw.until(lambda: any(e["event"] == "mt.long_sms_moved" for e in logs))
    (gone,) = [e for e in logs if e["event"] == "dlr.links_gone"]
    (moved,) = [e for e in logs if e["event"] == "mt.long_sms_moved"]
    assert moved["message"] == 1 and moved["sent_before"] == 1, moved
    assert gone["waiting"] == {"main": 1}, gone  # the short SMS alone waits for a report
    assert gone["long_sms_sent_again"] == {"main": 1}, gone
    assert "the whole SMS goes again by another link" in gone["note"], gone
