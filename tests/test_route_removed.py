"""SMS accepted for a number that no link serves after a config change.

The operator removed the default link (or narrowed the prefixes) and restarted with SMS queued for
numbers only that link took. They waited, `queued` with no word said and claimed every second, until
their validity ended a day later, and bounced as "expired". New mail to such numbers is refused at
RCPT already; these now fail at once, and the sender is told why.

The daemon in-process, a real SMTP client, a real SMPP SMSC and a real SMTP sink for the bounce;
the restart is a second daemon on the same state directory with the new config.
"""

from __future__ import annotations

from pathlib import Path

from gateway.config import parse_config
from gateway.outcomes import NO_ROUTE_NOTE
from tests.conftest import config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_attempts_spent_maybe_sent import bounce_text
from tests.test_policy import to


async def test_sms_for_a_route_removed_fail_at_once_and_bounce_saying_why(tmp_path: Path) -> None:
    relay = free_port()
    async with HappySMSC() as smsc, smtp_sink(relay) as sink:
        # Before: one default link, its SMSC unreachable (in maintenance): both SMS wait.
        down = config_text(tmp_path, smsc_port=free_port(), relay_port=relay)
        async with running_gateway(parse_config(down, source="t", base_dir=tmp_path)) as gw:
            assert (
                await gw.send(mail([to("601123456"), to("+4930123456")], "Before the change"))
            ).error is None
            assert sorted(gw.states()) == ["queued", "queued"]
        # After: the link serves Polish numbers alone; the German SMS has no link any more.
        text = config_text(tmp_path, smsc_port=smsc.port, relay_port=relay, smsc_extra='prefixes = ["+48"]\n')
        async with running_gateway(parse_config(text, source="t", base_dir=tmp_path)) as gw:
            await gw.until(lambda: sorted(gw.states()) == ["delivered", "failed"], timeout=10)
            error = gw.store.db.conn.execute(
                "SELECT p.error FROM parts p JOIN messages m ON m.id = p.message_id WHERE m.recipient = ?",
                ("+4930123456",),
            ).fetchone()[0]
            await sink.wait(1)
    assert error == NO_ROUTE_NOTE.format("+4930123456")
    assert [s.destination for s in smsc.received] == ["+48601123456"]
    bounce = bounce_text(sink.messages[0][2])  # its text part, as a mail program shows it
    assert "+4930123456" in bounce and "no SMSC link serves" in bounce, bounce
    assert "administrator" in bounce, bounce  # the gateway's links, not the phone
