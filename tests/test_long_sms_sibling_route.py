"""The rest of a long SMS leaves by another bind of its link's SMSC account only if the number's routes
take that bind.

A long SMS's parts are tied to the link that took part 1; with that link down they may leave by
another bind of the same SMSC account (`smsc_account`). A bind whose prefixes do not serve the number
took them all the same: the rest of an SMS to +48601... left by a link the admin gave +48602... only.
Now the rest waits for the link, and after LONG_SMS_WAIT_SECONDS goes again whole by a link the
number's routes take. Real SMPP SMSCs over TCP (`tests/fakes/smsc.py`), the daemon in-process, a real
SMTP client; time moved by the injected clock.
"""

from __future__ import annotations

import time
from pathlib import Path

from gateway.config import parse_config
from gateway.longsms import LONG_SMS_WAIT_SECONDS
from gateway.store.partnotes import TIED_WAIT
from tests.conftest import config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_long_sms_one_link import LONG_TEXT, NUMBER, PartTwoTrouble, part_rows, parts_seen
from tests.test_policy import to


async def test_the_rest_keeps_off_a_bind_the_numbers_routes_do_not_take(tmp_path: Path) -> None:
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    async with PartTwoTrouble("gone") as plus1, HappySMSC() as plus2, HappySMSC() as orange:
        binds = f'\n[[smsc]]\nname = "plus2"\ntype = "smpp"\nport = {plus2.port}\nsmsc_account = "plus"\n'
        binds += 'prefixes = ["+48602"]\nsystem_id = "smsgw"\npassword = "secret"\n'
        binds += f'\n[[smsc]]\nname = "orange"\ntype = "smpp"\nport = {orange.port}\n'
        binds += 'system_id = "smsgw"\npassword = "secret"\n'
        # Part 2, lost with plus1's session, is not held for a receipt this SMSC never sends (plus1
        # never comes back: the hold would last the grace, on the loop's clock, not the test's).
        extra = 'smsc_account = "plus"\nprefixes = ["+48601"]\nlate_answer_grace_seconds = 0\n' + binds
        text = config_text(tmp_path, smsc_port=plus1.port, smsc_extra=extra)
        text = text.replace('name = "main"', 'name = "plus1"', 1).replace("window = 10", "window = 1", 1)
        async with running_gateway(parse_config(text, source="t", base_dir=tmp_path), clock=clock) as gw:
            for smsc in (plus1, plus2, orange):
                await smsc.wait_until(lambda: len(smsc.sessions) == 1, timeout=20)  # noqa: B023
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            # Part 1 taken by plus1, which is then gone: the rest waits for it, not for plus2.
            await gw.until(lambda: plus1.troubled == 1 and not plus1.sessions)
            await gw.until(lambda: gw.daemon.dispatcher.choice.waiting() == 1)
            # Part 3, handed back unsent, is noted as waiting for plus1: plus2 was up all along.
            said = [(TIED_WAIT.format("plus1", "down"),)]
            sql = "SELECT error FROM parts WHERE seq = 3 AND state = 'deferred'"
            await gw.until(lambda: gw.store.db.conn.execute(sql).fetchall() == said, timeout=10)
            assert plus2.received == [] and orange.received == []
            offset[0] += LONG_SMS_WAIT_SECONDS + 1  # plus1 still gone: the SMS goes by orange, whole
            await gw.until(lambda: gw.states() == ["delivered"], timeout=20)
            rows = part_rows(gw)
            [concat_ref] = gw.store.db.conn.execute("SELECT concat_ref FROM messages").fetchone()
    assert plus2.received == [], "parts left by a link the number's routes do not take"
    assert sorted(parts_seen(orange)) == [(concat_ref, 1), (concat_ref, 2), (concat_ref, 3)]
    assert rows == [(1, "delivered", "orange"), (2, "delivered", "orange"), (3, "delivered", "orange")]
